"""torchrun with 2 processes on the gloo backend: gradients, distributed Sinkhorn, checkpoints across world sizes.

Every test launches real ``python -m torch.distributed.run`` processes (the launcher users type as ``torchrun``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ssltk
from helpers import FAST_FIT

pytest.importorskip("torch.distributed")
if not torch.distributed.is_available():  # pragma: no cover - builds without distributed support
    pytest.skip("torch.distributed is not available", allow_module_level=True)

WORKER = Path(__file__).with_name("distributed_worker.py")


def _env() -> dict:
    # each process one thread: two processes on this machine's two cores
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", COLUMNS="200")


# gloo can abort a rank at interpreter exit after its work is done (std::terminate in a thread at teardown; seen
# once in about 40 two-process fits on the 2-core machine): such a launch is repeated once, from scratch for a new
# fit (a resume simply resumes again), and the test then checks the repeat's results like any others
TEARDOWN_ABORT = "terminate called without an active exception"


def torchrun(nproc: int, *args: str, module: bool = False, timeout: float = 300) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                "--standalone"] if nproc > 1 else [sys.executable]
    target = ["-m", *args] if module else [*args]
    for attempt in range(2):
        proc = subprocess.run(launcher + target, capture_output=True, text=True, env=_env(), timeout=timeout)
        if proc.returncode == 0 or attempt or TEARDOWN_ABORT not in proc.stdout + proc.stderr:
            break
        if "--resume" not in args and "--trainer.run_dir" in args:
            shutil.rmtree(args[args.index("--trainer.run_dir") + 1], ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _grads(tmp_path: Path, nproc: int, objective: str, *extra: str) -> list:
    out = tmp_path / f"{objective}-{nproc}{''.join(extra)}"
    out.mkdir()
    if nproc == 1:  # the single-process reference runs in this process: no group, no DDP
        sys.path.insert(0, str(WORKER.parent))
        from distributed_worker import grads

        grads(objective, out, gather="nogather" not in extra)
    else:
        torchrun(nproc, str(WORKER), "grads", objective, str(out), *extra)
    return [load_file(str(out / f"grads-rank{r}.safetensors")) for r in range(nproc)]


@pytest.mark.parametrize("objective", ["relational", "simclr"])
def test_two_processes_give_the_gradients_of_one_process_on_the_union(tmp_path, objective):
    (single,) = _grads(tmp_path, 1, objective)
    ranks = _grads(tmp_path, 2, objective)
    names = [k for k in single if k != "loss"]
    assert len(names) == 12  # Conv-4: 4 convolutions and 4 BatchNorms (weight, bias)
    for rank in ranks:
        for name in names:
            torch.testing.assert_close(rank[name], single[name], atol=1e-5, rtol=1e-5, msg=name)
    # the global loss is the mean of the ranks' losses (each the mean over its share of pairs or views)
    mean_loss = (ranks[0]["loss"] + ranks[1]["loss"]) / 2
    torch.testing.assert_close(mean_loss, single["loss"], atol=1e-6, rtol=1e-5)


def test_simclr_without_the_gather_sees_fewer_negatives_and_other_gradients(tmp_path):
    (single,) = _grads(tmp_path, 1, "simclr")
    ranks = _grads(tmp_path, 2, "simclr", "nogather")
    worst = max(float((ranks[0][k] - single[k]).abs().max()) for k in single if k != "loss")
    assert worst > 1e-3  # the equality above is the gather's doing, not an accident of the setup


def test_distributed_sinkhorn_gives_the_single_process_labels(tmp_path):
    sys.path.insert(0, str(WORKER.parent))
    from distributed_worker import reference_logits
    from ssltk_sela.sinkhorn import sinkhorn_labels

    torchrun(2, str(WORKER), "sinkhorn", str(tmp_path))
    got = load_file(str(tmp_path / "labels.safetensors"))
    want = sinkhorn_labels(reference_logits(), lam=25.0)
    assert torch.equal(got["labels"], want.labels)
    assert int(got["iterations"]) == want.iterations


def test_momentum_copies_agree_across_ranks_and_with_one_process(tmp_path):
    """ssltk.MomentumEncoder under DDP: every rank updates its copy from the online weights DDP keeps identical, so
    the copies agree and equal one process stepping on the union of the ranks' halves."""
    sys.path.insert(0, str(WORKER.parent))
    from distributed_worker import ema_net, ema_steps

    torchrun(2, str(WORKER), "ema", str(tmp_path))
    ranks = [load_file(str(tmp_path / f"ema-rank{r}.safetensors")) for r in range(2)]
    net = ema_net()
    single = ema_steps(net, net, lambda t: t).state_dict()
    assert ranks[0].keys() == single.keys()
    for name, value in single.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        torch.testing.assert_close(ranks[0][name], value, atol=1e-6, rtol=1e-6, msg=name)
        assert not torch.equal(value, ema_net().state_dict()[name.split(".", 1)[1]]), name  # it moved


def _epochs(run: Path) -> list:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(ln)["epoch"] for ln in lines if json.loads(ln)["event"] == "epoch"]


def test_a_two_process_checkpoint_resumes_in_one_process_and_back(tmp_path):
    run = tmp_path / "run"
    fit = ["ssltk", "fit", "--objective", "relational", "--objective.k", "4", *FAST_FIT, "--trainer.epochs", "1",
           "--trainer.run_dir", str(run)]
    proc = torchrun(2, *fit, module=True)
    assert proc.stdout.count("run directory:") == 1  # rank 0 alone reports
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0001.safetensors"]
    assert _epochs(run) == [1]  # one writer: one record per epoch
    # a different world size: one process continues the two-process run ...
    ssltk.fit(resume=run, trainer={"epochs": 2})
    assert _epochs(run) == [1, 2]
    # ... and two processes continue the one-process epoch
    torchrun(2, "ssltk", "fit", "--resume", str(run), "--trainer.epochs", "3", module=True)
    assert _epochs(run) == [1, 2, 3]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-0002.safetensors",
                                                                        "epoch-0003.safetensors"]
    # the same number of steps per epoch whatever the world size: the batch size is the global batch
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(ln)["event"] == "epoch"]
    assert steps == [8, 16, 24]


def test_sela_under_two_processes_labels_as_one_process_would(tmp_path):
    """The engine's sharded pass plus distributed Sinkhorn inside a real fit: the labels a 2-process run stored at
    epoch 2 are those one process computes from the epoch-1 checkpoint."""
    from ssltk.engine.checkpoint import load_training_state
    from ssltk.engine.trainer import Trainer, read_run_config

    run = tmp_path / "sela"
    torchrun(2, "ssltk", "fit", "--objective", "sela", "--objective.clusters", "16", "--objective.heads", "2",
             *FAST_FIT, "--trainer.epochs", "2", "--trainer.run_dir", str(run), module=True)
    ckpts = sorted((run / "checkpoints").iterdir())
    assert [p.name for p in ckpts] == ["epoch-0001.safetensors", "epoch-0002.safetensors"]
    cfg = read_run_config(run)
    cfg["trainer"]["distributed"] = "off"
    trainer = Trainer(cfg)
    trainer._build()
    trainer.objective.on_fit_start(trainer.context())  # as fit does: label buffers sized before the restore
    load_training_state(ckpts[0], trainer._modules(), trainer.optimizer, None)  # the schedule is derived from the step
    # the label step of epoch 2 (index 1) labels augmented views, drawn alike however the pass is sharded
    seed = trainer.objective.label_seed(trainer.cfg.seed, 1)
    trainer.objective.optimise_labels(trainer.context().extract_features(augment=True, seed=seed))
    stored = load_file(str(ckpts[1]))["objective.labels"]
    assert stored.shape == (2, 256)
    # exact: every rank's share of the pass used rank 0's BatchNorm statistics (before the epoch-end buffer
    # broadcast, 4% of these labels differed)
    assert torch.equal(trainer.objective.labels.cpu(), stored)
    assert torch.bincount(stored[0], minlength=16).min() > 0  # an equipartition, not a collapse


def test_deepcluster_under_two_processes_trains_on_one_clustering(tmp_path):
    run = tmp_path / "dc"
    torchrun(2, "ssltk", "fit", "--objective", "deepcluster", "--objective.k", "20", *FAST_FIT,
             "--trainer.epochs", "1", "--trainer.run_dir", str(run), module=True)
    pseudo = load_file(str(run / "checkpoints" / "epoch-0001.safetensors"))["objective.pseudo"]
    assert pseudo.shape == (256,) and len(pseudo.unique()) > 10


def test_shards_cover_the_rows_once_lower_ranks_first(monkeypatch):
    import ssltk.distributed as d

    for n, size in [(10, 3), (1001, 2), (4, 4), (7, 1)]:
        bounds = []
        for rank in range(size):
            monkeypatch.setattr(d, "world", lambda r=rank: (r, size))
            bounds.append(d.shard_bounds(n))
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1


def test_distributed_mode_is_checked(monkeypatch):
    from ssltk.engine.distributed import init_process_group
    from ssltk.errors import SsltkError

    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert not init_process_group("auto", torch.device("cpu")).active  # a plain process trains alone
    with pytest.raises(SsltkError, match="torchrun"):
        init_process_group("on", torch.device("cpu"))
    with pytest.raises(SsltkError, match="auto, on or off"):
        init_process_group("sometimes", torch.device("cpu"))


def test_global_batch_must_split_over_the_ranks():
    from ssltk.engine.trainer import Trainer
    from ssltk.errors import SsltkError

    trainer = Trainer(ssltk.api.make_config("relational", data_args={"train_size": 64},
                                            trainer={"batch_size": 33, "device": "cpu"}))
    trainer.world_size = 2  # as a 2-process group would set it
    with pytest.raises(SsltkError, match="does not split over 2 processes; use a multiple of 2"):
        trainer._build()
