"""The compiled training step against the eager one on this machine, in one run (the GPU issue, item 4).

For relational reasoning (K=32, batch 64, Conv-4, the Table 2 cell's step), SimCLR (batch 128) and structured MI
(K=4, batch 64) on CIFAR-10 JPEGs at 32 px: two epochs of ``--steps`` steps eager, then two compiled
(``torch.compile``, inductor), each from the same seed; the second epoch's views per second of each, and their
ratio. The first epoch holds the compilation, reported apart. Speed is a ratio measured in the same run, since this
machine is shared.

    python examples/benchmarks/compiled_step.py [--data TRAIN_DIR] [--steps 12] [--record]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import epoch_records, extract_cifar10, report  # noqa: E402

import ssltk  # noqa: E402

CASES = [("relational", {"k": 32}, 64), ("simclr", {}, 128), ("structured-mi", {"k": 4}, 64)]


def timed(objective: str, args: dict, batch: int, root: Path, steps: int, compile_: bool, work: Path) -> tuple:
    run = work / f"{objective}-compile{int(compile_)}"
    ssltk.fit(objective, "conv4", "imagefolder", objective_args=args,
              data_args={"root": str(root), "size": 32, "train_size": steps * batch, "stats": "cifar10"},
              trainer={"epochs": 2, "batch_size": batch, "run_dir": str(run), "progress": False, "log_every": 0,
                       "compile": compile_},
              evaluate={"linear": False})
    recs = epoch_records(run)
    return recs[-1]["views_per_s"], recs[0]["seconds"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="an extracted CIFAR-10 train/ folder (else the shared archive)")
    p.add_argument("--steps", type=int, default=12, help="steps per timed epoch")
    p.add_argument("--record", action="store_true", help="append the figures to RESULTS.md")
    a = p.parse_args()
    root = Path(a.data) if a.data else extract_cifar10()
    work = Path(tempfile.mkdtemp(prefix="ssltk-compiled-step-"))
    lines = []
    for objective, args, batch in CASES:
        eager, _ = timed(objective, args, batch, root, a.steps, False, work)
        compiled, first = timed(objective, args, batch, root, a.steps, True, work)
        lines.append(f"{objective} {args or ''} batch {batch}: eager {eager:.0f} views/s, compiled {compiled:.0f} "
                     f"views/s, {compiled / eager:.2f}x (compilation and first epoch {first:.0f} s)")
        print(lines[-1], flush=True)
    report("Compiled training step against eager, CPU", lines, a.record)


if __name__ == "__main__":
    main()
