"""The side-by-side table of a reproduction: paper against measured, with its conditions."""
from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple


from .protocols import Cell, Table
from .provenance import machine_description, source_revision, trained_by, utc_stamp
from .runs import Budget, measured
from ..zoo import sha256_file


TOLERANCE = 1.5


def summarise(table: Table, runs: List[Tuple[Cell, int, Path]]) -> List[Dict[str, Any]]:
    from ..eval.summary import mean_std

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
            entry += f" {sha256_file(run / 'backbone.safetensors')[:16]}"
        each.append(entry)
    if len(folders) > 1:
        lines += [f"- runs read from {base}: {', '.join(names)}" for base, names in folders.items()]
    if each:
        lines.append("- each run: measured accuracy and backbone.safetensors sha256 (first 16 hex digits): "
                     + "; ".join(each))
    return lines
