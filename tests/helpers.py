"""Helpers for tests that run the real CLI in a subprocess."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
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


def kill_after_first_checkpoint(cmd: Sequence[str], run_dir: Path, env: Optional[dict] = None,
                                linger: float = 0.5) -> bool:
    """Start ``cmd`` (a fit into ``run_dir``), SIGKILL it ``linger`` seconds after its first checkpoint appears
    (into the next epoch, whose step records are then lost); False if it finished before it could be killed."""
    proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(env or os.environ, PYTHONUNBUFFERED="1"))
    first = Path(run_dir) / "checkpoints" / "epoch-0001.safetensors"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(linger)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert first.exists(), "the run never wrote its first checkpoint"
    return not (Path(run_dir) / "backbone.safetensors").exists()
