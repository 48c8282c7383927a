"""Where a reproduction's numbers come from: the code's commit, the machine, the date, the commits that trained each run."""
from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from pathlib import Path
from typing import Dict, List, Sequence, Tuple


from .protocols import Cell


def source_revision() -> str:
    """The git commit of the ssltk source that runs (with a mark when it has uncommitted changes), else its version."""
    from .. import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True).stdout.strip()
        # the kept weights and their manifest are written by the very command that asks (reproduce --keep)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ssltk", "plugins", ":!ssltk/zoo"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        rev, dirty = "", ""
    return (rev or f"ssltk {__version__}") + (" + uncommitted changes" if rev and dirty else "")


def _note_provenance(base: Path, cell: Cell, seed: int, resume: bool) -> None:
    """Which code trained which run (a table may be written later, by other code): one JSON line per start."""
    import json

    base.mkdir(parents=True, exist_ok=True)
    with open(base / "provenance.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"cell": cell.id, "seed": seed, "resume": resume, "commit": source_revision(),
                             "date": utc_stamp()}) + "\n")


def trained_by(runs: Sequence[Tuple[Cell, int, Path]]) -> List[str]:
    """The commits that trained ``runs``, from the provenance notes of the folders they lie in (a run's folder is
    ``BASE/ROW/COLUMN/seedN``, its notes ``BASE/provenance.jsonl``)."""
    from ..engine.metrics import jsonl_lines

    wanted: Dict[Path, set] = {}
    for cell, seed, run in runs:
        wanted.setdefault(run.parents[2], set()).update({(cell.id, seed), (cell.run_id, seed)})
    commits: List[str] = []
    for base, ids in wanted.items():
        path = base / "provenance.jsonl"
        if not path.is_file():
            continue
        for _, rec in jsonl_lines(path):
            if (rec.get("cell"), rec.get("seed")) in ids and rec.get("commit") not in commits:
                commits.append(rec.get("commit"))
    return commits


def machine_description() -> str:
    """The host, its processor and accelerator, and torch's version: the conditions line of every record."""
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU only, {os.cpu_count()} cores"
    return f"{platform.node() or 'host'} ({cpu}, {dev}), torch {torch.__version__}"


def utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
