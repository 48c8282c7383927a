"""The cost of running through DDP (issue: distributed training, "record its speed next to the plain run").

The same fit twice, back to back in this script: a plain single-process run (``--trainer.distributed off``) and the
same configuration under ``torchrun --nproc_per_node 1 ... --trainer.distributed on`` (a one-process group: DDP's
wrapper, its bucketed gradient all-reduce and buffer broadcasts, on NCCL with a GPU, gloo without). Throughput is
the mean views/s of the epoch records after the first (warm-up) epoch. With ``--nproc 2`` the second run uses two
processes instead, which on a GPU-less machine shows how the CPU cores split between gloo ranks.

    python examples/benchmarks/ddp_overhead.py [--objective relational] [--epochs 3] [--nproc 1] [--record]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import epoch_records, report  # noqa: E402


def views_per_s(run: Path) -> float:
    rates = [e["views_per_s"] for e in epoch_records(run)][1:]
    if not rates:
        sys.exit(f"{run}: no epoch after the warm-up one; use --epochs 2 or more")
    return sum(rates) / len(rates)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objective", default="relational")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--nproc", type=int, default=1, help="processes of the torchrun run")
    p.add_argument("--record", action="store_true")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ssltk-ddp-"))
    fit = ["fit", "--objective", a.objective, "--trainer.epochs", str(a.epochs), "--trainer.progress", "false",
           "--evaluate.linear", "false", "--trainer.log_every", "0"]
    plain = [sys.executable, "-m", "ssltk", *fit, "--trainer.distributed", "off", "--trainer.run_dir",
             str(work / "plain")]
    ddp = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(a.nproc), "-m",
           "ssltk", *fit, "--trainer.distributed", "on", "--trainer.run_dir", str(work / "ddp")]
    env = dict(os.environ)
    if a.nproc > 1:  # torchrun's own default; the plain run keeps every core
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // a.nproc)))
    for cmd in (plain, ddp):
        subprocess.run(cmd, check=True, env=env if cmd is ddp else dict(os.environ))
    base, dist = views_per_s(work / "plain"), views_per_s(work / "ddp")
    lines = [f"plain single process: {base:.1f} views/s",
             f"torchrun, {a.nproc} process(es), DDP: {dist:.1f} views/s",
             f"DDP / plain throughput: {dist / base:.3f}"]
    report(f"DDP overhead, {a.objective} (the quickstart configuration), {a.epochs} epochs, {a.nproc} process(es)",
           lines, a.record)


if __name__ == "__main__":
    main()
