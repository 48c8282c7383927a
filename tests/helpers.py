"""Helpers for tests that run the real CLI in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence

FAST_FIT = ["--data", "digits", "--data.train_size", "256", "--trainer.batch_size", "32", "--trainer.progress",
            "false", "--evaluate.linear", "false"]


def ssltk(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "ssltk", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def error_lines(proc: subprocess.CompletedProcess) -> List[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.strip()]


def wait_for_checkpoint(proc: subprocess.Popen, run_dir: Path, epoch: int = 1, timeout: float = 300) -> bool:
    """Poll until the fit ``proc`` has written ``run_dir``'s checkpoint of ``epoch``, has ended, or ``timeout``
    seconds have passed; whether that checkpoint exists."""
    path = Path(run_dir) / "checkpoints" / f"epoch-{epoch:04d}.safetensors"
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    return path.exists()


def kill_after_first_checkpoint(cmd: Sequence[str], run_dir: Path, env: Optional[dict] = None,
                                linger: float = 0.5) -> bool:
    """Start ``cmd`` (a fit into ``run_dir``) and SIGKILL it ``linger`` seconds after its first checkpoint appears
    (into the next epoch, whose step records are then lost), or as soon as its second one does: on a fast machine a
    fixed linger can outlast the run, whose pruning then removes the first checkpoint. False if it finished first."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=err,
                                env=dict(env or os.environ, PYTHONUNBUFFERED="1"))
        seen = wait_for_checkpoint(proc, run_dir)
        wait_for_checkpoint(proc, run_dir, epoch=2, timeout=linger)
        finished = proc.poll() is not None
        proc.kill()
        proc.wait()
        if finished and proc.returncode == 0:
            return False
        err.seek(0)
        assert seen, f"the run never wrote its first checkpoint (exit {proc.returncode}): {err.read()[-2000:]!r}"
    return not (Path(run_dir) / "backbone.safetensors").exists()


def built_trainer(run_dir: Path, **trainer):
    """A relational (K=2) Trainer over 64 digits images, built but not fitted: for tests of its step and state."""
    import ssltk
    from ssltk.engine.trainer import Trainer

    cfg = ssltk.make_config("relational", objective_args={"k": 2}, data_args={"train_size": 64},
                            trainer={"batch_size": 32, "run_dir": str(run_dir), "progress": False, **trainer},
                            evaluate={"linear": False})
    t = Trainer(cfg)
    t._build()
    t.run_dir = Path(run_dir)
    return t


def step_loss(t):
    """The trainer's loss on its first 32 images (views drawn with a fixed seed), under its own autocast."""
    import torch

    from ssltk.engine.precision import autocast
    from ssltk.interfaces import ViewBatch

    views = t.augment(t.images[:32], 2, torch.Generator().manual_seed(0))
    with autocast(t.device, t.amp, t.amp_dtype):
        out = t.objective(ViewBatch(views, 2, torch.arange(32)), t.backbone)
    return out.loss.float()
