"""Launchers for ``ssltk reproduce``: a whole table's runs as cluster jobs (the GPU issue, item 3).

``--launcher submitit`` submits one job per unfinished run through submitit (SLURM on a cluster, real local
processes with ``--launcher-executor local``). Each job asks for the cell's estimated cost (the protocol's
``cost``, :func:`ssltk.reproduce.estimate_minutes`) with headroom, or ``--launcher-time``, and trains with
``--trainer.max_time`` a little below that request, so it stops at an epoch boundary with a checkpoint before the
scheduler's limit. A job that stops so is submitted again (requeued) and resumes from its checkpoint, up to
``max_requeues`` times; a job the scheduler itself stops (a preemption, or an epoch longer than the headroom) is
requeued by submitit through :meth:`RunJob.checkpoint`, and resumes from its last epoch's checkpoint the same way.
When every job is done the table is written as in-process.
"""
from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .errors import SsltkError

#: headroom of a job's time request over the cell's estimate, and the part of the request kept for the stop
HEADROOM, STOP_MARGIN = 1.5, 0.9


class RunJob:
    """What one job runs: ``advance(cell, run, cfg)`` with the fit's ``max_time`` set from the job's time request.
    Returns the epoch the fit stopped after (requeue it) or None (done). Picklable: submitit sends it to the job."""

    def __init__(self, advance: Callable, cell: Any, run: Path, cfg: Dict[str, Any], max_time_s: float):
        self.advance, self.cell, self.run, self.cfg, self.max_time_s = advance, cell, run, cfg, max_time_s

    def __call__(self) -> Optional[int]:
        cfg = {**self.cfg, "trainer": {**self.cfg["trainer"], "max_time": f"{max(self.max_time_s, 1):.0f}s"}}
        return self.advance(self.cell, self.run, cfg)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's requeue hook (a timeout or preemption signal): the same job again, which resumes the run
        from its last checkpoint."""
        import submitit

        return submitit.helpers.DelayedSubmission(RunJob(self.advance, self.cell, self.run, self.cfg,
                                                         self.max_time_s))


class SubmititLauncher:
    """Collects a table's unfinished runs, then submits, waits for and requeues their jobs."""

    def __init__(self, folder: Path, executor: str = "auto", time_s: Optional[float] = None,
                 estimate_s: Optional[Callable[[Any], float]] = None, partition: Optional[str] = None,
                 gpus_per_node: int = 0, max_requeues: int = 20):
        if importlib.util.find_spec("submitit") is None:
            raise SsltkError("--launcher submitit needs the submitit package: pip install 'ssltk[cluster]'")
        if executor not in ("auto", "local"):
            raise SsltkError(f"--launcher-executor must be auto (SLURM where it is, else local) or local, got "
                             f"{executor!r}")
        self.folder, self.executor, self.time_s, self.estimate_s = Path(folder), executor, time_s, estimate_s
        self.partition, self.gpus_per_node, self.max_requeues = partition, gpus_per_node, max_requeues
        self.runs: List[Tuple[Any, int, Path, Dict[str, Any]]] = []
        self.requeued: Dict[str, int] = {}

    def add(self, cell: Any, seed: int, run: Path, cfg: Dict[str, Any]) -> None:
        self.runs.append((cell, seed, run, cfg))

    def request_s(self, cell: Any) -> float:
        """The job's time request: ``--launcher-time``, else the cell's estimate with headroom (5 min at least)."""
        if self.time_s is not None:
            return self.time_s
        est = self.estimate_s(cell) if self.estimate_s is not None else 3600.0
        return max(300.0, HEADROOM * est)

    def _executor(self, seconds: float) -> Any:
        import submitit

        cls = submitit.LocalExecutor if self.executor == "local" else submitit.AutoExecutor
        ex = cls(folder=str(self.folder))
        # whole minutes: submitit's local controller reads the limit back as an integer of seconds, and a fraction
        # of a minute makes it fail before the job starts
        params: Dict[str, Any] = {"timeout_min": max(1, math.ceil(seconds / 60.0))}
        if self.executor != "local":
            params.update(slurm_signal_delay_s=120, name="ssltk-reproduce")
            if self.partition:
                params["slurm_partition"] = self.partition
            if self.gpus_per_node:
                params["gpus_per_node"] = self.gpus_per_node
        ex.update_parameters(**params)
        return ex

    def _submit(self, advance: Callable, cell: Any, run: Path, cfg: Dict[str, Any]) -> Any:
        seconds = self.request_s(cell)
        # the scheduler's limit is the request; the fit stops itself before it, with a checkpoint
        job = RunJob(advance, cell, run, cfg, STOP_MARGIN * seconds)
        # the scheduler's limit leaves room past the fit's own stop for the process start, the data loading and the
        # evaluation after training (a busy machine took over a minute for a 2 s request)
        return self._executor(seconds + max(120.0, 0.25 * seconds)).submit(job)

    def run_all(self, advance: Callable, log: Callable[[str], Any] = print) -> None:
        """Submit every collected run, wait, requeue those that stopped at their time, until all are done."""
        pending = {str(run): (cell, seed, run, cfg, self._submit(advance, cell, run, cfg))
                   for cell, seed, run, cfg in self.runs}
        for key, (cell, seed, _, _, job) in pending.items():
            log(f"submitted {cell.id} seed {seed} as job {job.job_id} "
                f"({math.ceil(self.request_s(cell) / 60)} min asked)")
        failed: List[str] = []
        while pending:
            for key in list(pending):
                cell, seed, run, cfg, job = pending[key]
                if not job.done():
                    continue
                try:
                    stopped = job.result()
                except Exception as exc:  # the job's own error, as submitit relays it
                    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
                    failed.append(f"{cell.id} seed {seed} (job {job.job_id}): {lines[-1] if lines else exc}")
                    del pending[key]
                    continue
                if stopped is None:
                    log(f"done {cell.id} seed {seed} (job {job.job_id})")
                    del pending[key]
                    continue
                n = self.requeued[key] = self.requeued.get(key, 0) + 1
                if n > self.max_requeues:
                    failed.append(f"{cell.id} seed {seed}: stopped at its time limit {n} times")
                    del pending[key]
                    continue
                new = self._submit(advance, cell, run, cfg)
                log(f"requeued {cell.id} seed {seed}: stopped after epoch {stopped} at its time limit; job "
                    f"{new.job_id} resumes it from its checkpoint")
                pending[key] = (cell, seed, run, cfg, new)
            if pending:
                time.sleep(1.0)
        if failed:
            raise SsltkError(f"{len(failed)} job(s) failed: " + "; ".join(failed[:3]) +
                             (f"; and {len(failed) - 3} more" if len(failed) > 3 else "") +
                             f" (logs in {self.folder})")
