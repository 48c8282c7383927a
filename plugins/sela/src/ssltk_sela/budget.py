"""The memory of SeLa's label step, written down (paper 004, section 3.2 and 3.5: N = 1,281,167 ImageNet images,
[3k x 10]), and a measurement that checks the formula on a small problem.

On the device the step holds, at its peak, for one head at a time (:meth:`SelaObjective.optimise_labels`):

- the features of every training image, N x D in the precision of ``label_features``;
- lambda * log P, N x K float32, formed from the features a chunk of rows at a time (no N x K logits beside it);
- the kernel E of the stabilised Sinkhorn iteration, N x K float32 (the same buffer for every head);
- the labels, old and new, T x N int64 each; the scalings u, r (N) and v, c (K) float32;
- one chunk's temporaries: a chunk x K block or two (the exponentials of a log-sum-exp).

For ImageNet with AlexNet's 4096-d features in fp16 that is 9.8 + 14.3 + 14.3 + 0.2 GiB, 39 GiB with the chunk
temporaries: one 80 GB GPU holds it with the backbone, the ten 4096 x 3000 heads and their optimiser state beside it.
"""
from __future__ import annotations

from typing import Dict

import torch

GIB = 2**30


def label_step_budget(n: int, k: int, heads: int, dim: int, feature_dtype: str = "fp32",
                      chunk: int = 65536) -> Dict[str, float]:
    """Bytes of each part of the label step's peak, in GiB (keys ending ``_gib``), and their total."""
    from .objective import FEATURE_DTYPES

    if feature_dtype not in FEATURE_DTYPES:
        raise ValueError(f"feature_dtype must be one of {', '.join(FEATURE_DTYPES)}, got {feature_dtype!r}")
    rows = min(chunk, n)
    parts = {
        "features_gib": n * dim * FEATURE_DTYPES[feature_dtype].itemsize,
        "log_probs_gib": n * k * 4,
        "kernel_gib": n * k * 4,
        "labels_gib": 2 * heads * n * 8,
        "scalings_gib": 2 * n * 4 + 2 * k * 4,
        "chunk_gib": 2 * rows * k * 4 + rows * dim * 4,
    }
    out = {name: b / GIB for name, b in parts.items()}
    out["total_gib"] = sum(out.values())
    return out


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak resident size (VmHWM) to the current one."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def measure_label_step(n: int = 200_000, k: int = 300, heads: int = 2, dim: int = 256,
                       feature_dtype: str = "fp16", chunk: int = 65536) -> Dict[str, float]:
    """Run one label step of a SeLa objective on random features on the CPU and compare the rise of the process's
    peak resident memory with :func:`label_step_budget` minus the features (allocated before the measurement, as
    the engine's feature pass does). The peak is reset just before the step (Linux), so the rise is the step's
    own."""
    from .objective import FEATURE_DTYPES, SelaObjective

    torch.manual_seed(0)
    obj = SelaObjective(dim, clusters=k, heads=heads, label_features=feature_dtype, chunk=chunk, max_iters=50)
    obj.labels = torch.zeros(heads, n, dtype=torch.long)
    features = torch.randn(n, dim).to(FEATURE_DTYPES[feature_dtype])
    _reset_peak()
    before = _status_mib("VmRSS")
    obj.optimise_labels(features)
    measured = _status_mib("VmHWM") - before
    budget = label_step_budget(n, k, heads, dim, feature_dtype, chunk)
    predicted = (budget["total_gib"] - budget["features_gib"]) * 1024
    return {"predicted_mib": predicted, "measured_mib": measured}
