"""Where evaluators put their numbers: ``results.json`` in the run directory, one key per evaluation."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..engine.filemode import plain_file_mode


def write_results(run_dir: Path, key: str, values: dict) -> Path:
    """Merge ``values`` under ``key`` into ``run_dir/results.json`` (atomically: temp file then rename)."""
    path = Path(run_dir) / "results.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = values
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".results.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, plain_file_mode())  # mkstemp creates 0600; a run's files share the mode open() gives
    os.replace(tmp, path)
    return path


def read_results(run_dir: Path) -> dict:
    path = Path(run_dir) / "results.json"
    return json.loads(path.read_text()) if path.is_file() else {}
