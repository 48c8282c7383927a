"""``ssltk reproduce``: its command line."""
from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Dict, List


from ..errors import SsltkError
from ..parsers import command_parser, parse
from .cost import estimate_minutes, list_tables
from .protocols import Cell, load_protocols
from .runs import Budget, StoppedAtTimeLimit, _source_run, cell_runs, reproduce, run_config
from .table import chart, conditions, markdown, summarise


def cmd_reproduce(argv: List[str]) -> int:
    """Run a paper table: ``ssltk reproduce --list`` or ``ssltk reproduce TABLE [--cells PATTERN] [--seeds 0 1 2]``."""
    p = command_parser("ssltk reproduce", cmd_reproduce.__doc__)
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
    a = parse(p, argv)
    tables = load_protocols(a.protocol)
    zoo = Path(a.zoo) if a.zoo else None
    if a.kept:
        from ..zoo import read_manifest

        for e in read_manifest(zoo):
            if e.get("weights"):
                print(f"{e['name']:<56} {e['metric']} {e['value']:.2f}")
        return 0
    if a.report:
        from .report import write_report

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
        from .keep import TOLERANCE, verify

        def fresh(cell: Cell, seed: int) -> Dict[str, Any]:
            return run_config(cell, seed, out / "verify", budget, a.data_root, a.device, Path("-"))

        verify(table, cells, fresh, budget, zoo, a.transfer_root, a.device,
               TOLERANCE if a.tolerance is None else a.tolerance)
        return 0
    for d in a.runs_from:
        if not Path(d).is_dir():
            raise SsltkError(f"--runs-from {d}: no such folder")
    from ..values import parse_duration

    limit = parse_duration(a.max_time, "--max-time") if a.max_time is not None else None
    launcher = None
    if a.launcher == "submitit" and not a.table_only:
        from ..launch import SubmititLauncher

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
        from .keep import keep

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
