"""Keep a finished reproduction run's backbone in half precision, score it, and check kept weights again.

``ssltk reproduce TABLE --keep`` converts each finished run's ``backbone.safetensors`` to float16, scores the
converted weights with the cell's own evaluation (the protocol's linear evaluation, or the after-training
evaluation its metric names, seeded as the run was), and writes the file and its manifest entry. The number recorded
is the kept file's, so that ``--verify`` can reproduce it from the file alone; the run's own float32 number is kept
beside it (``run_value``) and the difference is the cost of half precision. ``ssltk reproduce TABLE --verify`` scores
every kept file of the table again and prints paper, recorded and re-scored side by side; a re-scored number further
than ``--tolerance`` (0.1 points) from the recorded one is an error.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..data.jpeg_encoding import describe_jpeg
from ..errors import SsltkError
from ..zoo import ZOO, entry_name, kept_file, read_manifest, sha256_file, write_manifest
from .provenance import machine_description, source_revision, trained_by, utc_stamp
from .runs import _after_data, after_evaluations, measured

#: the largest re-scoring difference that is still the evaluation's own noise (points of accuracy): on the CPU the
#: evaluation is deterministic, so a kept file re-scored on the data it was kept with gives its number exactly
TOLERANCE = 0.1


def half_precision(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Floating tensors in float16; integer buffers (BatchNorm's step count) as they are."""
    return {k: (v.to(torch.float16) if v.is_floating_point() else v) for k, v in state.items()}


def _evaluation_key(cell: Any, ev: Dict[str, Any], transfer_root: Optional[str]) -> Tuple[str, Optional[dict]]:
    from ..engine.build import registry_name

    data = _after_data(ev, transfer_root)
    key = ev["name"] if data is None else f"{ev['name']}@{registry_name('dataset', data['class_path'])}"
    return key, data


def rescore(cell: Any, cfg: Dict[str, Any], weights: Path, budget: Any, transfer_root: Optional[str] = None,
            device: Optional[str] = None) -> float:
    """The cell's metric for the backbone in ``weights``, computed with the cell's own evaluation on ``cfg``'s data:
    the after-training evaluation whose results key the metric names, else the fit's linear evaluation."""
    from ..engine.heartbeat import heartbeat

    with heartbeat(f"scoring {cell.table} {cell.id} from {weights.name}"):
        return _rescore(cell, cfg, weights, budget, transfer_root, device)


def _rescore(cell: Any, cfg: Dict[str, Any], weights: Path, budget: Any, transfer_root: Optional[str],
             device: Optional[str]) -> float:
    from ..api import load_backbone
    from ..engine.build import build
    from ..engine.process import resolve_device
    from ..eval.summary import metric_value
    from ..registries import EVALUATORS

    dev = resolve_device(device or "cpu")
    model = load_backbone(weights).to(dev)
    for ev in after_evaluations(cell, budget):
        key, data = _evaluation_key(cell, ev, transfer_root)
        if cell.metric.startswith(key + "."):
            evaluator = EVALUATORS.create(ev["name"], **dict(ev.get("args") or {}))
            metrics = evaluator.evaluate(model, build(data if data is not None else cfg["data"]), device=dev,
                                         run_dir=None, name=key).metrics
            break
    else:
        ev_cfg = cfg.get("evaluate") or {}
        if not cell.metric.startswith("linear.") or not ev_cfg.get("linear", True):
            raise SsltkError(f"{cell.table} {cell.id}: no evaluation of its protocol gives {cell.metric}")
        from ..eval.linear import LinearEval

        key = "linear"
        lin = LinearEval(epochs=int(ev_cfg.get("epochs", 100)), split=str(ev_cfg.get("split", "auto")),
                         seed=int(cfg["trainer"]["seed"]))
        metrics = lin.evaluate(model, build(cfg["data"]), device=dev, run_dir=None, name=key).metrics
    value = metric_value({key: metrics}, cell.metric)
    if value is None:
        raise SsltkError(f"{cell.table} {cell.id}: its evaluation gave no {cell.metric}")
    return value


def _image_format(root: Optional[str]) -> str:
    """The files' format under a data folder (the first image found), with a JPEG's quality and chroma subsampling
    (lossy images are a condition the papers did not have), or the dataset's own files without a folder."""
    if not root:
        return "the dataset's own files"
    base = Path(root) / "train" if (Path(root) / "train").is_dir() else Path(root)
    for path in base.rglob("*"):  # the first image found: a folder holds one format (sorting 50,000 names is waste)
        if path.is_file() and path.suffix:
            suffix = path.suffix.lower().lstrip(".")
            if suffix in ("jpg", "jpeg"):
                with open(path, "rb") as f:
                    return describe_jpeg(f.read())
            return {"png": "PNG"}.get(suffix, suffix)
    return "the dataset's own files"


def training_speed(run: Path) -> Dict[str, Any]:
    """Steps per epoch, training views per second and training minutes of a run, from its ``metrics.jsonl`` (None
    each for a run that did not train: random weights).

    An epoch's cost is the wall time from one epoch record to the next, so it includes what the objective does at
    the start of an epoch (DeepCluster's k-means, SeLa's Sinkhorn label step), which the record's own ``seconds``
    (the steps alone) leaves out. Both figures are medians over epochs, so an epoch during which the run was paused,
    resumed, or shared its machine for a while does not count its wait; a one-epoch run falls back to its steps.
    """
    import statistics

    from ..engine.metrics import read_metrics

    epochs = read_metrics(run, "epoch")
    if not epochs:
        return {"steps_per_epoch": None, "train_views_per_s": None, "train_minutes": None}
    views = [float(e.get("views_per_s") or 0.0) * float(e.get("seconds") or 0.0) for e in epochs]
    walls = [(float(b["time"]) - float(a["time"]), v) for a, b, v in zip(epochs, epochs[1:], views[1:])
             if "time" in a and "time" in b and float(b["time"]) > float(a["time"])]
    if not walls:
        walls = [(float(e.get("seconds") or 0.0), v) for e, v in zip(epochs, views)]
    epoch_seconds = statistics.median(w for w, _ in walls)
    rates = [v / w for w, v in walls if w > 0 and v > 0]
    return {"steps_per_epoch": int(epochs[-1]["step"]) // max(int(epochs[-1]["epoch"]), 1),
            "train_views_per_s": round(statistics.median(rates), 1) if rates else None,
            "train_minutes": round(epoch_seconds * len(epochs) / 60.0, 2)}


def conditions(cell: Any, run: Path, cfg: Dict[str, Any], budget: Any) -> Dict[str, Any]:
    """What a reader needs to compare the number with the paper's: budget, data, split, precision, sizes, steps."""
    from ..eval.results import read_results

    from ..engine.rundir import read_run_config

    # the run's own settings (it may have trained under an older protocol), the protocol's where it has no file
    trainer = read_run_config(run)["trainer"] if (run / "config.yaml").is_file() else cfg["trainer"]
    results = read_results(run)
    key = cell.metric.split(".")[0]
    scored = results.get(key) or results.get("linear") or {}
    root = (cfg["data"].get("init_args") or {}).get("root")
    split = str(scored.get("split") or (cfg.get("evaluate") or {}).get("split") or "")
    device = str(trainer.get("device", "auto"))
    cuda_amp = bool(trainer.get("amp")) and (device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()))
    speed = training_speed(run)
    trains = speed["train_minutes"] is not None
    return {
        "budget": budget.describe(),
        "epochs": int(trainer.get("epochs", 0)) if trains else None,
        "batch_size": int(trainer.get("batch_size", 0)) if trains else None,
        **speed,
        "train_images": int(scored["num_train"]) if "num_train" in scored else None,
        "eval_images": int(scored["num_test"]) if "num_test" in scored else None,
        "split": split,
        "images": _image_format(root),
        # autocast applies on CUDA only: a CPU run trains in float32 whatever its amp setting says
        "precision": str(trainer.get("amp_dtype")) if cuda_amp else "fp32",
        "machine": machine_description(),
    }


def keep_run(cell: Any, seed: int, run: Path, cfg: Dict[str, Any], budget: Any, zoo: Path,
             transfer_root: Optional[str] = None, device: Optional[str] = None) -> Dict[str, Any]:
    """Write ``run``'s backbone in float16 under ``zoo`` and return its manifest entry (scored from that file)."""
    from ..engine.checkpoint import read_safetensors, save_safetensors

    src = run / "backbone.safetensors"
    if not src.is_file():
        raise SsltkError(f"{run} has no backbone.safetensors: it has not finished")
    run_value = measured(run, cell.metric)
    if run_value is None:
        raise SsltkError(f"{run} has no {cell.metric} in its results.json: it has not finished")
    tensors, meta = read_safetensors(src)
    rel = Path("weights") / cell.table / budget.tag() / cell.row / cell.column / f"seed{seed}.safetensors"
    dest = zoo / rel
    save_safetensors(half_precision(tensors), {**meta, "kept": entry_name(cell.table, cell.id, seed, budget.tag())}, dest)
    value = rescore(cell, cfg, dest, budget, transfer_root, device)
    commits = trained_by([(cell, seed, run)])
    return {
        "name": entry_name(cell.table, cell.id, seed, budget.tag()),
        "table": cell.table, "cell": cell.id, "label": cell.label, "seed": seed,
        "budget_tag": budget.tag(),
        "paper": {"mean": cell.paper_mean, "std": cell.paper_std},
        "metric": cell.metric,
        "value": round(value, 4), "run_value": round(run_value, 4),
        "weights": rel.as_posix(), "sha256": sha256_file(dest),
        "conditions": conditions(cell, run, cfg, budget),
        "trained_by": ", ".join(c for c in commits if c) or "unrecorded",
        "kept_by": source_revision(), "date": utc_stamp(), "note": "",
    }


def keep(runs: Sequence[Tuple[Any, int, Path]], configs: Dict[Path, Dict[str, Any]], budget: Any,
         zoo: Optional[Path] = None, transfer_root: Optional[str] = None, device: Optional[str] = None,
         log: Callable[[str], None] = print) -> List[Dict[str, Any]]:
    """Keep every finished run of ``runs``; an entry of the same name is replaced. The manifest is written after
    each run, so an interruption loses nothing kept so far."""

    zoo = Path(zoo or ZOO)
    entries = {e["name"]: e for e in read_manifest(zoo)}
    kept = []
    for cell, seed, run in runs:
        if measured(run, cell.metric) is None:
            log(f"  {cell.id} seed {seed}: not finished in {run}, not kept")
            continue
        entry = keep_run(cell, seed, run, configs[run], budget, zoo, transfer_root, device)
        entries[entry["name"]] = entry
        write_manifest(list(entries.values()), zoo)
        log(f"  kept {entry['name']}: {entry['value']:.2f} from the float16 file ({entry['run_value']:.2f} from the "
            f"run's float32 weights), {entry['weights']}")
        kept.append(entry)
    return kept


def verify(table: Any, cells: Sequence[Any], configs: Callable[[Any, int], Dict[str, Any]], budget: Any,
           zoo: Optional[Path] = None, transfer_root: Optional[str] = None, device: Optional[str] = None,
           tolerance: float = TOLERANCE, log: Callable[[str], None] = print) -> List[Dict[str, Any]]:
    """Score every kept file of ``cells`` again; print paper, recorded and re-scored; a difference beyond
    ``tolerance`` is an error after the whole table has been printed."""
    zoo = Path(zoo or ZOO)
    by_id = {c.id: c for c in cells}
    entries = [e for e in read_manifest(zoo) if e["table"] == table.name and e["cell"] in by_id
               and e.get("budget_tag", "full") == budget.tag()]
    kept = [e for e in entries if e.get("weights")]
    if not kept:
        raise SsltkError(f"no kept weights for the chosen cells of {table.name} ({budget.describe()}); "
                         f"{len(entries)} recorded without weights")
    log(f"{'cell':<32} {'seed':>4} {'paper':>14} {'recorded':>9} {'re-scored':>9} {'diff':>6}")
    rows, bad = [], []
    for e in kept:
        cell = by_id[e["cell"]]
        path = kept_file(e, zoo)
        got = rescore(cell, configs(cell, e["seed"]), path, budget, transfer_root, device)
        diff = got - float(e["value"])
        paper = "n/a" if cell.paper_mean is None else f"{cell.paper_mean:.2f}" + (
            f" ± {cell.paper_std:.2f}" if cell.paper_std is not None else "")
        log(f"{cell.id:<32} {e['seed']:>4} {paper:>14} {e['value']:>9.2f} {got:>9.2f} {diff:>+6.2f}")
        rows.append({"name": e["name"], "recorded": e["value"], "rescored": got, "diff": diff})
        if not math.isfinite(got) or abs(diff) > tolerance:
            bad.append(f"{e['name']} {got:.2f} against {e['value']:.2f}")
    if bad:
        raise SsltkError(f"{len(bad)} kept weight file(s) re-scored beyond {tolerance} of the recorded number: "
                         + "; ".join(bad))
    return rows

