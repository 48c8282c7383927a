"""Checkpoints: safetensors only, atomic, and a resumed run matches an uninterrupted one exactly."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from ssltk.engine.checkpoint import load_training_state, read_safetensors, save_training_state
from helpers import FAST_FIT, ssltk


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


FIT = ["fit", "--objective", "relational", "--objective.k", "2", *FAST_FIT, "--trainer.epochs", "4",
       "--trainer.device", "cpu"]


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    full = tmp_path / "full"
    assert ssltk(*FIT, "--trainer.run_dir", str(full)).returncode == 0

    killed = tmp_path / "killed"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "ssltk", *FIT, "--trainer.run_dir", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    first = killed / "checkpoints" / "epoch-0001.safetensors"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the run never wrote its first checkpoint"
    if (killed / "backbone.safetensors").exists():
        pytest.skip("the run finished before it could be killed")

    resumed = ssltk("fit", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(full / "backbone.safetensors"))
    b = load_file(str(killed / "backbone.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ends = [ln for ln in (killed / "metrics.jsonl").read_text().splitlines() if '"event": "epoch"' in ln]
    assert '"epoch": 4' in ends[-1]


def test_resume_of_a_missing_run_is_clear(tmp_path):
    proc = ssltk("fit", "--resume", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "not a run directory" in proc.stderr
