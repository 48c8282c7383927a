"""Running a table: each cell's configuration, its runs trained, resumed or skipped, their provenance."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple


from ..errors import SsltkError
from .protocols import Cell, Table, source_cell
from .provenance import _note_provenance


@dataclass
class Budget:
    """A budget other than the paper's (None: the paper's own), smaller (a quick look) or larger (a step-matched
    run on the validation split). It names the folder of its runs (``reduced-...``, kept for the runs already
    trained) and the table's title."""

    epochs: Optional[int] = None
    train_size: Optional[int] = None
    #: cells that score the test set score this many held-out training images instead (a deviation)
    val_split: Optional[int] = None

    @property
    def reduced(self) -> bool:
        return self.epochs is not None or self.train_size is not None or self.val_split is not None

    def tag(self) -> str:
        parts = ([f"e{self.epochs}"] if self.epochs is not None else []) + \
                ([f"n{self.train_size}"] if self.train_size is not None else []) + \
                ([f"val{self.val_split}"] if self.val_split is not None else [])
        return "reduced-" + "-".join(parts) if parts else "full"

    def describe(self) -> str:
        if not self.reduced:
            return "the paper's full budget"
        parts = ([f"{self.epochs} epochs"] if self.epochs is not None else []) + \
                ([f"{self.train_size} training images"] if self.train_size is not None else []) + \
                ([f"{self.val_split} held-out training images scored instead of the test set"]
                 if self.val_split is not None else [])
        return "CHANGED budget (" + ", ".join(parts) + "): not the paper's, not comparable with it"


def run_config(cell: Cell, seed: int, run_dir: Path, budget: Budget, data_root: Optional[str],
               device: Optional[str] = None, source_run: Optional[Path] = None) -> Dict[str, Any]:
    """The resolved run configuration of ``cell`` for one seed, as ``ssltk fit --print_config`` shows it;
    ``source_run``: the run its ``from_run`` names."""
    from ..api import make_config
    from ..engine.build import check_config

    spec = copy.deepcopy(cell.spec)
    if cell.from_run is not None:
        if source_run is None:
            raise SsltkError(f"cell {cell.id} trains on the run of {cell.from_run['cell']}: give its folder")
        spec["objective_args"] = {**(spec.get("objective_args") or {}), cell.from_run["arg"]: str(source_run)}
    trainer = dict(spec.get("trainer") or {})
    # the papers trained in float32; bf16 autocast (the CUDA default) stays off until a measurement shows it gives
    # the same number, and a protocol that measured so says amp: true in its cell
    trainer.setdefault("amp", False)
    trainer.update(seed=seed, run_dir=str(run_dir))
    if device:
        trainer["device"] = device
    if budget.epochs is not None:
        trainer["epochs"] = budget.epochs
    data_args = dict(spec.get("data_args") or {})
    if data_root is not None:
        data_args["root"] = data_root
    if budget.train_size is not None:
        data_args["train_size"] = budget.train_size
    evaluate = dict(spec.get("evaluate") or {})
    if budget.val_split is not None and scores_test(cell):
        data_args["val_size"] = budget.val_split
        if evaluate.get("split") == "test":
            evaluate["split"] = "val"
    cfg = {"objective": _spec("objective", spec.get("objective"), spec.get("objective_args")),
           "backbone": _spec("backbone", spec.get("backbone", "conv4"), spec.get("backbone_args")),
           "data": _spec("dataset", spec.get("data"), data_args),
           "augment": _spec("augmentation", spec.get("augment"), spec.get("augment_args"))}
    cfg = check_config(cfg, f"protocol cell {cell.table} {cell.id}")
    return make_config(cfg["objective"], cfg["backbone"], cfg["data"], trainer, evaluate or None,
                       augment=cfg["augment"])


def scores_test(cell: Cell) -> bool:
    """Whether a cell scores its training data's official test set (its evaluation, or an evaluation after training
    on the same data, says ``split: test``), as the papers' tables other than 000's Tables 10 and 13 do."""
    if (cell.spec.get("evaluate") or {}).get("split") == "test":
        return True
    return any(((ev.get("args") or {}).get("split") == "test") and ev.get("data") is None for ev in cell.after)


def check_test_split(cell: Cell, cfg: Dict[str, Any], budget: Budget, transfer_root: Optional[str] = None) -> None:
    """Refuse, before anything trains, a cell that scores a test set on data that has none."""
    if budget.val_split is not None:
        return
    from ..engine.build import build

    wanted = [cfg["data"]] if scores_test(cell) else []
    wanted += [_after_data(ev, transfer_root) for ev in cell.after
               if ev.get("data") is not None and (ev.get("args") or {}).get("split") == "test"]
    for spec in wanted:
        if build(spec).has_test_split() is False:
            root = (spec.get("init_args") or {}).get("root")
            raise SsltkError(f"{cell.table} {cell.id} scores the official test set, as the paper did, and "
                             f"{root or 'the data'} holds no test split: add test/ beside train/ (or the official "
                             "test files), or pass --val-split N to score N held-out training images instead, a "
                             "deviation the table's title names")


def _spec(kind: str, name: Any, args: Optional[Dict[str, Any]]) -> Any:
    if name is None:
        return None
    if not isinstance(name, str):
        raise SsltkError(f"a protocol names its {kind} by registry name, got {name!r}")
    return {"class_path": name, "init_args": dict(args or {})}


def cell_runs(out: Path, table: Table, budget: Budget) -> Path:
    return Path(out) / table.name / budget.tag()


def _source_run(base: Path, table: Table, cell: Cell, seed: int) -> Optional[Path]:
    src = source_cell(cell, table)
    return base / src.run_id / f"seed{seed}" if src is not None else None


def measured(run: Path, metric: str) -> Optional[float]:
    from ..eval.results import read_results
    from ..eval.summary import metric_value

    return metric_value(read_results(run), metric)


def _finished_in(bases: Sequence[Path], cell: Cell, seed: int) -> Path:
    """The run of ``cell`` and ``seed`` in the first of ``bases`` where it has finished (else in the first base)."""
    for base in bases:
        run = base / cell.run_id / f"seed{seed}"
        if measured(run, cell.metric) is not None:
            return run
    return bases[0] / cell.run_id / f"seed{seed}"


def _fit_done(run: Path, cfg: Dict[str, Any]) -> bool:
    """Whether training and the fit's own evaluation finished (a kill during the evaluation resumes into it)."""
    from ..eval.results import read_results

    if not (run / "backbone.safetensors").is_file():
        return False
    return not (cfg.get("evaluate") or {}).get("linear", True) or "linear" in read_results(run)


def after_evaluations(cell: Cell, budget: Budget) -> List[Dict[str, Any]]:
    """The cell's evaluations after training, with ``--val-split`` applied: one that scores the test set of its
    data scores that many held-out training images instead."""
    evs = []
    for ev in cell.after:
        ev = copy.deepcopy(ev)
        if budget.val_split is not None and (ev.get("args") or {}).get("split") == "test":
            ev["args"]["split"] = "val"
            if ev.get("data") is not None:
                ev["data_args"] = {**(ev.get("data_args") or {}), "val_size": budget.val_split}
        evs.append(ev)
    return evs


def _after_data(ev: Dict[str, Any], transfer_root: Optional[str]) -> Optional[Dict[str, Any]]:
    from ..engine.build import resolve

    if ev.get("data") is None:
        return None
    args = dict(ev.get("data_args") or {})
    if transfer_root is not None:
        args["root"] = transfer_root
    return resolve("dataset", ev["data"], args, trusted=False, where="a protocol's after-training evaluation")


def _evaluate_after(run: Path, ev: Dict[str, Any], transfer_root: Optional[str], device: Optional[str]) -> None:
    """One evaluation of a finished run on other data (transfer, grain) or with another protocol (finetuning)."""
    from ..api import evaluate

    evaluate(ev["name"], run=run, data=_after_data(ev, transfer_root), device=device or "auto",
             evaluator_args=dict(ev.get("args") or {}))


def advance_run(cell: Cell, run: Path, cfg: Dict[str, Any], transfer_root: Optional[str],
                device: Optional[str], budget: Optional[Budget] = None) -> Optional[int]:
    """Train (or resume) one run of a table and run its after-training evaluations; the epoch it stopped after at
    its ``trainer.max_time`` (its checkpoint saved), or None when it finished with its metric. The in-process loop
    and every launcher's job call this."""
    from ..engine.trainer import Trainer

    if not _fit_done(run, cfg):
        result = Trainer(cfg, resume=(run / "config.yaml").is_file()).fit()
        if result.stopped_at_epoch is not None:
            return result.stopped_at_epoch
    for ev in after_evaluations(cell, budget or Budget()):
        _evaluate_after(run, ev, transfer_root, device)
    if measured(run, cell.metric) is None:
        raise SsltkError(f"{run} finished without {cell.metric} in its results.json (is the cell's evaluate "
                         "section switched off?)")
    return None


class StoppedAtTimeLimit(SsltkError):
    """``--max-time`` ran out: the run in progress stopped at a checkpoint; the same command continues the table."""


def reproduce(table: Table, cells: List[Cell], seeds: Sequence[int], out: Path, budget: Budget,
              data_root: Optional[str], device: Optional[str] = None, train: bool = True,
              transfer_root: Optional[str] = None, log=print,
              read_from: Sequence[Path] = (), max_time: Optional[float] = None,
              launcher: Optional[Any] = None) -> List[Tuple[Cell, int, Path]]:
    """Train and evaluate every missing (cell, seed) run; finished runs are skipped and unfinished ones resumed.
    Every configuration is built and checked before the first run starts. Without training, the runs of each cell
    and seed are looked for in ``out`` and then in each ``read_from`` folder (other ``--out`` folders), in order.
    ``max_time`` (seconds) advances the unfinished runs within that wall time: each run gets what is left as its
    ``trainer.max_time``, and :class:`StoppedAtTimeLimit` is raised when one stops at its checkpoint. A
    ``launcher`` (:class:`ssltk.launch.SubmititLauncher`) runs each unfinished run as its own job instead."""
    import time as _time

    deadline = None if max_time is None else _time.monotonic() + max_time
    base = cell_runs(out, table, budget)
    if read_from and train:
        raise SsltkError("--runs-from reads finished runs only: add --table-only (runs train into --out)")
    bases = [base] + [cell_runs(Path(r), table, budget) for r in read_from]
    wanted = [c.id for c in cells]
    needed = {s.id: s for s in (source_cell(c, table) for c in cells) if s is not None and s.id not in wanted}
    plan = []
    order = list(needed.values()) + [c for c in cells if c.from_run is None] + \
        [c for c in cells if c.from_run is not None]  # the runs others train on come first
    for cell in order:
        for seed in seeds:
            run = base / cell.run_id / f"seed{seed}"
            plan.append((cell, seed, run, run_config(cell, seed, run, budget, data_root, device,
                                                     _source_run(base, table, cell, seed))))
    if train:
        checked = set()
        for cell, seed, run, cfg in plan:
            if cell.id not in checked and measured(run, cell.metric) is None:
                check_test_split(cell, cfg, budget, transfer_root)
                checked.add(cell.id)
    for i, (cell, seed, run, cfg) in enumerate(plan, 1):
        if measured(run, cell.metric) is not None or not train:
            continue
        resume = (run / "config.yaml").is_file()
        if deadline is not None:
            left = deadline - _time.monotonic()
            if left < 1.0:
                raise StoppedAtTimeLimit(f"--max-time reached before {cell.id} seed {seed}; run the same command "
                                         "again to continue the table")
            cfg = {**cfg, "trainer": {**cfg["trainer"], "max_time": f"{max(left, 1):.0f}s"}}
        log(f"[{i}/{len(plan)}] {table.name} {cell.id} seed {seed}: {'resuming' if resume else 'training'} in {run}")
        _note_provenance(base, cell, seed, resume)
        if launcher is not None:
            launcher.add(cell, seed, run, cfg)
            continue
        stopped = advance_run(cell, run, cfg, transfer_root, device, budget)
        if stopped is not None:
            raise StoppedAtTimeLimit(f"--max-time reached: {cell.id} seed {seed} stopped after epoch {stopped} "
                                     f"with its checkpoint in {run}; run the same command again to continue the "
                                     "table")
    if launcher is not None:
        launcher.run_all(lambda c, r, cfg_: advance_run(c, r, cfg_, transfer_root, device, budget), log)
    done = [(cell, seed, run if train else _finished_in(bases, cell, seed))
            for cell, seed, run, _ in plan if cell.id in wanted]
    return sorted(done, key=lambda r: (wanted.index(r[0].id), seeds.index(r[1])))
