"""The training speed of finished ``ssltk reproduce`` runs against the rate their protocol states for ``--list``.

``ssltk reproduce --list`` estimates a cell's cost from the protocol file's ``cost`` (training views per second of
a backbone on a device, times a method's relative ``speed``). This script reads what the runs measured: the
median and the 90th percentile of the per-epoch ``views_per_s`` in each run's ``metrics.jsonl`` (these shared
machines slow epochs down while other jobs run: the 90th percentile is the nearest to a machine of one's own) and the
summed epoch seconds. It prints both beside the protocol's rate and its estimate, so that the protocol's figures can
be set from measurements. It trains nothing. Run folders are
``OUT/TABLE/BUDGET/ROW/COLUMN/seedN``, as ``ssltk reproduce`` writes them; only full-budget runs are compared.

    python examples/benchmarks/cost_calibration.py RUN_DIR [RUN_DIR ...] [--device cpu] [--record]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import epoch_records, report  # noqa: E402


def cell_of(run: Path, tables: dict):
    """(table, cell) whose runs live in ``run``, from its path; None for a reduced budget or an unknown table."""
    if len(run.parents) < 4:
        return None
    seed, col, row, budget, table = run.name, run.parent.name, run.parent.parent.name, run.parents[2].name, \
        run.parents[3].name
    if not seed.startswith("seed") or budget != "full" or table not in tables:
        return None
    run_id = f"{row}/{col}"
    for cell in tables[table].cells:
        if cell.run_id == run_id:
            return tables[table], cell
    return None


def main() -> None:
    from ssltk.reproduce import estimate_minutes, eval_minutes, load_protocols, training_rate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="finished run folders of ssltk reproduce")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu"), help="the protocol rates to compare with")
    p.add_argument("--record", action="store_true", help="append the figures to examples/benchmarks/RESULTS.md")
    a = p.parse_args()
    tables = load_protocols()
    lines = [f"training views per second: measured (median and 90th percentile over epochs) against the protocol's "
             f"{a.device} rate (views_per_s x speed); minutes of training: measured (sum of epochs) against --list's "
             "estimate"]
    for run in a.runs:
        found = cell_of(run.resolve(), tables)
        if found is None:
            sys.exit(f"{run}: not a full-budget run folder of a known table (OUT/TABLE/full/ROW/COLUMN/seedN)")
        table, cell = found
        epochs = [e for e in epoch_records(run) if e.get("views_per_s")]
        if not epochs:  # random weights: the run only evaluates
            lines.append(f"  {table.name} {cell.id} {run.name}: no training epochs")
            continue
        rates = sorted(float(e["views_per_s"]) for e in epochs)
        rate = statistics.median(rates)
        # the faster epochs are those that had the machine to themselves, nearest to what an unshared run gets
        fast = rates[int(0.9 * (len(rates) - 1))]
        minutes = sum(float(e.get("seconds", 0)) for e in epochs) / 60
        stated = training_rate(cell, a.device)
        estimate = estimate_minutes(cell, a.device) - eval_minutes(cell, a.device)
        lines.append(f"  {table.name} {cell.id} {run.name}: {len(epochs)} epochs; {rate:.0f} views/s measured, "
                     f"{fast:.0f} at the 90th percentile, {stated:.0f} stated (median/stated {rate / stated:.2f}, "
                     f"90th/stated {fast / stated:.2f}); {minutes:.0f} min measured, "
                     f"{estimate:.0f} min estimated")
    report(f"Measured training speed against the protocols' {a.device} cost figures (cost_calibration.py)", lines,
           a.record)


if __name__ == "__main__":
    main()
