"""Experiment loggers: where a run's records go besides ``metrics.jsonl``, which stays the canonical record.

A logger receives, on rank 0 only, the run's configuration once and then every record that ``metrics.jsonl``
gets: step, epoch, probe, kNN-monitor and evaluation records (``event`` names which). Built-ins: ``csv``,
``tensorboard`` (``torch.utils.tensorboard``; ``pip install ssltk[tensorboard]``) and ``wandb`` (``pip install
ssltk[wandb]``; offline unless ``WANDB_MODE`` says otherwise, so it needs no network). Plugins add their own through
the ``ssltk_register_loggers`` hook. Choose them with ``--trainer.loggers [csv, tensorboard]``.

A resumed run has already cut ``metrics.jsonl`` back to its checkpoint; loggers continue from that step (``start``'s
``step``): CSV files are rebuilt from ``metrics.jsonl``, TensorBoard purges the events after the step, and W&B
resumes the same run id.
"""
from __future__ import annotations

import csv
import hashlib
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from .interfaces import Logger
from .errors import SsltkError

_KEYS = ("event", "name", "epoch", "step", "time")  # what records carry besides their values


def scalars(record: Dict[str, Any]) -> Dict[str, float]:
    """The record's numeric values (not its event, epoch, step or time) as floats, keyed ``EVENT/NAME`` (or
    ``eval/EVALUATION/NAME`` for evaluation records, several of which share a step)."""
    prefix = "/".join(str(record[k]) for k in ("event", "name") if k in record) or "record"
    return {f"{prefix}/{k}": float(v) for k, v in record.items()
            if k not in _KEYS and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class CSVLogger(Logger):
    """One CSV file per kind of record (``metrics-epoch.csv``, ``metrics-step.csv``, ...) in the run directory;
    a file is rewritten with a wider header when a record brings a new column."""

    def start(self, run_dir: Path, config: Dict[str, Any], step: int) -> None:
        self.run_dir = Path(run_dir)
        self.rows: Dict[str, List[Dict[str, Any]]] = {}
        self.columns: Dict[str, Dict[str, None]] = {}  # per kind, in order of first appearance
        for old in self.run_dir.glob("metrics-*.csv"):
            old.unlink()
        from .engine.metrics import read_metrics

        for record in read_metrics(self.run_dir):  # already cut back to the checkpoint on a resume
            self.log(record)

    def log(self, record: Dict[str, Any]) -> None:
        kind = str(record.get("event", "record"))
        rows = self.rows.setdefault(kind, [])
        columns = self.columns.setdefault(kind, {})
        rows.append(record)
        path = self.run_dir / f"metrics-{kind}.csv"
        if len(rows) > 1 and all(key in columns for key in record):
            with open(path, "a", newline="", encoding="utf-8") as fh:
                csv.DictWriter(fh, fieldnames=list(columns)).writerow(record)
            return
        columns.update(dict.fromkeys(record))  # a new column: the file is rewritten under the wider header
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)


class TensorBoardLogger(Logger):
    """Scalars (:func:`scalars`' tags) at the record's global step, and the configuration as text, in
    ``RUN/tensorboard``."""

    def __init__(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise SsltkError("the tensorboard logger needs the tensorboard package: pip install 'ssltk[tensorboard]'") \
                from None
        self._writer_cls = SummaryWriter

    def start(self, run_dir: Path, config: Dict[str, Any], step: int) -> None:
        import yaml

        # on a resume, events after the checkpoint's step (written before a kill) are dropped
        self.writer = self._writer_cls(str(Path(run_dir) / "tensorboard"), purge_step=step + 1 if step else None)
        if not step:
            self.writer.add_text("config", "```\n" + yaml.safe_dump(config, sort_keys=False) + "```", 0)

    def log(self, record: Dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, step)
        self.writer.flush()

    def close(self) -> None:
        if hasattr(self, "writer"):
            self.writer.close()


class WandbLogger(Logger):
    """Weights & Biases: the configuration as the run's config, records under :func:`scalars`' tags at their step.
    Offline (``wandb sync`` uploads later) unless ``WANDB_MODE`` is set; the run id is derived from the run
    directory, so a resumed ssltk run continues the same W&B run."""

    def __init__(self) -> None:
        try:
            import wandb
        except ImportError:
            raise SsltkError("the wandb logger needs the wandb package: pip install 'ssltk[wandb]'") from None
        self._wandb = wandb

    def start(self, run_dir: Path, config: Dict[str, Any], step: int) -> None:
        run_dir = Path(run_dir).resolve()
        run_id = hashlib.sha1(str(run_dir).encode()).hexdigest()[:16]
        self.run = self._wandb.init(dir=str(run_dir), config=config, id=run_id, name=run_dir.name, resume="allow",
                                    mode=os.environ.get("WANDB_MODE", "offline"),
                                    project=os.environ.get("WANDB_PROJECT", "ssltk"))

    def log(self, record: Dict[str, Any]) -> None:
        values = scalars(record)
        if values:
            self.run.log(values, step=int(record.get("step", 0)))

    def close(self) -> None:
        if getattr(self, "run", None) is not None:
            self.run.finish()
            self.run = None


def create_loggers(names: Optional[List[str]]) -> List[Logger]:
    """Instances of the named loggers (each checks it can run), in order; duplicates are refused."""
    from .registries import LOGGERS

    names = list(names or [])
    if len(set(names)) != len(names):
        raise SsltkError(f"--trainer.loggers names a logger twice: {names}")
    return [LOGGERS.create(name) for name in names]
