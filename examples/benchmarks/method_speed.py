"""Training speed of every method the protocols run, as a ratio to supervised training on the same backbone.

A protocol states a cell's CPU cost as the backbone's training rate (views per second, ``cost.views_per_s``) times
the method's relative ``cost.speed``. This script measures that ratio for each method of the protocols' Conv-4 cells
(objective, its arguments and batch size as the protocol gives them): each method trains ``--epochs`` epochs on the
bundled digits (1,437 training images upsampled to 32 px, so no download and no disk reads), and the median
``views_per_s`` of its step records (every 4 steps) after the first epoch is divided by supervised training's, measured in the same rounds.
Methods are interleaved round by round, so that a shared machine's slow spells fall on all of them alike.

    python examples/benchmarks/method_speed.py [--rounds 2] [--epochs 3] [--only PATTERN] [--record]
"""
from __future__ import annotations

import argparse
import fnmatch
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402


def methods() -> dict:
    """{name: (objective, objective_args, batch)} of the protocols' Conv-4 CIFAR cells, one per distinct recipe."""
    from ssltk.reproduce import load_protocols

    found = {}
    for table in load_protocols().values():
        for cell in table.cells:
            spec = cell.spec
            if spec.get("backbone", "conv4") != "conv4" or not str(spec.get("data", "")).startswith("cifar"):
                continue
            args = dict(spec.get("objective_args") or {})
            batch = int((spec.get("trainer") or {}).get("batch_size", 64))
            name = spec["objective"] + "".join(f" {k}={v}" for k, v in sorted(args.items())) + f" b{batch}"
            if spec["objective"] != "random" and cell.from_run is None:
                found.setdefault(name, (spec["objective"], args, batch))
    return dict(sorted(found.items()))


def speed(objective: str, args: dict, batch: int, epochs: int, work: Path) -> float:
    import ssltk
    from ssltk.engine.metrics import read_metrics

    run = tempfile.mkdtemp(dir=work)
    ssltk.fit(objective, "conv4", "digits", objective_args=args,
              trainer={"epochs": epochs, "batch_size": batch, "run_dir": run, "progress": False, "seed": 0,
                       "checkpoint_every": 0, "log_every": 4},
              evaluate={"linear": False, "random_baseline": False}, overwrite=True)
    # step records (every 4 steps) after the first epoch: an epoch of digits is only 11 steps at batch 128, so the
    # epoch's own figure would mostly time the epoch's set-up
    rates = [float(e["views_per_s"]) for e in read_metrics(Path(run), "step") if e.get("views_per_s") and
             int(e["epoch"]) > 1]
    return statistics.median(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3, help="epochs per measurement; the first is not counted")
    p.add_argument("--only", default="*", help="methods whose name matches this pattern (supervised always runs)")
    p.add_argument("--record", action="store_true", help="append the figures to examples/benchmarks/RESULTS.md")
    a = p.parse_args()
    if a.epochs < 2:
        sys.exit("--epochs must be at least 2 (the first epoch is warm-up)")
    todo = methods()
    base = next(n for n in todo if todo[n][0] == "supervised")
    todo = {n: m for n, m in todo.items() if n == base or fnmatch.fnmatch(n, a.only)}
    rates: dict = {n: [] for n in todo}
    with tempfile.TemporaryDirectory() as work:
        for r in range(a.rounds):
            for name, (objective, args, batch) in todo.items():
                rates[name].append(speed(objective, args, batch, a.epochs, Path(work)))
                print(f"round {r + 1}: {name}: {rates[name][-1]:.0f} views/s", flush=True)
    ref = statistics.median(rates[base])
    lines = [f"Conv-4, 32 px digits (1,437 training images), {a.epochs} epochs per measurement (first not counted), "
             f"{a.rounds} interleaved rounds; views/s median over rounds; speed = method / {base}"]
    for name, got in rates.items():
        med = statistics.median(got)
        lines.append(f"  {name:<40} {med:8.0f} views/s  speed {med / ref:.3f}")
    report("Training speed of the protocols' methods relative to supervised, Conv-4, CPU (method_speed.py)", lines,
           a.record)


if __name__ == "__main__":
    main()
