"""Scale of SeLa's Sinkhorn-Knopp label step (issue: SeLa plugin, "Scale").

Solves the equipartition assignment of N images to K clusters from one head's logits, to the paper's tolerance
(sum_y |K col_y - 1| < 1e-2, the authors' criterion), at lambda = 25 in float32, and reports the total time, the
iterations, the peak memory, and the seconds per iteration against the time to read the N x K matrix once (one
full reduction over it), measured in the same run. The logits are seeded Gaussians scaled by ``--scale`` (a head
mid-training: peaked but not one-hot). Defaults: this CPU's target, N = 200,000, K = 1,000; on a GPU use
``--n 1281167 --k 3000 --device cuda`` (ImageNet).

    python examples/benchmarks/sinkhorn.py [--n 200000] [--k 1000] [--device cpu] [--record]
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure(n: int, k: int, lam: float = 25.0, tol: float = 1e-2, scale: float = 2.0, chunk: int = 65536,
            device: str = "cpu", seed: int = 0) -> dict:
    """One head's label step on seeded logits: the measured figures, and the report lines they make."""
    from ssltk_sela.sinkhorn import scaled_log_probs, sinkhorn_log

    dev = torch.device(device)
    g = torch.Generator(device=dev).manual_seed(seed)
    logits = torch.randn(n, k, generator=g, device=dev) * scale
    _sync(dev)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    # one full read of the N x K matrix, the unit every Sinkhorn iteration is compared with (best of 3)
    reads = []
    for _ in range(3):
        t0 = time.perf_counter()
        logits.sum(0)
        _sync(dev)
        reads.append(time.perf_counter() - t0)
    read = min(reads)
    t0 = time.perf_counter()
    mat = scaled_log_probs(logits, lam, chunk, out=logits)  # in place: the logits are not needed afterwards
    _sync(dev)
    t_prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = sinkhorn_log(mat, tol=tol, chunk=chunk)
    _sync(dev)
    t_iter = time.perf_counter() - t0
    counts = torch.bincount(res.labels, minlength=k)
    if dev.type == "cuda":
        peak_gib = (torch.cuda.max_memory_allocated(dev) - base) / 2**30
        peak = f"peak GPU memory {peak_gib:.2f} GiB above the logits"
    else:
        peak = (f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
                f"(before: {rss0:.0f} MiB incl. the {n * k * 4 / 2**20:.0f} MiB logits)")
    per_it = t_iter / max(res.iterations, 1)
    lines = [
        f"N={n} K={k} lambda={lam} float32 on {dev}: {res.iterations} iterations to error {res.error:.2e} "
        f"(tolerance {tol})",
        f"total {t_prep + t_iter:.2f} s (lambda*log_softmax {t_prep:.2f} s, iterations {t_iter:.2f} s), {peak}",
        f"{per_it:.3f} s per iteration = {per_it / read:.1f}x the {read * 1000:.1f} ms of one read of the N x K matrix",
        f"cluster sizes min {int(counts.min())} max {int(counts.max())} (equipartition: {n / k:.0f})",
    ]
    del logits, mat
    return {"seconds": t_prep + t_iter, "iterations": res.iterations, "read_seconds": read, "lines": lines}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--lam", type=float, default=25.0)
    p.add_argument("--tol", type=float, default=1e-2)
    p.add_argument("--scale", type=float, default=2.0)
    p.add_argument("--chunk", type=int, default=65536)
    p.add_argument("--device", default="cpu")
    p.add_argument("--record", action="store_true")
    a = p.parse_args()
    out = measure(a.n, a.k, a.lam, a.tol, a.scale, a.chunk, a.device)
    report(f"Sinkhorn-Knopp label step, N={a.n}, K={a.k}, {torch.device(a.device).type}", out["lines"], a.record)


if __name__ == "__main__":
    main()
