"""REPRODUCTION.md, generated from the manifest of kept weights and the protocol files (never edited by hand).

Per paper table: every encoded cell with the paper's mean ± std, the measured mean ± std over the kept seeds, the
difference, whether it is within 1.5 points, and the conditions that differ from the paper; then the cells not yet
measured with their cost. Its first lines give the coverage. The same manifest and protocols give the same bytes: the
report carries no date or machine of its own (each entry carries those of its run).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..zoo import ZOO, read_manifest
from ..eval.summary import mean_std
from .cost import estimate_minutes, relative_speed

#: a measured cell agrees with the paper within this many points (paper-targets.md)
WITHIN = 1.5


def _paper(cell: Any) -> str:
    if cell.paper_mean is None:
        return "n/a"
    return f"{cell.paper_mean:.2f}" + (f" ± {cell.paper_std:.2f}" if cell.paper_std is not None else "")


def _minutes(m: float) -> str:
    if math.isnan(m):
        return "?"
    return f"{m:.0f} min" if m < 90 else f"{m / 60:.1f} h"


def describe(cond: Dict[str, Any], entry: Dict[str, Any]) -> str:
    """One sentence of conditions: budget, sizes, images, split, precision, code and machine."""
    parts = [cond.get("budget", "")]
    if cond.get("epochs"):
        steps = f", {cond['steps_per_epoch']} steps per epoch" if cond.get("steps_per_epoch") else ""
        parts.append(f"{cond['epochs']} epochs at batch {cond.get('batch_size')}{steps}")
    if cond.get("train_images"):
        parts.append(f"{cond['train_images']:,} training images ({cond.get('images', '?')})")
    split = cond.get("split")
    if cond.get("eval_images"):
        what = {"test": "test images", "val": "held-out training images (validation split)"}.get(split, "images")
        parts.append(f"scored on {cond['eval_images']:,} {what}")
    parts.append(f"{cond.get('precision', '?')}")
    parts.append(f"trained by {entry.get('trained_by', '?')}, kept by {entry.get('kept_by', '?')} on "
                 f"{cond.get('machine', '?')}")
    return "; ".join(p for p in parts if p)


def _method_key(cell: Any) -> Tuple[str, str, str]:
    data = str(cell.spec.get("data") or "")
    family = "cifar" if data.startswith("cifar") else data
    return str(cell.spec.get("objective")), str(cell.spec.get("backbone", "conv4")), family


def measured_rates(tables: Dict[str, Any], entries: List[Dict[str, Any]]) -> Dict[Tuple[str, str, str], float]:
    """CPU training views per second per (method, backbone, data family), from the kept runs, per unit of the
    protocol's relative speed (median).

    A view costs more as a configuration grows (relational reasoning's K(K-1) pairs, a bigger K of coherent views),
    so a rate measured at K=4 is not K=32's: each kept rate is divided by its own cell's measured relative speed
    (``cost.speed``, method_speed.py) and a cell's rate is that unit times its own speed."""
    cells = {(t.name, c.id): c for t in tables.values() for c in t.cells}
    found: Dict[Tuple[str, str, str], List[float]] = {}
    for e in entries:
        cond = e.get("conditions") or {}
        cell = cells.get((e["table"], e["cell"]))
        if cell is None or not cond.get("train_views_per_s") or "CPU only" not in str(cond.get("machine", "")):
            continue
        found.setdefault(_method_key(cell), []).append(float(cond["train_views_per_s"]) / relative_speed(cell))
    return {k: sorted(v)[len(v) // 2] for k, v in found.items()}


def cpu_cost(cell: Any, rates: Dict[Tuple[str, str, str], float]) -> Tuple[float, bool]:
    """(minutes of one seed on this kind of CPU, whether the training rate was measured for this method)."""

    unit = None if cell.from_run is not None else rates.get(_method_key(cell))
    rate = None if unit is None else unit * relative_speed(cell)
    return estimate_minutes(cell, "cpu", rate=rate), rate is not None


def render(tables: Dict[str, Any], entries: List[Dict[str, Any]], zoo_label: str = "ssltk/zoo/manifest.json") -> str:
    kept = [e for e in entries if e.get("weights") and e.get("budget_tag", "full") == "full"]
    lost = [e for e in entries if not e.get("weights")]
    by_cell: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for e in kept:
        by_cell.setdefault((e["table"], e["cell"]), []).append(e)
    rates = measured_rates(tables, entries)
    paper_cells = sum(int(t.paper_cells or len(t.cells)) for t in tables.values())
    encoded = sum(len(t.cells) for t in tables.values())
    measured = within = 0
    sections: List[str] = []
    for t in tables.values():
        rows, todo, notes = [], [], []
        t_measured = t_within = 0
        for c in t.cells:
            got = by_cell.get((t.name, c.id), [])
            if not got:
                cpu, real = cpu_cost(c, rates)

                todo.append(f"| {c.label} | {_paper(c)} | {_minutes(cpu)}{'' if real else ' (estimate)'} | "
                            f"{_minutes(estimate_minutes(c, 'gpu'))} |")
                continue
            values = [float(e["value"]) for e in sorted(got, key=lambda e: e["seed"])]
            mean, std = mean_std(values)
            std = std if len(values) > 1 else None  # one run has no spread to show
            t_measured += 1
            text = f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "") + f" (n={len(values)})"
            if c.paper_mean is not None:
                diff = mean - c.paper_mean
                ok = abs(diff) <= WITHIN
                t_within += ok
                verdict = f"{diff:+.2f} | {'yes' if ok else 'no'}"
            else:
                verdict = "- | -"
            cond = describe(got[0]["conditions"], got[0])
            if cond not in notes:
                notes.append(cond)
            seeds = ", ".join(f"`{e['name']}`" for e in sorted(got, key=lambda e: e["seed"]))
            rows.append(f"| {c.label} | {_paper(c)} | {text} | {verdict} | [{notes.index(cond) + 1}] | {seeds} |")
        measured += t_measured
        within += t_within
        head = [f"## {t.name}: {t.title}", "",
                f"{t.source}. Cells: {t.paper_cells or len(t.cells)} in the paper, {len(t.cells)} encoded, "
                f"{t_measured} measured with kept weights, {t_within} within {WITHIN}.", ""]
        if rows:
            head += ["| cell | paper | measured | difference | within 1.5 | conditions | kept weights |",
                     "|---|---|---|---|---|---|---|", *rows, ""]
            head += [f"[{i}] {n}" for i, n in enumerate(notes, 1)] + [""]
        if todo:
            head += ["Not measured yet (one seed; CPU: this kind of 2-core CPU, from the training speed a kept run "
                     "of the same method measured, scaled by the protocol's measured relative cost of the cell's "
                     "configuration (its K, its batch), else the protocol's estimate; GPU: the protocol's estimate, "
                     "measured for Conv-4 only):", "",
                     "| cell | paper | CPU | GPU (estimate) |", "|---|---|---|---|", *todo, ""]
        sections.append("\n".join(head))
    cover = [
        "# Reproduction report",
        "",
        f"Generated by `ssltk reproduce --report REPRODUCTION.md` from `{zoo_label}` and the protocol files; "
        "do not edit by hand.",
        "",
        f"Coverage: {paper_cells} cells in the papers' tables, {encoded} encoded, {measured} measured with kept "
        f"weights, {within} within {WITHIN} points of the paper.",
        "",
        f"Kept weight files: {len(kept)}. Numbers recorded before weights were kept: {len(lost)} (their weights are "
        "lost; listed at the end, not counted as measured).",
        "",
        "Check a number: `ssltk reproduce TABLE --cells CELL --verify --data.root DATA` scores the kept weights "
        "again with the protocol's evaluation; `ssltk.load_backbone(\"TABLE/ROW/COLUMN\")` or "
        "`--backbone.weights TABLE/ROW/COLUMN` loads them.",
        "",
    ]
    tail: List[str] = []
    if lost:
        tail = ["## Recorded before weights were kept", "",
                "Converted from the reproduction records of examples/benchmarks/RESULTS.md. Their weights were not "
                "kept, so they cannot be checked. Each trained on a folder of CIFAR-10 training images only and "
                "scored held-out training images: 40,000 trained and 10,000 scored unless the budget says otherwise, "
                "not the paper's test split (the paper's own split for Table 10). Each number is one seed's, or the "
                "mean of n seeds where the record did not list them; oldest first.", "",
                "| table | cell | paper | budget | recorded (seed: value) | trained by |", "|---|---|---|---|---|---|"]
        groups: Dict[Tuple[str, str, str], List[Dict[str, Any]]] = {}
        for e in lost:
            groups.setdefault((e["table"], e["cell"], (e.get("conditions") or {}).get("budget", "?")), []).append(e)
        for (table, cell, budget), group in sorted(groups.items()):
            group.sort(key=lambda e: (e.get("date", ""), e["seed"]))
            p = group[0].get("paper") or {}
            paper = "n/a" if p.get("mean") is None else f"{p['mean']:.2f}"
            values = ", ".join((f"{e['seed']}: " if e["seed"] >= 0 else f"mean of {e.get('n', '?')}: ")
                               + f"{e['value']:.2f}" for e in group)
            commits = ", ".join(dict.fromkeys(c for e in group for c in str(e.get("trained_by", "?")).split(", ")))
            if budget.startswith("the paper's full budget"):
                budget = "the paper's epochs and batch (40,000 images trained)"
            tail.append(f"| {table} | {cell} | {paper} | {budget} | {values} | {commits} |")
        tail.append("")
    return "\n".join(cover + sections + tail).rstrip() + "\n"


def write_report(path: Path, tables: Dict[str, Any], zoo: Optional[Path] = None) -> Path:
    label = "ssltk/zoo/manifest.json" if zoo is None else str(Path(zoo) / "manifest.json")
    path.write_text(render(tables, read_manifest(zoo or ZOO), label), encoding="utf-8")
    return path
