"""What a cell costs: training views over the protocol's measured rates, plus its evaluation."""
from __future__ import annotations

import fnmatch
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple


from ..errors import SsltkError
from .protocols import Cell, Table


def views_per_image(spec: Dict[str, Any]) -> Tuple[int, bool]:
    """(views the objective makes of each training image, whether it trains at all), from the objective itself."""
    from ..engine.build import build_objective, resolve

    obj = build_objective(resolve("objective", spec["objective"], spec.get("objective_args"), trusted=False),
                          in_dim=64, num_classes=10)
    return int(obj.num_views), bool(getattr(obj, "trains", True))


def relative_speed(cell: Cell) -> float:
    """The cell's views per second relative to supervised training on Conv-4 (``cost.speed``, method_speed.py)."""
    return float(cell.cost.get("speed", 1.0)) or 1.0


def training_rate(cell: Cell, device: str) -> float:
    """Training views per second the protocol states for ``cell`` on ``device``: ``views_per_s`` times ``speed``."""
    return float((cell.cost.get("views_per_s") or {}).get(device, 0) or 0) * relative_speed(cell)


def eval_minutes(cell: Cell, device: str) -> float:
    """Minutes the protocol states for ``cell``'s evaluation on ``device``."""
    return float((cell.cost.get("eval_minutes") or {}).get(device, 0) or 0)


def estimate_minutes(cell: Cell, device: str, epochs: Optional[int] = None, train_size: Optional[int] = None,
                     rate: Optional[float] = None) -> float:
    """Minutes a cell takes on ``device`` (cpu or gpu): training views / the protocol's views-per-second rate for the
    backbone and data on that device (``cost.views_per_s``, usually per column) times the method's relative speed
    (``cost.speed``, usually per row), plus the evaluation's minutes. Rates are stated in the protocol file;
    ``cost.images`` is the whole training set, less the cell's held-out ``val_size``."""
    cost = cell.cost
    images = int(train_size or cost.get("images", 0))
    held = (cell.spec.get("data_args") or {}).get("val_size", 0)
    if not train_size and isinstance(held, (int, float)) and not isinstance(held, bool):
        # cost.images is the whole training set; a held-out validation split does not train
        images -= int(held) if held >= 1 else int(images * held)
    ep = int(epochs or (cell.spec.get("trainer") or {}).get("epochs", 1))
    stated = training_rate(cell, device)
    rate = stated if rate is None else rate  # a measured rate, where a kept run of the method gives one
    try:
        if cell.from_run is not None:  # its objective cannot be built before the run it reads exists
            views, trains = int(cost.get("views", 1)), True
        else:
            views, trains = views_per_image(cell.spec)
    except SsltkError:  # its plugin is not installed: the cost is unknown, the cell still listed
        return math.nan
    minutes = eval_minutes(cell, device)
    if trains and stated > 0 and rate > 0:
        minutes += images * ep * views / rate / 60
    return minutes


def _fmt_minutes(m: float) -> str:
    if math.isnan(m):
        return "?"
    return f"{m:.0f} min" if m < 90 else f"{m / 60:.1f} h"


def list_tables(tables: Dict[str, Table], pattern: str = "*", names: Optional[Sequence[str]] = None) -> str:
    lines: List[str] = []
    for name, t in tables.items():
        if names and name not in names:
            continue
        cells = [c for c in t.cells if fnmatch.fnmatch(c.id, pattern)]
        if not cells:
            continue
        cpu = sum(estimate_minutes(c, "cpu") for c in cells)
        gpu = sum(estimate_minutes(c, "gpu") for c in cells)
        lines.append(f"{name}: {t.title}")
        lines.append(f"  source: {t.source}; {len(cells)} cells; one seed of every cell: "
                     f"about {_fmt_minutes(cpu)} on this kind of CPU, {_fmt_minutes(gpu)} on one GPU")
        width = max(len(c.id) for c in cells)
        for c in cells:
            std = f" ± {c.paper_std:.2f}" if c.paper_std is not None else ""
            paper = f"{c.paper_mean:6.2f}" if c.paper_mean is not None else "   n/a"
            lines.append(f"    {c.id:<{width}}  paper {paper}{std:<8}  cpu {_fmt_minutes(estimate_minutes(c, 'cpu')):>8}"
                         f"  gpu {_fmt_minutes(estimate_minutes(c, 'gpu')):>7}  ({c.label})")
        lines.append("")
    return "\n".join(lines).rstrip()
