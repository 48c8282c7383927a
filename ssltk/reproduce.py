"""Paper protocols as data, and ``ssltk reproduce`` to run them.

A protocol file (``ssltk/protocols/*.yaml``, shipped with ssltk, or any file given with ``--protocol``) describes
tables of a paper. Each table has ``rows`` (methods), ``columns`` (settings) and ``cells``, the (row, column) pairs the
paper reports, with the paper's mean and standard deviation. A cell's run configuration is the table's ``base``,
overlaid by its column, its row and the cell's own entries, in that order (mappings merge key by key)::

    objective, objective_args, backbone, backbone_args, data, data_args, augment, augment_args, trainer, evaluate

Components are registry names only, so a protocol file, like any file ssltk reads, cannot name code to run.

A cell may train on what another cell's run produced (``from_run: {cell: ROW/COLUMN, arg: NAME}``): that cell's run of
the same seed is trained first, and its folder is passed as the objective argument ``NAME`` (label transfer: a SeLa
run's self-labels train a fresh network). A cell whose number the paper's text does not give has ``paper: null`` and a
``note`` saying why; it is measured and tabled without a difference.

``ssltk reproduce TABLE`` trains and evaluates every missing run of the table's cells, resumes unfinished ones and
skips finished ones, then writes the table side by side with the paper (Markdown and a PNG chart). Runs live in
``OUT/TABLE/ROW/COLUMN/seedS``; a changed budget (``--epochs``, ``--train_size``) gets its own folder and says so in
the table's title, so changed and full runs never mix.
"""
from __future__ import annotations

import copy
import datetime as _dt
import fnmatch
import math
import platform
import shlex
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from .yaml_io import load_yaml
from .errors import SsltkError

CONFIG_KEYS = ("objective", "objective_args", "backbone", "backbone_args", "data", "data_args", "augment",
               "augment_args", "trainer", "evaluate")
CELL_KEYS = set(CONFIG_KEYS) | {"label", "paper", "cost", "note", "metric", "after", "from_run"}
#: the points within which a measured mean counts as a reproduction of the paper's (the issues' criterion)
TOLERANCE = 1.5


def merge(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    """``over`` laid on ``base``: mappings merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass
class Cell:
    """One cell of a paper table: a complete run configuration and the paper's number."""

    table: str
    row: str
    column: str
    label: str
    spec: Dict[str, Any]
    #: None where the paper's text does not give the number (``note`` says why)
    paper_mean: Optional[float]
    paper_std: Optional[float]
    cost: Dict[str, Any] = field(default_factory=dict)
    #: the results.json key path of the cell's number (the table's unless the cell names another)
    metric: str = "linear.accuracy"
    #: evaluations run after training, each {name, args, data, data_args}: domain transfer, grain, finetuning
    after: List[Dict[str, Any]] = field(default_factory=list)
    #: the cell whose runs this one shares (the same training, scored another way: kNN and a probe of one model)
    run_id: str = ""
    #: {cell, arg}: the cell whose run (same seed) is passed to this one's objective as argument ``arg``
    from_run: Optional[Dict[str, str]] = None
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.row}/{self.column}"


@dataclass
class Table:
    name: str
    title: str
    source: str
    metric: str
    cells: List[Cell]
    note: str = ""
    #: the cells the paper's table prints for the methods ssltk runs (None: as many as are encoded); the report's
    #: coverage counts them
    paper_cells: Optional[int] = None


def _paper_value(value: Any, where: str, note: Any = None) -> Tuple[Optional[float], Optional[float]]:
    if value is None:
        if not note:
            raise SsltkError(f"{where}: paper is null, so the cell needs a note saying why the paper's number is missing")
        return None, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return float(value[0]), float(value[1])
    raise SsltkError(f"{where}: paper must be a number or [mean, std], got {value!r}")


def _check_keys(entry: Any, allowed: set, where: str) -> Dict[str, Any]:
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise SsltkError(f"{where} must be a mapping, got {type(entry).__name__}")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise SsltkError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    return entry


def parse_tables(doc: Any, where: str) -> Dict[str, Table]:
    """The tables of one protocol document (already read as YAML)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise SsltkError(f"{where} must hold a mapping with a 'tables' mapping")
    paper = str(doc.get("paper", ""))
    out: Dict[str, Table] = {}
    for name, t in doc["tables"].items():
        tw = f"{where}: table {name}"
        _check_keys(t, {"title", "source", "metric", "base", "rows", "columns", "cells", "note", "paper_cells"}, tw)
        base = _check_keys(t.get("base"), CELL_KEYS - {"label", "paper"}, f"{tw} base")
        rows = {r: _check_keys(v, CELL_KEYS - {"paper"}, f"{tw} row {r}") for r, v in (t.get("rows") or {}).items()}
        cols = {c: _check_keys(v, CELL_KEYS - {"paper"}, f"{tw} column {c}")
                for c, v in (t.get("columns") or {}).items()}
        cells: List[Cell] = []
        for r, by_col in (t.get("cells") or {}).items():
            if r not in rows:
                raise SsltkError(f"{tw}: cells name row {r!r}, which rows do not define")
            for c, entry in (by_col or {}).items():
                if c not in cols:
                    raise SsltkError(f"{tw}: cell {r}/{c} names column {c!r}, which columns do not define")
                if not isinstance(entry, dict):
                    entry = {"paper": entry}
                entry = _check_keys(entry, CELL_KEYS, f"{tw} cell {r}/{c}")
                if "paper" not in entry:
                    raise SsltkError(f"{tw} cell {r}/{c} has no paper value")
                mean, std = _paper_value(entry["paper"], f"{tw} cell {r}/{c}", entry.get("note"))
                spec = merge(merge(merge(base, cols[c]), rows[r]), {k: v for k, v in entry.items() if k != "paper"})
                label = f"{rows[r].get('label', r)}, {cols[c].get('label', c)}"
                after = spec.get("after") or []
                if not isinstance(after, list) or not all(isinstance(e, dict) and "name" in e for e in after):
                    raise SsltkError(f"{tw} cell {r}/{c}: after must be a list of {{name, args, data, data_args}}")
                cells.append(Cell(name, r, c, label, {k: spec[k] for k in CONFIG_KEYS if k in spec}, mean, std,
                                  dict(spec.get("cost") or {}), str(spec.get("metric", t.get("metric", "linear.accuracy"))),
                                  after, from_run=spec.get("from_run"), note=str(entry.get("note") or "")))
        if not cells:
            raise SsltkError(f"{tw} has no cells")
        _check_from_run(cells, tw)
        first: Dict[str, str] = {}
        for cell in cells:
            key = yaml.safe_dump({"spec": cell.spec, "from_run": cell.from_run}, sort_keys=True)
            cell.run_id = first.setdefault(key, cell.id)
        paper_cells = t.get("paper_cells")
        if paper_cells is not None and (not isinstance(paper_cells, int) or paper_cells < len(cells)):
            raise SsltkError(f"{tw}: paper_cells must be a whole number of at least its {len(cells)} encoded cells")
        out[name] = Table(name, str(t.get("title", name)), str(t.get("source", paper)),
                          str(t.get("metric", "linear.accuracy")), cells, str(t.get("note", "")), paper_cells)
    return out


def _check_from_run(cells: List[Cell], where: str) -> None:
    """Each ``from_run`` names a cell of the same table that does not itself train on another run."""
    by_id = {c.id: c for c in cells}
    for cell in cells:
        src = cell.from_run
        if src is None:
            continue
        if not isinstance(src, dict) or set(src) != {"cell", "arg"} or not all(isinstance(v, str) for v in src.values()):
            raise SsltkError(f"{where} cell {cell.id}: from_run must be {{cell: ROW/COLUMN, arg: NAME}}, got {src!r}")
        source = by_id.get(src["cell"])
        if source is None:
            raise SsltkError(f"{where} cell {cell.id}: from_run names cell {src['cell']!r}, which the table lacks")
        if source.from_run is not None:
            raise SsltkError(f"{where} cell {cell.id}: from_run names {source.id}, which trains on another run itself")


def source_cell(cell: Cell, table: "Table") -> Optional[Cell]:
    """The cell whose run ``cell`` trains on, if any."""
    if cell.from_run is None:
        return None
    return next(c for c in table.cells if c.id == cell.from_run["cell"])


def load_protocols(extra: Sequence[str] = ()) -> Dict[str, Table]:
    """Every table of the protocols shipped with ssltk, then of the given files (a name may not repeat)."""
    docs: List[Tuple[str, Any]] = []
    for res in sorted(resources.files("ssltk.protocols").iterdir(), key=lambda r: r.name):
        if res.name.endswith(".yaml"):
            docs.append((f"ssltk/protocols/{res.name}", load_yaml(res.read_text(encoding="utf-8"), res.name)))
    for path in extra:
        p = Path(path)
        if not p.is_file():
            raise SsltkError(f"protocol file not found: {p}")
        docs.append((str(p), load_yaml(p.read_text(encoding="utf-8"), str(p))))
    tables: Dict[str, Table] = {}
    for where, doc in docs:
        for name, table in parse_tables(doc, where).items():
            if name in tables:
                raise SsltkError(f"{where} defines table {name!r} again")
            tables[name] = table
    return tables


# cost --------------------------------------------------------------------------------------------------------------
def views_per_image(spec: Dict[str, Any]) -> Tuple[int, bool]:
    """(views the objective makes of each training image, whether it trains at all), from the objective itself."""
    from .engine.build import build_objective, resolve

    obj = build_objective(resolve("objective", spec["objective"], spec.get("objective_args"), trusted=False),
                          in_dim=64, num_classes=10)
    return int(obj.num_views), bool(getattr(obj, "trains", True))


def training_rate(cell: Cell, device: str) -> float:
    """Training views per second the protocol states for ``cell`` on ``device``: ``views_per_s`` times ``speed``."""
    return float((cell.cost.get("views_per_s") or {}).get(device, 0) or 0) * float(cell.cost.get("speed", 1.0))


def eval_minutes(cell: Cell, device: str) -> float:
    """Minutes the protocol states for ``cell``'s evaluation on ``device``."""
    return float((cell.cost.get("eval_minutes") or {}).get(device, 0) or 0)


def estimate_minutes(cell: Cell, device: str, epochs: Optional[int] = None, train_size: Optional[int] = None) -> float:
    """Minutes a cell takes on ``device`` (cpu or gpu): training views / the protocol's views-per-second rate for the
    backbone and data on that device (``cost.views_per_s``, usually per column) times the method's relative speed
    (``cost.speed``, usually per row), plus the evaluation's minutes. Rates are stated in the protocol file;
    ``cost.images`` is the whole training set, less the cell's held-out ``val_size``."""
    cost = cell.cost
    images = int(train_size or cost.get("images", 0))
    held = (cell.spec.get("data_args") or {}).get("val_size", 0)
    if not train_size and isinstance(held, (int, float)) and not isinstance(held, bool):
        # cost.images is the whole training set; a held-out validation split does not train
        images -= int(held) if held >= 1 else int(images * held)
    ep = int(epochs or (cell.spec.get("trainer") or {}).get("epochs", 1))
    rate = training_rate(cell, device)
    try:
        if cell.from_run is not None:  # its objective cannot be built before the run it reads exists
            views, trains = int(cost.get("views", 1)), True
        else:
            views, trains = views_per_image(cell.spec)
    except SsltkError:  # its plugin is not installed: the cost is unknown, the cell still listed
        return math.nan
    minutes = eval_minutes(cell, device)
    if trains and rate > 0:
        minutes += images * ep * views / rate / 60
    return minutes


def _fmt_minutes(m: float) -> str:
    if math.isnan(m):
        return "?"
    return f"{m:.0f} min" if m < 90 else f"{m / 60:.1f} h"


def list_tables(tables: Dict[str, Table], pattern: str = "*", names: Optional[Sequence[str]] = None) -> str:
    lines: List[str] = []
    for name, t in tables.items():
        if names and name not in names:
            continue
        cells = [c for c in t.cells if fnmatch.fnmatch(c.id, pattern)]
        if not cells:
            continue
        cpu = sum(estimate_minutes(c, "cpu") for c in cells)
        gpu = sum(estimate_minutes(c, "gpu") for c in cells)
        lines.append(f"{name}: {t.title}")
        lines.append(f"  source: {t.source}; {len(cells)} cells; one seed of every cell: "
                     f"about {_fmt_minutes(cpu)} on this kind of CPU, {_fmt_minutes(gpu)} on one GPU")
        width = max(len(c.id) for c in cells)
        for c in cells:
            std = f" ± {c.paper_std:.2f}" if c.paper_std is not None else ""
            paper = f"{c.paper_mean:6.2f}" if c.paper_mean is not None else "   n/a"
            lines.append(f"    {c.id:<{width}}  paper {paper}{std:<8}  cpu {_fmt_minutes(estimate_minutes(c, 'cpu')):>8}"
                         f"  gpu {_fmt_minutes(estimate_minutes(c, 'gpu')):>7}  ({c.label})")
        lines.append("")
    return "\n".join(lines).rstrip()


# running -----------------------------------------------------------------------------------------------------------
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
    from .api import make_config
    from .engine.build import check_config

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
    from .engine.build import build

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
    from .eval.results import read_results
    from .eval.summary import metric_value

    return metric_value(read_results(run), metric)


def source_revision() -> str:
    """The git commit of the ssltk source that runs (with a mark when it has uncommitted changes), else its version."""
    from . import __version__

    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ssltk", "plugins"], cwd=root,
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
    from .engine.rundir import jsonl_lines

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


def _finished_in(bases: Sequence[Path], cell: Cell, seed: int) -> Path:
    """The run of ``cell`` and ``seed`` in the first of ``bases`` where it has finished (else in the first base)."""
    for base in bases:
        run = base / cell.run_id / f"seed{seed}"
        if measured(run, cell.metric) is not None:
            return run
    return bases[0] / cell.run_id / f"seed{seed}"


def _fit_done(run: Path, cfg: Dict[str, Any]) -> bool:
    """Whether training and the fit's own evaluation finished (a kill during the evaluation resumes into it)."""
    from .eval.results import read_results

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
    from .engine.build import resolve

    if ev.get("data") is None:
        return None
    args = dict(ev.get("data_args") or {})
    if transfer_root is not None:
        args["root"] = transfer_root
    return resolve("dataset", ev["data"], args, trusted=False, where="a protocol's after-training evaluation")


def _evaluate_after(run: Path, ev: Dict[str, Any], transfer_root: Optional[str], device: Optional[str]) -> None:
    """One evaluation of a finished run on other data (transfer, grain) or with another protocol (finetuning)."""
    from .api import evaluate

    evaluate(ev["name"], run=run, data=_after_data(ev, transfer_root), device=device or "auto",
             evaluator_args=dict(ev.get("args") or {}))


def advance_run(cell: Cell, run: Path, cfg: Dict[str, Any], transfer_root: Optional[str],
                device: Optional[str], budget: Optional[Budget] = None) -> Optional[int]:
    """Train (or resume) one run of a table and run its after-training evaluations; the epoch it stopped after at
    its ``trainer.max_time`` (its checkpoint saved), or None when it finished with its metric. The in-process loop
    and every launcher's job call this."""
    from .engine.trainer import Trainer

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


# the table ---------------------------------------------------------------------------------------------------------
def summarise(table: Table, runs: List[Tuple[Cell, int, Path]]) -> List[Dict[str, Any]]:
    from .eval.summary import mean_std

    rows = []
    by_cell: Dict[str, List[float]] = {}
    order: List[Cell] = []
    for cell, _, run in runs:
        if cell.id not in by_cell:
            by_cell[cell.id] = []
            order.append(cell)
        value = measured(run, cell.metric)
        if value is not None:
            by_cell[cell.id].append(value)
    for cell in order:
        vals = by_cell[cell.id]
        row: Dict[str, Any] = {"cell": cell, "n": len(vals)}
        if vals:
            row["mean"], row["std"] = mean_std(vals)
            if cell.paper_mean is not None:
                row["diff"] = row["mean"] - cell.paper_mean
                row["within"] = abs(row["diff"]) <= TOLERANCE
        rows.append(row)
    return rows


def markdown(table: Table, rows: List[Dict[str, Any]], budget: Budget, seeds: Sequence[int]) -> str:
    lines = [f"### {table.name}: {table.title}", "",
             f"{table.source}; {budget.describe()}; seeds {' '.join(map(str, seeds))}", "",
             "| cell | paper | measured | difference | within 1.5 |", "|---|---|---|---|---|"]
    notes: List[str] = []
    for r in rows:
        c = r["cell"]
        if c.paper_mean is None:
            notes.append(f"{c.label}: {c.note}")
            paper = f"n/a [{len(notes)}]"
        else:
            paper = f"{c.paper_mean:.2f}" + (f" ± {c.paper_std:.2f}" if c.paper_std is not None else "")
        if r["n"]:
            # one run has no spread to show: "± 0.00" would read as a measured agreement between seeds
            got = f"{r['mean']:.2f}" + (f" ± {r['std']:.2f}" if r["n"] > 1 else "") + f" (n={r['n']})"
            diff = f"{r['diff']:+.2f}" if "diff" in r else "-"
            within = ("yes" if r["within"] else "no") if "within" in r else "-"
            lines.append(f"| {c.label} | {paper} | {got} | {diff} | {within} |")
        else:
            lines.append(f"| {c.label} | {paper} | not run yet | - | - |")
    lines += [""] + [f"[{i}] {n}" for i, n in enumerate(notes, 1)] if notes else []
    return "\n".join(lines)


def chart(table: Table, rows: List[Dict[str, Any]], budget: Budget, path: Path) -> Path:
    """Paper against measured, one pair of bars per cell, with the standard deviations as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * n + 2), 4.2))
    xs = list(range(n))
    paper = [math.nan if r["cell"].paper_mean is None else r["cell"].paper_mean for r in rows]
    perr = [r["cell"].paper_std or 0.0 for r in rows]
    got = [r.get("mean", math.nan) for r in rows]
    gerr = [r.get("std", 0.0) for r in rows]
    ax.bar([x - 0.2 for x in xs], paper, 0.4, yerr=perr, label="paper", color="#999999", capsize=3)
    ax.bar([x + 0.2 for x in xs], got, 0.4, yerr=gerr, label="ssltk", color="#1f77b4", capsize=3)
    ax.set_xticks(xs, [r["cell"].id for r in rows], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{table.name} ({'changed budget' if budget.reduced else 'full budget'})", fontsize=10)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def machine_description() -> str:
    """The host, its processor and accelerator, and torch's version: the conditions line of every record."""
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU only, {os.cpu_count()} cores"
    return f"{platform.node() or 'host'} ({cpu}, {dev}), torch {torch.__version__}"


def utc_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def conditions(argv: Sequence[str], runs: Sequence[Tuple[Cell, int, Path]]) -> List[str]:
    """Machine, command, commits, date and (when they lie in several folders) where each run was read from."""
    lines = [f"- date: {utc_stamp()}",
             f"- machine: {machine_description()}",
             f"- commit: {source_revision()} (table); runs trained by {', '.join(trained_by(runs)) or 'unrecorded code'}",
             f"- command: `ssltk reproduce {shlex.join(argv)}`"]
    folders: Dict[Path, List[str]] = {}
    each: List[str] = []
    for cell, seed, run in runs:
        value = measured(run, cell.metric)
        if value is None:
            continue
        folders.setdefault(run.parents[2], []).append(f"{cell.id} seed {seed}")
        # each seed's own figure, so that the record still says what every run scored once its folder is gone
        # (run folders live outside the repository and do not outlive the machine that trained them)
        entry = f"{cell.id} seed {seed} {value:.2f}"
        if (run / "backbone.safetensors").is_file():
            # the digest lets a later scoring of the weights on other data name the very files this table scored
            entry += f" {_sha256(run / 'backbone.safetensors')[:16]}"
        each.append(entry)
    if len(folders) > 1:
        lines += [f"- runs read from {base}: {', '.join(names)}" for base, names in folders.items()]
    if each:
        lines.append("- each run: measured accuracy and backbone.safetensors sha256 (first 16 hex digits): "
                     + "; ".join(each))
    return lines


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cmd_reproduce(argv: List[str]) -> int:
    """Run a paper table: ``ssltk reproduce --list`` or ``ssltk reproduce TABLE [--cells PATTERN] [--seeds 0 1 2]``."""
    import argparse

    p = argparse.ArgumentParser(prog="ssltk reproduce", description=cmd_reproduce.__doc__, allow_abbrev=False)
    p.add_argument("table", nargs="?", help="a table name (see --list)")
    p.add_argument("--list", action="store_true", help="name the tables, their cells, the papers' numbers and costs")
    p.add_argument("--cells", default="*", help="only cells whose ROW/COLUMN matches this pattern (fnmatch)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--data.root", dest="data_root", default=None, help="where the table's training dataset is")
    p.add_argument("--transfer.root", dest="transfer_root", default=None,
                   help="where the dataset of after-training evaluations is (domain transfer)")
    p.add_argument("--out", default="reproduce", help="folder of the runs and tables (default ./reproduce)")
    p.add_argument("--epochs", type=int, default=None, help="a reduced training budget (printed in the title)")
    p.add_argument("--train_size", type=int, default=None, help="a reduced training set (printed in the title)")
    p.add_argument("--val-split", dest="val_split", type=int, default=None,
                   help="cells that score the test set score N held-out training images instead: for data without "
                        "a test split (a deviation, printed in the title)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default: the trainer's auto)")
    p.add_argument("--protocol", action="append", default=[], help="also read the tables of this protocol file")
    p.add_argument("--table-only", action="store_true", help="train nothing: table the runs that have finished")
    p.add_argument("--runs-from", dest="runs_from", action="append", default=[], metavar="DIR",
                   help="with --table-only: also table the finished runs of this other --out folder; each cell and "
                        "seed comes from the first folder, --out first, where its run has finished")
    p.add_argument("--record", default=None, help="append the table and its conditions to this Markdown file")
    p.add_argument("--max-time", dest="max_time", default=None,
                   help="advance the unfinished runs within this wall time (3600, 90s, 20m, 1h30m, DD:HH:MM:SS), "
                        "stopping at a checkpoint with exit status 3; the same command continues")
    p.add_argument("--launcher", choices=("inprocess", "submitit"), default="inprocess",
                   help="inprocess (default): one run after another here; submitit: one job per run (SLURM, or "
                        "local processes with --launcher-executor local), requeued from its checkpoint when it "
                        "reaches its time")
    p.add_argument("--launcher-executor", default="auto", help="submitit: auto (SLURM where it is) or local")
    p.add_argument("--launcher-folder", default=None, help="submitit: the jobs' logs (default OUT/submitit-logs)")
    p.add_argument("--launcher-time", default=None,
                   help="submitit: each job's time request, a duration (default: the cell's cost estimate x 1.5)")
    p.add_argument("--launcher-partition", default=None, help="submitit: the SLURM partition")
    p.add_argument("--launcher-gpus", type=int, default=0, help="submitit: GPUs per job")
    p.add_argument("--keep", action="store_true",
                   help="keep each finished run's backbone in float16 with the shipped weights (or --zoo), scored "
                        "again from the kept file, and its manifest entry")
    p.add_argument("--verify", action="store_true",
                   help="train nothing: score the table's kept weights again with the protocol's evaluation and "
                        "print paper, recorded and re-scored; a difference beyond --tolerance is an error")
    p.add_argument("--tolerance", type=float, default=None,
                   help="--verify: the largest difference from the recorded number, in points (default 0.1)")
    p.add_argument("--zoo", default=None,
                   help="the folder of kept weights and their manifest.json (default: the one shipped with ssltk)")
    p.add_argument("--kept", action="store_true", help="name the kept weights (the names load_backbone takes)")
    p.add_argument("--report", default=None, metavar="FILE",
                   help="write the reproduction report (REPRODUCTION.md) generated from the manifest and the "
                        "protocols, and train nothing")
    a = p.parse_args(argv)
    tables = load_protocols(a.protocol)
    zoo = Path(a.zoo) if a.zoo else None
    if a.kept:
        from .zoo import read_manifest

        for e in read_manifest(zoo):
            if e.get("weights"):
                print(f"{e['name']:<56} {e['metric']} {e['value']:.2f}")
        return 0
    if a.report:
        from .zoo.report import write_report

        print(f"written: {write_report(Path(a.report), tables, zoo)}")
        return 0
    if a.list:
        text = list_tables(tables, a.cells, [a.table] if a.table else None)
        if not text:
            raise SsltkError(f"no table or cell matches {a.table or '*'} {a.cells}")
        print(text)
        return 0
    if not a.table:
        raise SsltkError("name a table (ssltk reproduce --list shows them)")
    if a.table not in tables:
        import difflib

        close = difflib.get_close_matches(a.table, list(tables), n=2)
        raise SsltkError(f"unknown table {a.table!r}" + (f"; did you mean {', '.join(close)}?" if close else
                                                          f"; use one of {', '.join(tables)}"))
    for name, v in (("--epochs", a.epochs), ("--train_size", a.train_size), ("--val-split", a.val_split)):
        if v is not None and v < 1:
            raise SsltkError(f"{name} must be >= 1, got {v}")
    if len(set(a.seeds)) != len(a.seeds):
        raise SsltkError(f"--seeds repeats a seed: {a.seeds}")
    table = tables[a.table]
    cells = [c for c in table.cells if fnmatch.fnmatch(c.id, a.cells)]
    if not cells:
        raise SsltkError(f"no cell of {a.table} matches {a.cells!r}; its cells: {', '.join(c.id for c in table.cells)}")
    budget = Budget(a.epochs, a.train_size, a.val_split)
    out = Path(a.out)
    if a.verify:
        from .zoo.keep import TOLERANCE, verify

        def fresh(cell: Cell, seed: int) -> Dict[str, Any]:
            return run_config(cell, seed, out / "verify", budget, a.data_root, a.device, Path("-"))

        verify(table, cells, fresh, budget, zoo, a.transfer_root, a.device,
               TOLERANCE if a.tolerance is None else a.tolerance)
        return 0
    for d in a.runs_from:
        if not Path(d).is_dir():
            raise SsltkError(f"--runs-from {d}: no such folder")
    from .values import parse_duration

    limit = parse_duration(a.max_time, "--max-time") if a.max_time is not None else None
    launcher = None
    if a.launcher == "submitit" and not a.table_only:
        from .launch import SubmititLauncher

        if limit is not None:
            raise SsltkError("--max-time is for the in-process launcher; a submitit job's time is --launcher-time")
        kind = "gpu" if a.launcher_gpus else "cpu"
        launcher = SubmititLauncher(Path(a.launcher_folder) if a.launcher_folder else out / "submitit-logs",
                                    a.launcher_executor,
                                    parse_duration(a.launcher_time, "--launcher-time") if a.launcher_time else None,
                                    lambda c: 60.0 * estimate_minutes(c, kind, a.epochs, a.train_size),
                                    a.launcher_partition, a.launcher_gpus)
    try:
        runs = reproduce(table, cells, a.seeds, out, budget, a.data_root, a.device, train=not a.table_only,
                         transfer_root=a.transfer_root, read_from=[Path(d) for d in a.runs_from], max_time=limit,
                         launcher=launcher)
    except StoppedAtTimeLimit as stop:
        print(f"ssltk: {stop}", flush=True)
        return 3
    if a.keep:
        from .zoo.keep import keep

        base = cell_runs(out, table, budget)
        configs = {run: run_config(cell, seed, run, budget, a.data_root, a.device,
                                   _source_run(base, table, cell, seed)) for cell, seed, run in runs}
        keep(runs, configs, budget, zoo, a.transfer_root, a.device)
    rows = summarise(table, runs)
    text = markdown(table, rows, budget, a.seeds)
    folder = cell_runs(out, table, budget)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.md").write_text(text + "\n", encoding="utf-8")
    png = chart(table, rows, budget, folder / "table.png")
    print(text)
    print(f"\nwritten: {folder / 'table.md'}, {png}")
    if a.record:
        with open(a.record, "a", encoding="utf-8") as fh:
            fh.write("\n".join(["", f"## ssltk reproduce {table.name} ({budget.describe()})", ""]
                               + conditions(argv, runs) + ["", text, ""]))
    return 0
