"""The GPU suite: every CUDA measurement of the GPU issue, one part per call, each under 10 minutes on one H100/H200.

    python examples/benchmarks/gpu_suite.py --part tests|throughput|sinkhorn|protocol|peer|stream --out DIR [--record]

- ``tests``: the test suite's ``cuda`` tests, then a one-epoch CUDA smoke fit of every registered objective.
- ``throughput``: relational Conv-4, K=32, batch 64: views per second of ssltk against the papers' pipeline
  (``reference_relational.py``) in the same run, with and without ``torch.compile``, in bf16 and fp32, and the
  fraction of the GPU's peak that a step reaches (FLOPs counted by ``torch.utils.flop_counter``). Goal: 10x or more.
- ``sinkhorn``: SeLa's label step at ImageNet size (N = 1,281,167, K = 3,000, float32), one head and ten heads one
  after another, against the time of one read of the N x K matrix. Goal: 10 s or less per head.
- ``protocol``: the full Conv-4 CIFAR-10 relational protocol (K=32, 200 epochs, linear evaluation; 40,000 training
  and 10,000 validation images), timed on its first epochs and extrapolated; ``--full`` trains it whole across calls
  (the run in ``--work`` resumes) and reports the accuracy. Goal: 15 minutes or less.
- ``peer``: SimCLR on the CIFAR ResNet-18, all 50,000 CIFAR-10 images, batch 128: seconds per epoch against
  lightly's published benchmark (200 epochs in 97.7 min on one RTX A6000, 29.3 s per epoch).
- ``stream``: ``stream.py`` on an ImageNet-shaped folder with the photometric half on the GPU: ssltk's streaming
  against torchvision's per-image pipeline, and JPEGs decoded on the GPU (``--trainer.stream_decode device``, nvjpeg)
  against ssltk's workers decoding them, in the same rounds: where device decoding pays on this machine.

``--smoke`` runs a part at toy scale on the CPU (a few steps, N = 20,000 for Sinkhorn), to check the script itself
before GPU time is spent on it; its figures mean nothing and are never recorded.

Each part writes ``DIR/PART.json`` (its figures) and ``DIR/PART.md`` (its RESULTS.md section, with the GPU's name),
and appends the section to ``examples/benchmarks/RESULTS.md`` with ``--record``. Data: ``--data`` (a ``train/``
image folder), else ``.data/train`` as ``examples/benchmarks/gpu_setup.sh`` extracts it, else the shared archive.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, epoch_records, extract_cifar10, machine, record  # noqa: E402

import ssltk  # noqa: E402

PARTS = ("tests", "throughput", "sinkhorn", "protocol", "peer", "stream")
# dense peak throughput, FLOP/s (NVIDIA datasheets, SXM parts): bf16 tensor cores and plain fp32 (no TF32)
PEAKS = {"H100": {"bf16": 989e12, "fp32": 67e12}, "H200": {"bf16": 989e12, "fp32": 67e12},
         "A100": {"bf16": 312e12, "fp32": 19.5e12}}
LIGHTLY_S_PER_EPOCH = 97.7 * 60 / 200


def data_root(a) -> Path:
    for cand in (a.data, ROOT / ".data" / "train"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return extract_cifar10()


SMOKE = False  # --smoke: toy scale on the CPU


def fit(objective, backbone, root, run, objective_args=None, **trainer):
    """A fit on the CIFAR-10 image folder (the cifar10 normalisation), resumed where its directory holds a run."""
    if (run / "config.yaml").is_file():
        return ssltk.fit(resume=run, trainer={"epochs": trainer["epochs"]})
    if SMOKE:
        trainer.update(device="cpu", train_size=min(trainer.get("train_size") or 256, 256),
                       val_size=min(trainer.get("val_size", 0), 128))
    data = {"root": str(root), "size": 32, "stats": "cifar10", "val_size": trainer.pop("val_size", 0),
            "train_size": trainer.pop("train_size", None), "workers": 8}
    evaluate = trainer.pop("evaluate", {"linear": False})
    return ssltk.fit(objective, backbone, "imagefolder", objective_args=objective_args or {}, data_args=data,
                     trainer={"run_dir": str(run), "progress": False, "log_every": 0, **trainer}, evaluate=evaluate)


def part_tests(a, out: Path) -> dict:
    from safetensors.torch import save_file

    pytest_args = ["-k", "bf16"] if SMOKE else []  # the cuda tests skip without a GPU; run a few CPU ones instead
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda" if not SMOKE else "not slow",
                           "-p", "no:cacheprovider", *pytest_args], cwd=ROOT, capture_output=True, text=True)
    summary = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    lines = [f"pytest -m cuda: exit {proc.returncode}, {summary}"]
    labels = out / "labels.safetensors"  # self-labels for sela-transfer's smoke fit, as sela-labels exports them
    save_file({"labels": torch.stack([torch.arange(256) % 16, torch.arange(256).flip(0) % 16])}, str(labels))
    smoke_args = {"relational": {"k": 4}, "structured-mi": {"k": 4}, "sela": {"clusters": 16, "heads": 2},
                  "sela-transfer": {"labels": str(labels)}}
    ok = 0
    for name in ssltk.list_objectives()[:2] if SMOKE else ssltk.list_objectives():
        t0 = time.perf_counter()
        try:
            res = ssltk.fit(name, "conv4", "digits", objective_args=smoke_args.get(name, {}),
                            data_args={"train_size": 256},
                            trainer={"epochs": 1, "device": "cpu" if SMOKE else "cuda", "batch_size": 64,
                                     "progress": False,
                                     "run_dir": str(out / f"smoke-{name}")},
                            evaluate={"epochs": 5, "random_baseline": False})
            ok += 1
            lines.append(f"{name}: ok in {time.perf_counter() - t0:.1f} s, linear {res.metrics['linear']['accuracy']:.2f}")
        except Exception as exc:  # a smoke test reports every objective, failing or not
            lines.append(f"{name}: FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    # images held on the host: the pinned, double-buffered copy path of the trainer
    t0 = time.perf_counter()
    try:
        ssltk.fit("relational", "conv4", "digits", objective_args={"k": 4}, data_args={"train_size": 256},
                  trainer={"epochs": 2, "device": "cpu" if SMOKE else "cuda", "data_on_device": False,
                           "progress": False, "run_dir": str(out / "smoke-host-images")}, evaluate={"linear": False})
        lines.append(f"relational with images on the host (pinned copies): ok in {time.perf_counter() - t0:.1f} s")
    except Exception as exc:
        lines.append(f"relational with images on the host: FAILED {type(exc).__name__}: {str(exc)[:200]}")
    lines.append(f"CUDA smoke fits: {ok} of {len(ssltk.list_objectives()[:2] if SMOKE else ssltk.list_objectives())} "
                 "objectives")
    return {"pytest_exit": proc.returncode, "smoke_ok": ok, "lines": lines}


def step_flops(objective: str, k: int, batch: int, root: Path) -> float:
    """FLOPs of one training step (forward and backward) counted by PyTorch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    from ssltk.engine.trainer import Trainer
    from ssltk.interfaces import ViewBatch

    cfg = ssltk.make_config(objective, data="imagefolder", objective_args={"k": k},
                            data_args={"root": str(root), "size": 32, "train_size": batch * 2, "stats": "cifar10"},
                            trainer={"batch_size": batch, "progress": False, "amp": False,
                                     "device": "cpu" if SMOKE else "auto"}, evaluate={"linear": False})
    t = Trainer(cfg)
    t._build()
    views = t.augment(t.images[:batch].to(t.device), k, torch.Generator(device=t.device).manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        loss = t.objective(ViewBatch(views, k, torch.arange(batch)), t.backbone).loss
        loss.backward()
    return float(counter.get_total_flops())


def part_throughput(a, out: Path) -> dict:
    from throughput import reference_views_per_s

    root, k, batch = data_root(a), (4 if SMOKE else 32), 64
    n = a.steps * batch
    ref = reference_views_per_s(root, n, k, batch, a.workers, script=a.reference)
    flops = step_flops("relational", k, batch, root)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    peak = next((v for key, v in PEAKS.items() if key in gpu), None)
    lines = [f"papers' pipeline ({a.workers} workers): {ref:.0f} views/s",
             f"one step: {flops / 1e9:.1f} GFLOP (forward and backward, {batch} images x {k} views)"]
    figures = {"reference_views_per_s": ref, "step_gflop": flops / 1e9}
    for compile_ in (False,) if SMOKE else (False, True):
        for amp in (True, False):
            run = out / f"throughput-compile{int(compile_)}-amp{int(amp)}"
            fit("relational", "conv4", root, run, {"k": k}, epochs=2, batch_size=batch, train_size=n,
                compile=compile_, amp=amp)
            vps = epoch_records(run)[-1]["views_per_s"]  # the second epoch: compilation and warm-up done
            steps_per_s = vps / (batch * k)
            frac = steps_per_s * flops / peak["bf16" if amp else "fp32"] if peak else float("nan")
            tag = f"compile {'on' if compile_ else 'off'}, {'bf16' if amp else 'fp32'}"
            lines.append(f"ssltk, {tag}: {vps:.0f} views/s, {vps / ref:.1f}x the papers' pipeline, "
                         f"{100 * frac:.2f}% of the GPU's {'bf16' if amp else 'fp32'} peak")
            figures[tag] = {"views_per_s": vps, "ratio": vps / ref, "peak_fraction": frac}
    return {**figures, "lines": lines}


def part_sinkhorn(a, out: Path) -> dict:
    from sinkhorn import measure

    n, k, dev = (20_000, 100, "cpu") if SMOKE else (1_281_167, 3_000, "cuda")
    one = measure(n, k, device=dev)
    heads = [measure(n, k, device=dev, seed=h) for h in range(10)]
    per_head = [h["seconds"] for h in heads]
    lines = ["one head:"] + one["lines"] + [
        f"ten heads one after another: {sum(per_head):.1f} s in all, {sum(per_head) / 10:.2f} s per head "
        f"(min {min(per_head):.2f}, max {max(per_head):.2f}); goal 10 s or less per head",
        f"memory-bandwidth floor: one read of the {n} x {k} float32 matrix takes {one['read_seconds'] * 1000:.1f} ms"]
    return {"one_head_s": one["seconds"], "ten_heads_s": per_head, "read_s": one["read_seconds"], "lines": lines}


def part_protocol(a, out: Path) -> dict:
    root, epochs = data_root(a), 200
    run = Path(a.work) / "protocol-relational-k32"
    budget_epochs = epochs if a.full else (2 if SMOKE else 3)
    res = fit("relational", "conv4", root, run, {"k": 32}, epochs=budget_epochs, batch_size=64, val_size=10_000,
              evaluate={"epochs": 100} if a.full else {"linear": False})
    recs = epoch_records(run)
    per_epoch = sorted(r["seconds"] for r in recs[1:] or recs)[len(recs[1:] or recs) // 2]  # median, past warm-up
    lines = [f"{len(recs)} of {epochs} epochs run; median {per_epoch:.1f} s per epoch "
             f"({recs[-1]['views_per_s']:.0f} views/s)"]
    figures = {"epochs_run": len(recs), "seconds_per_epoch": per_epoch}
    if a.full and len(recs) == epochs:
        acc = res.metrics["linear"]["accuracy"]
        lines.append(f"linear evaluation (validation split): {acc:.2f} (paper 002, Table 2: 61.03 on the test set)")
        figures["accuracy"] = acc
    else:
        t_lin = time.perf_counter()
        lin = ssltk.evaluate("linear", run=run, evaluator_args={"epochs": 2 if SMOKE else 100},
                             out_dir=out / "protocol-linear", device="cpu" if SMOKE else "auto")
        t_lin = time.perf_counter() - t_lin
        total = epochs * per_epoch + t_lin
        lines.append(f"extrapolated: {epochs} epochs x {per_epoch:.1f} s + linear evaluation {t_lin:.0f} s = "
                     f"{total / 60:.1f} min (goal 15 min or less); linear after {len(recs)} epochs "
                     f"{lin.metrics['accuracy']:.2f}")
        figures["extrapolated_minutes"] = total / 60
    return {**figures, "lines": lines}


def part_peer(a, out: Path) -> dict:
    root = data_root(a)
    run = out / "peer-simclr-resnet18"
    fit("simclr", "conv4" if SMOKE else "resnet18-cifar", root, run, epochs=2, batch_size=128)
    per_epoch = epoch_records(run)[-1]["seconds"]
    lines = [f"SimCLR, CIFAR ResNet-18, 50,000 images, batch 128, bf16: {per_epoch:.1f} s per epoch "
             f"(second epoch); lightly on one RTX A6000: {LIGHTLY_S_PER_EPOCH:.1f} s per epoch, "
             f"ratio {LIGHTLY_S_PER_EPOCH / per_epoch:.2f}x; 200 epochs would take {200 * per_epoch / 60:.1f} min"]
    return {"seconds_per_epoch": per_epoch, "lightly_seconds_per_epoch": LIGHTLY_S_PER_EPOCH, "lines": lines}


def part_stream(a, out: Path) -> dict:
    root = data_root(a)
    n, steps, rounds, dev = (100, 2, 1, "cpu") if SMOKE else (3000, 30, 2, "cuda")
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "stream.py"), "--n", str(n), "--steps", str(steps),
           "--rounds", str(rounds), "--workers", str(a.workers), "--data", str(root), "--out", str(out / "inet"),
           "--device", dev, "--decode", "device"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"stream.py failed: {done.stderr[-3000:]}")
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    return {"lines": lines}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[2:4]))
    p.add_argument("--part", required=True, choices=PARTS)
    p.add_argument("--out", required=True, help="the folder for the part's figures and runs")
    p.add_argument("--data", default=None, help="a train/ image folder of CIFAR-10")
    p.add_argument("--reference", default=None, help="reference_relational.py (default: .data/ or ../shared/tools)")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers of the papers' pipeline")
    p.add_argument("--steps", type=int, default=40, help="throughput: steps per measured epoch")
    p.add_argument("--work", default=str(ROOT / ".data" / "runs"), help="protocol: where its resumable run lives")
    p.add_argument("--full", action="store_true", help="protocol: train all 200 epochs (resuming across calls)")
    p.add_argument("--record", action="store_true", help="append the section to examples/benchmarks/RESULTS.md")
    p.add_argument("--smoke", action="store_true", help="toy scale on the CPU: checks the script, measures nothing")
    a = p.parse_args()
    global SMOKE
    SMOKE = a.smoke
    if not torch.cuda.is_available() and not SMOKE:
        sys.exit("gpu_suite.py needs a CUDA device (torch.cuda.is_available() is False here); --smoke checks the "
                 "script on the CPU")
    if SMOKE:
        a.record, a.steps, a.workers = False, 2, 2
    if a.reference is None:
        local = ROOT / ".data" / "reference_relational.py"
        a.reference = str(local if local.is_file() else ROOT.parent / "shared" / "tools" / "reference_relational.py")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    figures = globals()[f"part_{a.part}"](a, out)
    lines = figures.pop("lines") + [f"part took {time.perf_counter() - t0:.0f} s"]
    title = f"GPU suite, part {a.part}, {torch.cuda.get_device_name(0) if not SMOKE else 'CPU smoke check'}"
    command = "python examples/benchmarks/gpu_suite.py " + " ".join(sys.argv[1:])
    print("\n".join(lines))
    (out / f"{a.part}.json").write_text(json.dumps({"machine": machine(), **figures}, indent=2, default=str))
    (out / f"{a.part}.md").write_text(f"## {title}\n\n- machine: {machine()}\n- command: `{command}`\n\n"
                                     + "".join(f"    {ln}\n" for ln in lines))
    if a.record:
        record(title, command, lines)


if __name__ == "__main__":
    main()
