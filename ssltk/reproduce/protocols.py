"""Paper tables as data: protocol files parsed into tables of cells, each a complete run configuration."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import yaml

from ..yaml_io import load_yaml
from ..errors import SsltkError


CONFIG_KEYS = ("objective", "objective_args", "backbone", "backbone_args", "data", "data_args", "augment",
               "augment_args", "trainer", "evaluate")
CELL_KEYS = set(CONFIG_KEYS) | {"label", "paper", "cost", "note", "metric", "after", "from_run"}
#: the points within which a measured mean counts as a reproduction of the paper's (the issues' criterion)


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
