"""Seeds and tables: mean +- standard deviation over runs, and Markdown tables of methods x datasets like the
papers' Table 2 (paper 002), built from run directories' ``config.yaml`` and ``results.json``."""
from __future__ import annotations

import statistics
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple


from ..errors import SsltkError
from ..yaml_io import load_yaml
from .results import read_results


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        raise ValueError("no values")
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def format_mean_std(values: Sequence[float]) -> str:
    m, s = mean_std(values)
    return f"{m:.2f} ± {s:.2f}" if len(values) > 1 else f"{m:.2f}"


def metric_value(results: dict, metric: str) -> Optional[float]:
    """``linear.accuracy`` -> results["linear"]["accuracy"] (None when absent)."""
    node = results
    for part in metric.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


def _name(kind: str, spec: dict) -> str:
    from ..engine.build import registry_name

    return registry_name(kind, spec["class_path"])


def describe_run(run_dir: Path) -> Dict[str, str]:
    """Method, backbone and dataset labels of a run, from its config.yaml."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise SsltkError(f"not a run directory (no config.yaml): {run_dir}")
    cfg = load_yaml(path.read_text(), str(path))
    obj = cfg["objective"]
    method = _name("objective", obj)
    variant = (obj.get("init_args") or {}).get("variant")
    if variant:
        method += f" {variant}"
    data = cfg["data"]
    dataset = _name("dataset", data)
    if dataset == "imagefolder":
        root = Path(str((data.get("init_args") or {}).get("root", "")))
        dataset = f"imagefolder:{root.parent.name if root.name in ('train', 'images') else root.name}"
    return {"method": method, "backbone": _name("backbone", cfg["backbone"]), "dataset": dataset,
            "seed": str((cfg.get("trainer") or {}).get("seed", 0))}


def results_table(run_dirs: Sequence[Path], metric: str = "linear.accuracy",
                  baseline_metric: Optional[str] = "linear_random.accuracy") -> str:
    """A Markdown table: one row per method, one column per backbone/dataset, cells mean ± std over the runs (seeds).

    Runs that also measured random weights (``linear_random``) contribute a ``random weights`` row, unless a run of
    the ``random`` objective provides it."""
    cells: "OrderedDict[str, OrderedDict[str, List[float]]]" = OrderedDict()
    # the same seed gives the same initial weights whatever the method, so each (column, seed) counts once
    extra: "OrderedDict[str, Dict[str, float]]" = OrderedDict()
    for run in run_dirs:
        desc, res = describe_run(Path(run)), read_results(Path(run))
        value = metric_value(res, metric)
        if value is None:
            raise SsltkError(f"{run}/results.json has no {metric} (run `ssltk eval` first?)")
        col = f"{desc['backbone']} {desc['dataset']}"
        cells.setdefault(desc["method"], OrderedDict()).setdefault(col, []).append(value)
        base = metric_value(res, baseline_metric) if baseline_metric else None
        if base is not None and desc["method"] != "random":
            extra.setdefault(col, {})[desc["seed"]] = base
    if "random" not in cells and extra:
        cells["random weights"] = OrderedDict((c, list(v.values())) for c, v in extra.items())
    columns = list(OrderedDict.fromkeys(c for row in cells.values() for c in row))
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for method, row in cells.items():
        vals = [f"{format_mean_std(row[c])} (n={len(row[c])})" if c in row else "-" for c in columns]
        lines.append(f"| {method} | " + " | ".join(vals) + " |")
    return "\n".join(lines)
