"""Headless PNG figures for the evaluators (matplotlib's Agg backend: no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    tmp.replace(path)
    _pyplot().close(fig)
    return path


def scatter_by_class(points: np.ndarray, labels: np.ndarray, names: Optional[Sequence[str]], path: Path,
                     title: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 8))
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        sel = labels == c
        label = names[c] if names is not None and c < len(names) else str(c)
        ax.scatter(points[sel, 0], points[sel, 1], s=3, color=cmap(i % cmap.N), label=label, alpha=0.7)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(classes) <= 20:
        ax.legend(markerscale=4, fontsize=8, loc="best")
    return _save(fig, path)


def confusion_heatmap(matrix: np.ndarray, names: Optional[Sequence[str]], path: Path, title: str) -> Path:
    """Row-normalised percentages of ``matrix`` as an annotated heat map."""
    plt = _pyplot()
    pct = 100 * matrix / np.maximum(matrix.sum(1, keepdims=True), 1e-12)
    n = matrix.shape[0]
    fig, ax = plt.subplots(figsize=(1 + 0.6 * n, 1 + 0.6 * n))
    ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    ticks = list(names) if names is not None and len(names) == n else [str(i) for i in range(n)]
    ax.set_xticks(range(n), ticks, rotation=90, fontsize=8)
    ax.set_yticks(range(n), ticks, fontsize=8)
    ax.set_xlabel("class of the retrieved image")
    ax.set_ylabel("class of the query")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{pct[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if pct[i, j] > 50 else "black")
    ax.set_title(title)
    return _save(fig, path)


def image_grid(rows: List[Tensor], path: Path, pad: int = 2, highlight_first: bool = True, scale: int = 2) -> Path:
    """Rows of uint8 images (each a (n, C, H, W) tensor) as one PNG; the first image of a row gets a red frame."""
    from PIL import Image

    n_cols = max(r.shape[0] for r in rows)
    c, h, w = rows[0].shape[1:]
    canvas = torch.full((3, len(rows) * (h + 2 * pad), n_cols * (w + 2 * pad)), 255, dtype=torch.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            img = img.expand(3, h, w) if c == 1 else img[:3]
            y, x = i * (h + 2 * pad), j * (w + 2 * pad)
            if highlight_first and j == 0:
                red = torch.tensor([220, 0, 0], dtype=torch.uint8)[:, None, None]
                canvas[:, y : y + h + 2 * pad, x : x + w + 2 * pad] = red
            canvas[:, y + pad : y + pad + h, x + pad : x + pad + w] = img
    im = Image.fromarray(canvas.permute(1, 2, 0).numpy())
    if scale > 1:
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    im.save(tmp)
    tmp.replace(path)
    return path


def line_curves(curves: Dict[str, tuple], path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """One line per entry of ``curves`` (name -> (xs, ys))."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (xs, ys) in curves.items():
        ax.plot(xs, ys, label=name, linewidth=1.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)
