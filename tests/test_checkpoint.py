"""Checkpoints: safetensors only, atomic, and a resumed run matches an uninterrupted one exactly."""
import json
import sys

import pytest
import torch
from safetensors.torch import load_file

from ssltk.engine.checkpoint import load_training_state, read_safetensors, save_training_state
from helpers import kill_after_first_checkpoint, ssltk


def test_training_state_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [2, 3], 0.1)
    for _ in range(3):
        loss = model(torch.randn(16, 4)).pow(2).mean()
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    save_training_state(tmp_path / "c.safetensors", {"m": model}, opt, sched, {"epoch": 3, "global_step": 3})
    # nothing but safetensors on disk, no temporary files left behind
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]

    model2 = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1))
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.MultiStepLR(opt2, [2, 3], 0.1)
    meta = load_training_state(tmp_path / "c.safetensors", {"m": model2}, opt2, sched2)
    assert meta["epoch"] == 3
    assert sched2.last_epoch == sched.last_epoch and opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    x = torch.randn(16, 4)
    for m, o in ((model, opt), (model2, opt2)):
        loss = m(x).pow(2).mean()
        o.zero_grad(); loss.backward(); o.step()
    for p1, p2 in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p1, p2)


def test_unreadable_checkpoint_is_a_clear_error(tmp_path):
    from ssltk.errors import SsltkError

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(SsltkError, match="cannot read safetensors"):
        read_safetensors(bad)
    with pytest.raises(SsltkError, match="not found"):
        read_safetensors(tmp_path / "missing.safetensors")


# K=4 views of 512 images at the default thread count: the size at which a gather's multi-threaded backward
# (``z[idx]``) made 20 of 24 weight tensors of a resumed relational run differ from the uninterrupted run
DETERMINISM = ["--data", "digits", "--data.train_size", "512", "--trainer.batch_size", "64", "--trainer.progress",
               "false", "--evaluate.linear", "false", "--trainer.epochs", "3", "--trainer.device", "cpu",
               "--trainer.log_every", "4"]
OBJECTIVES = {
    "relational": ["--objective", "relational", "--objective.k", "4"],
    "structured-mi": ["--objective", "structured-mi", "--objective.k", "4", "--objective.variant", "ixaz",
                      "--objective.hidden_dim", "64", "--objective.mpnn_hidden", "64"],
}


def _records(run):
    volatile = {"time", "views_per_s", "seconds"}
    return [{k: v for k, v in json.loads(ln).items() if k not in volatile}
            for ln in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_sigkill_then_resume_equals_uninterrupted(tmp_path, objective):
    fit = ["fit", *OBJECTIVES[objective], *DETERMINISM]
    full = tmp_path / "full"
    done = ssltk(*fit, "--trainer.run_dir", str(full))
    assert done.returncode == 0, done.stderr

    killed = tmp_path / "killed"
    if not kill_after_first_checkpoint([sys.executable, "-m", "ssltk", *fit, "--trainer.run_dir", str(killed)],
                                       killed):
        pytest.skip("the run finished before it could be killed")

    resumed = ssltk("fit", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(full / "backbone.safetensors"))
    b = load_file(str(killed / "backbone.safetensors"))
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ: {differ[:3]}"
    # the record too: no step written twice, none lost
    assert _records(killed) == _records(full)


def test_deterministic_algorithms_are_scoped_to_the_fit(tmp_path):
    import ssltk as api

    assert not torch.are_deterministic_algorithms_enabled()
    api.fit("random", data_args={"train_size": 64}, trainer={"run_dir": str(tmp_path), "progress": False},
            evaluate={"linear": False})
    assert not torch.are_deterministic_algorithms_enabled()


def test_resume_of_a_missing_run_is_clear(tmp_path):
    proc = ssltk("fit", "--resume", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "not a run directory" in proc.stderr


def test_restored_optimizer_state_keeps_the_channels_last_layout_of_its_parameters(tmp_path):
    # fused CUDA Adam refuses moments whose strides differ from their parameters' (the first GPU run's resume)
    def model_and_opt():
        torch.manual_seed(0)
        m = torch.nn.Conv2d(3, 8, 3).to(memory_format=torch.channels_last)
        return m, torch.optim.Adam(m.parameters(), lr=1e-3)

    model, opt = model_and_opt()
    model(torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)).sum().backward()
    opt.step()
    save_training_state(tmp_path / "c.safetensors", {"m": model}, opt, None, {"epoch": 1, "global_step": 1})
    model2, opt2 = model_and_opt()
    load_training_state(tmp_path / "c.safetensors", {"m": model2}, opt2, None)
    w = model2.weight
    for name in ("exp_avg", "exp_avg_sq"):
        assert opt2.state[w][name].stride() == w.stride(), name
        torch.testing.assert_close(opt2.state[w][name], opt.state[model.weight][name], rtol=0, atol=0)
