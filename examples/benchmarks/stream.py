"""Streaming from an ImageNet-shaped folder: images per second and peak memory, ssltk against torchvision.

The folder is made at run time from the shared CIFAR-10 JPEGs: ``2 * n`` images, each upscaled to a random size
between 300 and 500 px a side and saved as JPEG (quality 90) in its class folder, in two halves of ``n``. Then, each
in its own process, with the same number of DataLoader workers and batch size, two views at 224 px of the
contrastive recipe (RandomResizedCrop, flip, colour jitter p 0.8, grayscale p 0.2, normalise):

- torchvision: ``torchvision.datasets.ImageFolder`` with the per-image PIL transforms in the workers (the way
  lightly and solo-learn load);
- ssltk: the streaming path (``ssltk.data.stream``): workers decode and crop, the photometric half batched in the
  main process (here on the CPU, the training device of this machine).

Images per second are taken after a warm-up batch, over ``--steps`` batches, alternating the two pipelines
``--rounds`` times; the ratio is ssltk's over torchvision's. Peak memory is the proportional set size (PSS: shared
pages counted once) of the process and its workers, sampled every 0.1 s in runs of their own (the sampling thread
reads /proc in the consumer process, and would slow whichever pipeline works there), for each pipeline on the first
half (n images) and for ssltk streaming both halves (2n images, as a file list): it must not grow with the set.

With ``--device cuda`` the photometric half runs on the GPU, and ``--decode device`` adds a third pipeline, timed in
the same rounds: ssltk streaming with the JPEGs decoded on the training device
(``--trainer.stream_decode device``: nvjpeg's batched decoder on CUDA), against ssltk's workers decoding them.

It also prints SeLa's label-step memory budget at ImageNet scale (N = 1,281,167, K = 3,000, 10 heads) for AlexNet and
ResNet-50 against one 80 GB GPU, and checks the budget's formula against the measured peak of a label step on this
CPU.

    python examples/benchmarks/stream.py [--n 10000] [--steps 40] [--workers 2] [--data TRAIN_DIR] [--out DIR]
                                          [--device cpu|cuda] [--decode workers|device] [--record]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import extract_cifar10, report  # noqa: E402

BATCH, SIZE = 64, 224


# the ImageNet-shaped folder ------------------------------------------------------------------------------------------
def _make_one(job):
    from PIL import Image

    src, dst, seed = job
    if dst.exists():
        return
    rng = random.Random(seed)
    with Image.open(src) as im:
        big = im.convert("RGB").resize((rng.randint(300, 500), rng.randint(300, 500)), Image.BICUBIC)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    big.save(tmp, format="JPEG", quality=90)
    os.replace(tmp, dst)


def make_folder(cifar_train: Path, out: Path, n: int, workers: int) -> tuple:
    """(first half's root, file list of both halves); resumable: images already written are kept."""
    from multiprocessing import Pool

    sources = sorted(cifar_train.rglob("*.jpg"))
    jobs = []
    for i in range(2 * n):
        src = sources[i % len(sources)]
        half = "part1" if i < n else "part2"
        jobs.append((src, out / half / src.parent.name / f"{i:07d}.jpg", i))
    with Pool(max(1, workers)) as pool:
        pool.map(_make_one, jobs, chunksize=64)
    listing = out / f"all-{2 * n}.txt"
    listing.write_text("".join(f"{dst} {dst.parent.name}\n" for _, dst, _ in jobs))
    return out / "part1", listing


# memory of a process tree --------------------------------------------------------------------------------------------
def _children(pid: int) -> list:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return found


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakPSS:
    """Samples the PSS of this process and its children every 0.1 s; ``peak`` in MiB."""

    def __init__(self):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = os.getpid()
        while not self._stop.is_set():
            total = _pss_kib(me) + sum(_pss_kib(c) for c in _children(me))
            self.peak = max(self.peak, total / 1024)
            self._stop.wait(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


# the two pipelines, each run in a child process ----------------------------------------------------------------------
def child_torchvision(root: str, steps: int, workers: int) -> dict:
    import torch
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    torch.manual_seed(0)
    tf = T.Compose([T.RandomResizedCrop(SIZE), T.RandomHorizontalFlip(),
                    T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8), T.RandomGrayscale(0.2),
                    T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    data = ImageFolder(root, transform=lambda im: torch.stack([tf(im), tf(im)]))
    loader = torch.utils.data.DataLoader(data, batch_size=BATCH, shuffle=True, num_workers=workers,
                                         drop_last=True)
    return _timed(iter(loader), steps, lambda batch: batch[0])


def child_ssltk(root: str, steps: int, workers: int, listing: str = "", compiled: bool = False, device: str = "cpu",
                decode: str = "workers") -> dict:
    import torch

    from ssltk.data.datasets import ImageFolder
    from ssltk.data.device_decode import check_device_decode
    from ssltk.data.recipes import ContrastiveAugment
    from ssltk.data.sources import FileList
    from ssltk.data.stream import StreamGroup, epoch_batches

    torch.manual_seed(0)
    dev = torch.device(device)
    data = (FileList(listing, size=SIZE, stream=True, workers=workers, stats="imagenet") if listing else
            ImageFolder(root, size=SIZE, stream=True, workers=workers, stats="imagenet"))
    images = data.train.images
    aug = ContrastiveAugment(SIZE, data.mean, data.std)
    aug.compiled = compiled  # what --trainer.compile_augment sets; compiled during the warm-up batch
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    order = [perm[i * BATCH : (i + 1) * BATCH] for i in range(steps + 1)]
    gen = torch.Generator(device=dev).manual_seed(1)
    groups = [StreamGroup(2, aug.geometry(), SIZE)]
    if decode == "device":
        check_device_decode(dev)
    batches = epoch_batches(images, order, groups, seed=0, pin=dev.type == "cuda",
                            decode_on=dev if decode == "device" else None)
    return _timed(batches, steps, lambda item: aug.photometric(item[1][0].to(dev, non_blocking=True), gen))


def _sync(out) -> None:
    if getattr(out, "is_cuda", False):
        import torch

        torch.cuda.synchronize()


def _timed(batches, steps: int, finish) -> dict:
    if os.environ.get("SSLTK_BENCH_MEMORY"):
        with PeakPSS() as mem:
            for _ in range(steps + 1):
                finish(next(batches))
        return {"peak_mib": mem.peak}
    _sync(finish(next(batches)))  # warm-up: workers started, first batches in flight, compiled ops compiled
    t0 = time.perf_counter()
    for _ in range(steps):
        out = finish(next(batches))
    _sync(out)
    dt = time.perf_counter() - t0
    assert out.shape[-1] == SIZE
    return {"images_per_s": steps * BATCH / dt}


def run_child(kind: str, steps: int, workers: int, root: Path, listing: Path = None, compiled: bool = False,
              memory: bool = False, device: str = "cpu", decode: str = "workers") -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--root", str(root), "--steps", str(steps), "--workers",
           str(workers)] + (["--listing", str(listing)] if listing else []) + (["--compiled"] if compiled else [])
    if kind == "ssltk":
        cmd += ["--device", device, "--decode", decode]
    env = {**os.environ, "SSLTK_BENCH_MEMORY": "1"} if memory else None
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{kind} failed: {out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# SeLa's label step at ImageNet scale ---------------------------------------------------------------------------------
def sela_budget_lines() -> tuple:
    import torch

    from ssltk_sela.budget import label_step_budget, measure_label_step

    lines, ok = [], True
    for name, dim in (("AlexNet (4096-d)", 4096), ("ResNet-50 (2048-d)", 2048)):
        b = label_step_budget(1_281_167, 3000, 10, dim, feature_dtype="fp16")
        ok &= b["total_gib"] <= 80 * 1e9 / 2**30
        lines.append(f"SeLa label step, ImageNet [3k x 10], {name}: " + ", ".join(
            f"{k[:-4]} {v:.1f}" for k, v in b.items() if k.endswith("_gib")) + " GiB (one 80 GB GPU: "
            f"{'fits' if b['total_gib'] <= 80 * 1e9 / 2**30 else 'DOES NOT FIT'})")
    torch.set_num_threads(2)
    m = measure_label_step(n=200_000, k=300, heads=2, dim=256)
    lines.append(f"label-step budget checked on this CPU (N 200000, K 300, 2 heads, 256-d, fp16 features): "
                 f"predicted {m['predicted_mib']:.0f} MiB, measured peak increase {m['measured_mib']:.0f} MiB "
                 f"({m['measured_mib'] / m['predicted_mib']:.2f}x)")
    return lines, ok and 0.8 <= m["measured_mib"] / m["predicted_mib"] <= 1.25


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10000, help="images per half of the folder (the set is 2n)")
    p.add_argument("--steps", type=int, default=40, help="timed batches of 64 per measurement")
    p.add_argument("--rounds", type=int, default=2, help="alternations of the two pipelines")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--data", default=None, help="an extracted CIFAR-10 train/ folder (extracted otherwise)")
    p.add_argument("--out", default=None, help="where the ImageNet-shaped folder goes (a temp dir otherwise)")
    p.add_argument("--device", default="cpu", help="where ssltk's photometric half runs (cpu, cuda)")
    p.add_argument("--decode", choices=["workers", "device"], default="workers",
                   help="device: also time ssltk with the JPEGs decoded on --device (--trainer.stream_decode device)")
    p.add_argument("--record", action="store_true", help="append the figures to RESULTS.md")
    p.add_argument("--child", choices=["torchvision", "ssltk"], help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    p.add_argument("--listing", default="", help=argparse.SUPPRESS)
    p.add_argument("--compiled", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        fn = child_torchvision if args.child == "torchvision" else child_ssltk
        extra = ({"listing": args.listing, "compiled": args.compiled, "device": args.device, "decode": args.decode}
                 if args.child == "ssltk" else {})
        print(json.dumps(fn(args.root, args.steps, args.workers, **extra)))
        return

    import tempfile

    cifar = Path(args.data) if args.data else extract_cifar10()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ssltk-stream-"))
    t0 = time.time()
    root, listing = make_folder(cifar, out, args.n, args.workers)
    made = time.time() - t0
    tv, ours, eager, on_device = [], [], [], []
    dev = {"device": args.device}
    for _ in range(args.rounds):
        tv.append(run_child("torchvision", args.steps, args.workers, root))
        ours.append(run_child("ssltk", args.steps, args.workers, root, compiled=True, **dev))
        eager.append(run_child("ssltk", args.steps, args.workers, root, **dev))
        if args.decode == "device":
            on_device.append(run_child("ssltk", args.steps, args.workers, root, compiled=True, decode="device", **dev))
    tv_mem = run_child("torchvision", args.steps, args.workers, root, memory=True)["peak_mib"]
    ours_mem = run_child("ssltk", args.steps, args.workers, root, compiled=True, memory=True, **dev)["peak_mib"]
    double_mem = run_child("ssltk", args.steps, args.workers, root, listing, compiled=True, memory=True,
                           **dev)["peak_mib"]
    rounds = lambda rs: ", ".join(f"{r['images_per_s']:.1f}" for r in rs)  # noqa: E731
    tv_ips = statistics.median(r["images_per_s"] for r in tv)
    our_ips = statistics.median(r["images_per_s"] for r in ours)
    eager_ips = statistics.median(r["images_per_s"] for r in eager)
    lines = [
        f"folder: {2 * args.n} JPEGs 300-500 px from CIFAR-10 (made or reused in {made:.0f} s); batch {BATCH}, "
        f"2 views at {SIZE} px, {args.workers} workers, {args.steps} timed batches x {args.rounds} rounds, "
        f"ssltk's photometric half on {args.device}",
        f"torchvision ImageFolder, per-image PIL transforms in workers: {tv_ips:.1f} images/s "
        f"(rounds: {rounds(tv)}), peak PSS {tv_mem:.0f} MiB",
        f"ssltk streaming, crop in workers + batched photometric (compile_augment): {our_ips:.1f} images/s "
        f"(rounds: {rounds(ours)}), peak PSS {ours_mem:.0f} MiB",
        f"ssltk streaming, photometric eager: {eager_ips:.1f} images/s (rounds: {rounds(eager)})",
        f"ratio ssltk / torchvision: {our_ips / tv_ips:.2f}x compiled (goal >= 1.5x), {eager_ips / tv_ips:.2f}x eager",
        f"ssltk streaming peak PSS: {args.n} images {ours_mem:.0f} MiB, {2 * args.n} images "
        f"{double_mem:.0f} MiB ({double_mem / ours_mem:.2f}x for 2x the images)",
    ]
    if on_device:
        dev_ips = statistics.median(r["images_per_s"] for r in on_device)
        lines.append(f"ssltk streaming, JPEGs decoded on {args.device} (stream_decode device, compile_augment): "
                     f"{dev_ips:.1f} images/s (rounds: {rounds(on_device)}); {dev_ips / our_ips:.2f}x ssltk's "
                     f"workers decoding, {dev_ips / tv_ips:.2f}x torchvision")
    budget, fits = sela_budget_lines()
    lines += budget + [f"SeLa ImageNet label step within one 80 GB GPU and formula within 25% of measured: "
                       f"{'yes' if fits else 'NO'}"]
    report("Streaming an ImageNet-shaped folder (stream.py)", lines, args.record)


if __name__ == "__main__":
    main()
