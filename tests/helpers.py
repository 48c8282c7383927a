"""Helpers for tests that run the real CLI in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import List

FAST_FIT = ["--data", "digits", "--data.train_size", "256", "--trainer.batch_size", "32", "--trainer.progress",
            "false", "--evaluate.linear", "false"]


def ssltk(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "ssltk", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def error_lines(proc: subprocess.CompletedProcess) -> List[str]:
    return [ln for ln in proc.stderr.splitlines() if ln.strip()]
