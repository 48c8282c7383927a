"""A run's ``metrics.jsonl``, the canonical record of a fit: written one JSON object per line (flushed, so a crash
loses nothing already logged, and passed on to the experiment loggers), read back by everything that looks at a
run afterwards, and cut back to the checkpoint a run resumes from, so that a resumed run's record equals an
uninterrupted one's."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..errors import SsltkError


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


class MetricsLog:
    """Appends one JSON object per line; flushed after each line so a crash loses nothing already logged. Each
    record then goes to the run's experiment loggers (``ssltk.loggers``), which see exactly what the file holds."""

    def __init__(self, path: Optional[Path], loggers: Sequence[Any] = ()):
        self.path, self.loggers = path, list(loggers)
        self._fh = open(path, "a", encoding="utf-8") if path is not None else None

    def write(self, **record: Any) -> None:
        if self._fh is None:
            return
        record = {k: _plain(v) for k, v in record.items()}
        record.setdefault("time", round(time.time(), 3))
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        for logger in self.loggers:
            logger.log(record)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        for logger in self.loggers:
            logger.close()
        self.loggers = []


def jsonl_lines(path: Path):
    """(line, record) for each whole record of a JSON-lines file; a line torn by a kill is not a record."""
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            yield line, rec


def read_metrics(run_dir: Path, event: Optional[str] = None, missing_ok: bool = True) -> List[Dict[str, Any]]:
    """The records of ``RUN/metrics.jsonl`` (those of one ``event`` where given), oldest first. A resumed run's file
    was cut back to its checkpoint when it resumed, so each epoch appears once. A run with no file has no records,
    or is an error where ``missing_ok`` is False."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        if missing_ok:
            return []
        raise SsltkError(f"{run_dir} has no metrics.jsonl: it is not a run directory, or the run never started")
    return [rec for _, rec in jsonl_lines(path) if event is None or rec.get("event") == event]


def truncate_metrics(path: Path, epoch: int, step: int) -> None:
    """Keep the records up to the checkpoint (``epoch``, global ``step``) and drop a line torn by a kill."""
    path = Path(path)
    if not path.is_file():
        return
    kept: List[str] = []
    for line, rec in jsonl_lines(path):
        if int(rec.get("step", 0)) > step or (rec.get("event") == "epoch" and int(rec.get("epoch", 0)) > epoch):
            continue
        kept.append(line)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")
    os.replace(tmp, path)
