"""Helpers shared by the benchmark scripts: the CIFAR-10 JPEG archive of ../shared, runs' epoch records and
RESULTS.md records."""
from __future__ import annotations

import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHIVE = ROOT.parent / "shared" / "datasets" / "cifar10-train-jpg.tar.gz"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def extract_cifar10(dest: str | None = None) -> Path:
    """Extract the CIFAR-10 training JPEGs to a temporary folder (never into the repository); returns ``.../train``."""
    if not ARCHIVE.is_file():
        sys.exit(f"missing {ARCHIVE}: the benchmark needs the shared CIFAR-10 archive")
    target = Path(dest or tempfile.mkdtemp(prefix="ssltk-cifar10-"))
    if not (target / "train").is_dir():
        with tarfile.open(ARCHIVE) as tar:
            tar.extractall(target)
    return target / "train"


def epoch_records(run: Path) -> list[dict]:
    """The ``epoch`` records of a run's ``metrics.jsonl``, oldest first; a folder that is not a run is an error."""
    from ssltk.engine.metrics import read_metrics
    from ssltk.errors import SsltkError

    try:
        return read_metrics(Path(run), "epoch", missing_ok=False)
    except SsltkError as exc:
        sys.exit(str(exc))


def machine() -> str:
    from ssltk.reproduce import machine_description

    return machine_description()


def _git_rev() -> str:
    from ssltk.reproduce import source_revision

    return source_revision()


# read when the script starts, so the record names the code that ran, not the code at the time of writing
REV = _git_rev()


def report(title: str, lines: list[str], record_it: bool) -> None:
    """Print the measured lines and, with ``record_it``, append them to RESULTS.md under the script's own command."""
    print("\n".join(lines))
    if record_it:
        script = Path(sys.argv[0]).resolve()
        name = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
        record(title, " ".join(["python", str(name), *sys.argv[1:]]), lines)


def record(title: str, command: str, lines: list[str], commit: str | None = None, host: str | None = None) -> None:
    """Append a dated section with the command and the measured lines to RESULTS.md; ``commit`` names the code that
    ran where it was not this checkout (a device call's copy of the tree, which has no git history), ``host`` the
    machine it ran on."""
    rev = commit or REV
    from ssltk.reproduce import utc_stamp

    stamp = utc_stamp()
    body = [f"\n## {title}", "", f"- date: {stamp}", f"- machine: {host or machine()}", f"- commit: {rev or '?'}",
            f"- command: `{command}`", ""] + [f"    {line}" for line in lines] + [""]
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nEvery section below is written by the script it names; "
                           "numbers are never edited by hand.\n")
    with open(RESULTS, "a", encoding="utf-8") as fh:
        fh.write("\n".join(body))


def reduced_cifar10_fit(objective: str, objective_args: dict, root: Path, run_dir: Path, seed: int = 0,
                        epochs: int = 20, batch: int = 64, backbone: str = "conv4", train_size: int = 10000,
                        val_size: int = 10000, random_baseline: bool = True, augment: str | None = None,
                        trainer: dict | None = None):
    """The reduced CIFAR-10 protocol of the issues: a fixed 10,000-image training subset, a disjoint 10,000-image
    validation split (split seed 0), linear evaluation (Adam 1e-3, 100 epochs, batch 128) on the validation split."""
    import ssltk

    if (Path(run_dir) / "config.yaml").is_file():  # an unfinished run (stopped or killed): continue it
        return ssltk.fit(resume=run_dir)
    data_args = dict(root=str(root), size=32, val_size=val_size, train_size=train_size, split_seed=0,
                     stats="cifar10")
    return ssltk.fit(objective, backbone, "imagefolder", objective_args=objective_args, data_args=data_args,
                     augment=augment,
                     trainer={"epochs": epochs, "batch_size": batch, "seed": seed, "progress": False,
                              "run_dir": str(run_dir), **(trainer or {})},
                     evaluate={"random_baseline": random_baseline})


def add_run_arguments(parser) -> None:
    """The options every real-data benchmark shares: where the images and the run directories are, and --record."""
    parser.add_argument("--data", default=None, help="an extracted train/ folder; extracted to a temp dir otherwise")
    parser.add_argument("--out", default=None, help="run directories go here (beside the data otherwise)")
    parser.add_argument("--record", action="store_true", help="append the figures to RESULTS.md")


def data_and_runs(args) -> tuple:
    """(root of the CIFAR-10 training images, folder of the run directories) from ``add_run_arguments``' options."""
    root = Path(args.data) if args.data else extract_cifar10()
    return root, Path(args.out) if args.out else Path(root).parent / "runs"


def finished_run(run: Path):
    """A finished run of ``ssltk reproduce``: its stored linear probe result, its backbone and its
    data (with the run's own validation split); exits with one line when the folder is not one."""
    from ssltk.api import load_backbone
    from ssltk.engine.build import build
    from ssltk.engine.rundir import read_stored_config
    from ssltk.eval.results import read_results

    cfg = read_stored_config(run)
    if cfg is None:
        sys.exit(f"{run}: not an ssltk run folder (no config.yaml)")
    probe = read_results(run).get("linear")
    if probe is None or not (run / "backbone.safetensors").is_file():
        sys.exit(f"{run}: no linear probe result or backbone yet; let the run finish first")
    return probe, load_backbone(run / "backbone.safetensors"), build(cfg["data"])


def runs_arguments(doc: str, runs_help: str):
    """The command line of the scripts that read finished runs: the run folders, and ``--record``."""
    import argparse

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help=runs_help)
    p.add_argument("--record", action="store_true", help="append the figures to examples/benchmarks/RESULTS.md")
    return p.parse_args()
