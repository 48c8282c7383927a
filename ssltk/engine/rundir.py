"""Ownership of a run directory: one process at a time, no silent overwrite, and a resume that cannot falsify the run.

- :class:`RunLock` is an advisory ``flock`` on ``RUN/.lock``. The kernel drops it when its process ends, however it
  ends, so a crashed or killed run never leaves its directory locked. Opening the lock file is also the first write
  into the directory, which makes an unwritable directory fail here, before any training or evaluation time is spent.
- :func:`check_new_run` refuses a directory that already holds a run unless ``overwrite`` is given, and then removes
  the old run's files so that nothing of it is left beside the new one.
- :func:`resume_changes` lists the options a resume would change that the run has already been trained with.
- :func:`read_run_config` reads a run's ``config.yaml`` (checked: a file may name only registered components),
  :func:`write_yaml` writes one atomically, :func:`checkpoint_files` lists its checkpoints.
- ``metrics.jsonl`` is :mod:`ssltk.engine.metrics`'s.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from ..errors import SsltkError
from ..yaml_io import load_yaml
from .build import check_config
from .checkpoint import load_training_state, save_training_state
from .config import TrainerConfig
# the metrics.jsonl helpers lived here before ssltk.engine.metrics; code written against them keeps working
from .metrics import jsonl_lines, read_metrics, truncate_metrics  # noqa: F401

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
# what a run writes at its top level; the evaluators' pictures are PNG files beside them
RUN_FILES = ("config.yaml", "metrics.jsonl", "results.json", "backbone.safetensors")

# trainer options a resume may change: they do not alter what the run computes, only how or how long it runs
RESUMABLE_TRAINER = {"epochs", "run_dir", "progress", "log_every", "checkpoint_every", "keep_checkpoints", "device",
                     "data_on_device", "distributed", "backend", "compile", "compile_mode", "loggers", "knn_every",
                     "max_time"}


#: lock files this process holds: POSIX record locks do not conflict within one process
_HELD_HERE: set = set()


class RunLock:
    """Exclusive ownership of a run directory for as long as the process holds it (a context manager)."""

    def __init__(self, run_dir: Path, purpose: str = "write"):
        self.run_dir, self.purpose = Path(run_dir), purpose
        self._fh = None

    def __enter__(self) -> "RunLock":
        key = str((self.run_dir / LOCK_NAME).resolve())
        if key in _HELD_HERE:  # checked before opening: closing a second handle would drop this process's lock
            raise SsltkError(f"{self.run_dir} is in use by ssltk process {os.getpid()}; wait for it to finish or "
                             "choose another directory")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.run_dir / LOCK_NAME, "a+")
        except OSError as exc:
            raise SsltkError(f"cannot {self.purpose} in {self.run_dir}: {exc.strerror or exc}"
                             + ("; choose another directory with --out" if self.purpose == "write results" else
                                "; choose a writable --trainer.run_dir")) from None
        if fcntl is not None:
            try:
                # a POSIX record lock belongs to this process alone: an flock would be shared with every forked
                # DataLoader worker, which outlives a killed trainer by seconds and would refuse the resume
                fcntl.lockf(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._fh.seek(0)
                owner = self._fh.read().strip() or "another process"
                self._fh.close()
                self._fh = None
                raise SsltkError(f"{self.run_dir} is in use by {owner}; wait for it to finish or choose another "
                                 "directory") from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"ssltk process {os.getpid()}\n")
        self._fh.flush()
        self._key = key
        _HELD_HERE.add(key)
        return self

    def __exit__(self, *exc: Any) -> None:
        _HELD_HERE.discard(getattr(self, "_key", None))
        if self._fh is not None:
            self._fh.close()  # closing releases the lock; the file stays, harmless and reusable
            self._fh = None


def owning_run(target: Path) -> Optional[Path]:
    """The run directory that ``target`` is, or lies inside (``RUN/interpret``, ``RUN/exp``): the nearest of it and
    its parents that holds a run or its lock; None for a path outside any run."""
    target = Path(target).resolve()
    for folder in (target, *target.parents):
        if holds_run(folder) or (folder / LOCK_NAME).exists():
            return folder
    return None


def writing_into(*targets: Path, purpose: str = "write results") -> Any:
    """The locks a command takes before it reads a run and writes to ``targets``: those of the runs owning them,
    each once (so a run that is training, whose process holds its lock, is refused in one line); none for paths
    outside every run."""
    stack = contextlib.ExitStack()
    runs = {run for run in (owning_run(t) for t in targets) if run is not None}
    try:
        for run in sorted(runs):
            stack.enter_context(RunLock(run, purpose=purpose))
    except BaseException:
        stack.close()
        raise
    return stack


def holds_run(run_dir: Path) -> bool:
    """Whether a directory holds (part of) an ssltk run."""
    run_dir = Path(run_dir)
    return any((run_dir / name).exists() for name in RUN_FILES) or (run_dir / "checkpoints").is_dir()


def check_new_run(run_dir: Path, overwrite: bool) -> None:
    """Refuse to start a new run over an existing one; with ``overwrite``, remove the old run's files first."""
    run_dir = Path(run_dir)
    if not holds_run(run_dir):
        return
    if not overwrite:
        raise SsltkError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, choose another "
                         "--trainer.run_dir, or replace it with --overwrite true")
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    for pic in run_dir.glob("*.png"):
        pic.unlink()
    remove_stale_temporaries(run_dir)


def remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files of atomic writes that a killed process left behind (a SIGKILL skips every cleanup)."""
    for folder in (Path(run_dir), Path(run_dir) / "checkpoints"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _diff(old: Any, new: Any, path: str, out: List[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:  # keys only the new config has are defaults a newer version added, not changes
            if key in new:
                _diff(old[key], new[key], f"{path}.{key}" if path else str(key), out)
            else:
                out.append(f"{path}.{key} (removed)" if path else f"{key} (removed)")
    elif old != new:
        out.append(f"{path} ({old!r} -> {new!r})")


def resume_changes(stored: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """Options of ``new`` that differ from the run's ``stored`` configuration and would falsify its record.

    Components (objective, backbone, data, augmentation) and the trainer's optimisation options are fixed for the
    life of a run; the trainer options in :data:`RESUMABLE_TRAINER` and the final evaluation may change. ``epochs``
    may grow only under a constant schedule, since step and cosine schedules are laid out over the epoch count.
    """
    changes: List[str] = []
    for key in ("objective", "backbone", "data", "augment"):
        _diff(stored.get(key), new.get(key), key, changes)
    old_t, new_t = dict(stored.get("trainer") or {}), dict(new.get("trainer") or {})
    fixed_old = {k: v for k, v in old_t.items() if k not in RESUMABLE_TRAINER}
    fixed_new = {k: v for k, v in new_t.items() if k not in RESUMABLE_TRAINER}
    defaults = dataclasses.asdict(TrainerConfig())
    for key in set(fixed_new) - set(fixed_old):  # an option added to ssltk after the run started, at its default
        if fixed_new[key] == defaults.get(key):
            del fixed_new[key]
    _diff(fixed_old, fixed_new, "trainer", changes)
    if old_t.get("epochs") != new_t.get("epochs") and new_t.get("schedule", "constant") != "constant":
        changes.append(f"trainer.epochs ({old_t.get('epochs')!r} -> {new_t.get('epochs')!r}) under the "
                       f"{new_t.get('schedule')!r} schedule")
    return changes


def read_stored_config(run_dir: Path) -> Optional[Dict[str, Any]]:
    """The run's own ``config.yaml`` (checked), or None where there is none yet."""
    if not (Path(run_dir) / "config.yaml").is_file():
        return None
    return read_run_config(Path(run_dir))


_CKPT = re.compile(r"epoch-(\d+)\.safetensors$")


def checkpoint_files(run_dir: Path) -> List[Path]:
    """A run's ``checkpoints/epoch-NNNN.safetensors`` files, oldest first (empty where there are none)."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT.search(p.name))]
    return [p for _, p in sorted(found)]


def write_yaml(path: Path, data: Dict[str, Any]) -> None:
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)


def read_run_config(run_dir: Path) -> Dict[str, Any]:
    """A run directory's ``config.yaml``, checked (:func:`~ssltk.engine.build.check_config`): it is a file, so it may
    name only registered components."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise SsltkError(f"not a run directory (no config.yaml): {run_dir}")
    try:
        cfg = load_yaml(path.read_text(), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise SsltkError(f"cannot read {path}: {exc}") from None
    if cfg is None:
        raise SsltkError(f"{path} is empty: the run's configuration is lost, so it cannot be resumed or evaluated")
    return check_config(cfg, str(path))


def claim_run_dir(run_dir: Path, config: Dict[str, Any], resume: bool, overwrite: bool, rank: int,
                  broadcast) -> Optional[Dict[str, Any]]:
    """Rank 0 checks the directory before writing anything (a resume may not change what the run was trained with;
    a new run may not silently replace one); every rank learns the verdict through ``broadcast``. The stored
    configuration of a resumed run, else None."""
    error, stored = None, None
    if rank == 0:
        try:
            if resume:
                stored = read_stored_config(run_dir)
                if stored is None:
                    raise SsltkError(f"not a run directory (no config.yaml): {run_dir}")
                changes = resume_changes(stored, config)
                if changes:
                    raise SsltkError(f"a resume cannot change what {run_dir} was trained with: "
                                     f"{'; '.join(changes)} (start a new run instead)")
            else:
                check_new_run(run_dir, overwrite)
            remove_stale_temporaries(run_dir)
        except SsltkError as exc:
            error = str(exc)
    error = broadcast(error)
    if error:
        raise SsltkError(error)
    return stored


def save_epoch_checkpoint(run_dir: Path, path: Path, modules: Dict[str, Any], optimizer: Any, meta: Dict[str, Any],
                          keep: int) -> Path:
    """A training checkpoint written atomically, then all but the newest ``keep`` removed. A write that fails (a
    full disk) names the intact earlier checkpoint and the resume command."""
    try:
        save_training_state(path, modules, optimizer, None, meta)
    except SsltkError as exc:
        kept = checkpoint_files(run_dir)
        last = f"the last checkpoint, {kept[-1].name}, is intact" if kept else "no earlier checkpoint exists"
        raise SsltkError(f"{exc}; {last}: free space, then resume with `ssltk fit --resume {run_dir}`") from None
    for old in checkpoint_files(run_dir)[: -max(1, keep)]:
        old.unlink(missing_ok=True)
    return path


def restore_latest(run_dir: Path, modules: Dict[str, Any], optimizer: Any) -> Optional[Dict[str, Any]]:
    """The newest checkpoint's state loaded into ``modules`` and ``optimizer``; its metadata, or None without one."""
    ckpts = checkpoint_files(run_dir)
    if not ckpts:
        return None
    return load_training_state(ckpts[-1], modules, optimizer, None)
