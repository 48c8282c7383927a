"""The GPU suite: every CUDA measurement of the GPU issues, in one device call of at most 9 minutes.

    python examples/benchmarks/gpu_suite.py --part all --budget 450 --out DIR      # one lent session's call
    python examples/benchmarks/gpu_suite.py --part tests|throughput|sinkhorn|protocol|peer|stream --out DIR
    python examples/benchmarks/gpu_suite.py --part peers --method byol --batch 128 --budget 540 --out DIR --work W
    python examples/benchmarks/gpu_suite.py --record-from DIR                      # here, after the call

``--part all`` runs tests, throughput, sinkhorn and protocol in that order, each in its own process with a share of
``--budget`` seconds (a part scales itself to its share, writes its figures as it goes, and is stopped at its share
plus a few seconds if it overruns, keeping what it wrote). A lent session's device time is then never exceeded by the
suite, and the first answers (do the CUDA tests pass, does every objective fit on CUDA) come first.

- ``tests``: the test suite's ``cuda`` tests, then a one-epoch CUDA smoke fit of every registered objective.
- ``throughput``: relational Conv-4, K=32, batch 64: views per second of ssltk against the papers' pipeline
  (``reference_relational.py``) in the same run, with and without ``torch.compile``, in bf16 and fp32, and the
  fraction of the GPU's peak that a step reaches (FLOPs counted by ``torch.utils.flop_counter``). Goal: 10x or more.
- ``sinkhorn``: SeLa's label step at ImageNet size (N = 1,281,167, K = 3,000, float32), one head and ten heads one
  after another, against the time of one read of the N x K matrix. Goal: 10 s or less per head.
- ``protocol``: the Conv-4 CIFAR-10 relational protocol of paper 000 Table 2 (K=32, 200 epochs of 781 steps on the
  50,000 training images, batch 64, then linear evaluation), timed on 2 epochs of 40,000 images (10,000 held out for
  the linear evaluation's timing) in fp32, the papers' precision, with the fastest fp32 step the throughput part
  found, and extrapolated to the 156,250 steps of the table's cell; ``--full`` trains it whole across calls (the run
  in ``--work`` resumes) and reports the accuracy. Goal: 5 minutes or less on one H200.
- ``peer``: SimCLR on the CIFAR ResNet-18, all 50,000 CIFAR-10 images, batch 128: seconds per epoch against
  lightly's published benchmark (200 epochs in 97.7 min on one RTX A6000, 29.3 s per epoch).
- ``peers``: the peers' CIFAR-10 protocol for one method a call (``--method``, ``--batch`` 128 or 512): the CIFAR
  ResNet-18, all 50,000 training images, 200 epochs, weighted kNN with k = 200 and temperature 0.1 at the end on
  the test images beside ``train/`` (``test/``; the shared half, 5,000) as lightly's benchmark reports it (at batch
  128: SimCLR 84.7, BYOL 86.9, MoCo 83.8, SwAV 81.2, DINO 84.0, Barlow Twins 84.2). The run lives in ``--work``
  and stops at a checkpoint before ``--budget`` (``--trainer.max_time``); the same call in a later session
  resumes it, so a method advances a slice per call until its 200 epochs are done. Each method trains with its
  own paper defaults (ssltk's, not lightly's tuned CIFAR recipe), in bf16.
- ``stream``: ``stream.py`` on an ImageNet-shaped folder with the photometric half on the GPU: ssltk's streaming
  against torchvision's per-image pipeline, and JPEGs decoded on the GPU (``--trainer.stream_decode device``, nvjpeg)
  against ssltk's workers decoding them, in the same rounds: where device decoding pays on this machine.

``--smoke`` runs a part at toy scale on the CPU (a few steps, N = 20,000 for Sinkhorn), to check the script itself
before GPU time is spent on it; its figures mean nothing and are never recorded.

Each part writes ``DIR/PART.json`` (its figures) and ``DIR/PART.md`` (its RESULTS.md section, with the GPU's name),
rewritten after every measured line, so a part stopped at its share keeps what it measured; run directories go to
``--work``, never to ``DIR`` (a device call brings back at most 8 files). ``--record`` appends the sections to
``examples/benchmarks/RESULTS.md`` on the machine that ran them; ``--record-from DIR`` appends the sections a device
call brought back, here, where the repository is. Data: ``--data`` (a ``train/``
image folder), else ``.data/train`` as ``examples/benchmarks/gpu_setup.sh`` extracts it, else the shared archive.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REV, RESULTS, ROOT, epoch_records, extract_cifar10, machine, record  # noqa: E402

import ssltk  # noqa: E402

PARTS = ("tests", "throughput", "sinkhorn", "protocol", "peer", "peers", "stream")
#: lightly's CIFAR-10 benchmark, ResNet-18, 200 epochs, batch 128, kNN (k = 200, t = 0.1) top-1 on the test set
LIGHTLY_KNN_B128 = {"simclr": 84.7, "byol": 86.9, "mocov3": 83.8, "swav": 81.2, "dino": 84.0, "barlowtwins": 84.2}
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
DEADLINE = float("inf")  # time.time() by which the running part must have stopped
_OUT: dict = {}  # the running part's lines and figures, rewritten to DIR/PART.{json,md} after every line


def left() -> float:
    """Seconds left of the running part's share."""
    return DEADLINE - time.time()


def emit(line: str, **figures) -> None:
    """One measured line (and its figures) of the running part, written to its files at once."""
    print(line, flush=True)
    _OUT["lines"].append(line)
    _OUT["figures"].update(figures)
    write_part()


def gpu_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() and not SMOKE else "CPU smoke check"


def write_part() -> None:
    out, part = _OUT["dir"], _OUT["part"]
    title = f"GPU suite, part {part}, {gpu_name()}"
    (out / f"{part}.json").write_text(json.dumps({"machine": machine(), "title": title, "command": _OUT["command"],
                                                  "commit": os.environ.get("SSLTK_COMMIT") or REV,
                                                  **_OUT["figures"], "lines": _OUT["lines"]}, indent=2, default=str))
    (out / f"{part}.md").write_text(f"## {title}\n\n- machine: {machine()}\n- command: `{_OUT['command']}`\n\n"
                                   + "".join(f"    {ln}\n" for ln in _OUT["lines"]))


def fit(objective, backbone, root, run, objective_args=None, **trainer):
    """A fit on the CIFAR-10 image folder (the cifar10 normalisation), resumed where its directory holds a run."""
    if (run / "config.yaml").is_file():
        return ssltk.fit(resume=run, trainer={"epochs": trainer["epochs"]})
    if SMOKE:
        trainer.update(device="cpu", train_size=min(trainer.get("train_size") or 256, 256),
                       val_size=min(trainer.get("val_size", 0), 128))
    data = {"root": str(root), "size": 32, "stats": "cifar10", "val_size": trainer.pop("val_size", 0),
            "train_size": trainer.pop("train_size", None), "workers": 2 if SMOKE else 8, **trainer.pop("data", {})}
    evaluate = trainer.pop("evaluate", {"linear": False})
    return ssltk.fit(objective, backbone, "imagefolder", objective_args=objective_args or {}, data_args=data,
                     trainer={"run_dir": str(run), "progress": False, "log_every": 0, **trainer}, evaluate=evaluate)


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"


def part_tests(a, work: Path) -> None:
    from safetensors.torch import save_file

    # the cuda tests skip without a GPU; the smoke check runs a handful of CPU ones instead
    select = ["-m", "not slow", "-k", "bf16"] if SMOKE else ["-m", "cuda"]
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *select], cwd=ROOT,
                              capture_output=True, text=True, timeout=max(10.0, 0.45 * left()))
        tail = proc.stdout.strip().splitlines() or ["(no output)"]
        failed = [ln for ln in tail if ln.startswith(("FAILED", "ERROR"))]
        emit(f"pytest {' '.join(select)}: exit {proc.returncode}, {tail[-1]}", pytest_exit=proc.returncode,
             pytest_failed=failed[:20])
        for ln in failed[:10]:
            emit(f"  {ln[:300]}")
    except subprocess.TimeoutExpired:
        emit("pytest -m cuda: stopped at its share of the budget", pytest_exit=None)
    labels = work / "labels.safetensors"  # self-labels for sela-transfer's smoke fit, as sela-labels exports them
    save_file({"labels": torch.stack([torch.arange(256) % 16, torch.arange(256).flip(0) % 16])}, str(labels))
    smoke_args = {"relational": {"k": 4}, "structured-mi": {"k": 4}, "sela": {"clusters": 16, "heads": 2},
                  "sela-transfer": {"labels": str(labels)}}
    names = ssltk.list_objectives()[:2] if SMOKE else ssltk.list_objectives()
    ok, tried = 0, 0
    for name in names:
        if left() < 8:
            emit(f"{name}: not run, the part's share is spent")
            continue
        tried += 1
        t0 = time.perf_counter()
        try:
            res = ssltk.fit(name, "conv4", "digits", objective_args=smoke_args.get(name, {}),
                            data_args={"train_size": 256},
                            trainer={"epochs": 1, "device": "cpu" if SMOKE else "cuda", "batch_size": 64,
                                     "progress": False, "run_dir": str(work / f"smoke-{name}")},
                            evaluate={"epochs": 5, "random_baseline": False})
            ok += 1
            emit(f"{name}: ok in {time.perf_counter() - t0:.1f} s, linear {res.metrics['linear']['accuracy']:.2f}",
                 smoke_ok=ok)
        except Exception as exc:  # a smoke test reports every objective, failing or not
            emit(f"{name}: FAILED {first_line(exc)}")
    if left() > 8:  # images held on the host: the pinned, double-buffered copy path of the trainer
        t0 = time.perf_counter()
        try:
            ssltk.fit("relational", "conv4", "digits", objective_args={"k": 4}, data_args={"train_size": 256},
                      trainer={"epochs": 2, "device": "cpu" if SMOKE else "cuda", "data_on_device": False,
                               "progress": False, "run_dir": str(work / "smoke-host-images")},
                      evaluate={"linear": False})
            emit(f"relational with images on the host (pinned copies): ok in {time.perf_counter() - t0:.1f} s")
        except Exception as exc:
            emit(f"relational with images on the host: FAILED {first_line(exc)}")
    emit(f"CUDA smoke fits: {ok} of {len(names)} objectives ({tried} tried)", smoke_ok=ok, objectives=len(names))


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


# (compile, compile_mode, amp): eager first, so that a compiler failure still leaves the eager figures
# then CUDA graphs in fp32 (the papers' precision, the protocol's step) before the plain compiled variants
STEP_VARIANTS = [(False, "default", True), (False, "default", False), (True, "reduce-overhead", False),
                 (True, "reduce-overhead", True), (True, "default", True), (True, "default", False)]


def variant_tag(compile_, mode, amp) -> str:
    how = "eager" if not compile_ else ("compiled" if mode == "default" else f"compiled {mode} (CUDA graphs)")
    return f"{how}, {'bf16' if amp else 'fp32'}"


def part_throughput(a, work: Path) -> None:
    from throughput import reference_views_per_s

    root, k, batch = data_root(a), (4 if SMOKE else 32), 64
    n = a.steps * batch
    if Path(a.reference).is_file():
        ref = reference_views_per_s(root, n, k, batch, a.workers, script=a.reference)
        emit(f"papers' pipeline ({a.workers} workers, {n} images, K={k}): {ref:.0f} views/s",
             reference_views_per_s=ref)
    else:  # a checkout without ../shared: the ratios are left out, the rest is measured
        ref = float("nan")
        emit(f"papers' pipeline: {a.reference} not found; no ratio against it")
    flops = step_flops("relational", k, batch, root)
    gpu = gpu_name()
    peak = next((v for key, v in PEAKS.items() if key in gpu), None)
    emit(f"one step: {flops / 1e9:.1f} GFLOP (forward and backward, {batch} images x {k} views)",
         step_gflop=flops / 1e9)
    variants = STEP_VARIANTS[:2] if SMOKE else STEP_VARIANTS
    for compile_, mode, amp in variants:
        tag = variant_tag(compile_, mode, amp)
        if left() < (45 if compile_ else 15) and not SMOKE:
            emit(f"ssltk, {tag}: not run, the part's share is spent")
            continue
        run = work / f"throughput-compile{int(compile_)}-{mode}-amp{int(amp)}"
        try:
            fit("relational", "conv4", root, run, {"k": k}, epochs=2, batch_size=batch, train_size=n,
                compile=compile_, compile_mode=mode, amp=amp)
        except Exception as exc:
            emit(f"ssltk, {tag}: FAILED {first_line(exc)}", **{tag: {"error": first_line(exc)}})
            continue
        recs = epoch_records(run)
        vps = recs[-1]["views_per_s"]  # the second epoch: compilation and warm-up done
        step_ms = 1000 * batch * k / vps
        frac = (vps / (batch * k)) * flops / peak["bf16" if amp else "fp32"] if peak else float("nan")
        emit(f"ssltk, {tag}: {vps:.0f} views/s ({step_ms:.2f} ms per step), {vps / ref:.1f}x the papers' pipeline, "
             f"{100 * frac:.2f}% of the GPU's {'bf16' if amp else 'fp32'} peak; first epoch (warm-up, compilation) "
             f"{recs[0]['seconds']:.1f} s",
             **{tag: {"views_per_s": vps, "ms_per_step": step_ms, "ratio": vps / ref, "peak_fraction": frac,
                      "compile": compile_, "compile_mode": mode, "amp": amp,
                      "first_epoch_s": recs[0]["seconds"]}})


def part_sinkhorn(a, work: Path) -> None:
    from sinkhorn import measure

    n, k, dev = (20_000, 100, "cpu") if SMOKE else (1_281_167, 3_000, "cuda")
    one = measure(n, k, device=dev)
    for ln in ["one head:"] + one["lines"]:
        emit(ln)
    emit(f"memory-bandwidth floor: one read of the {n} x {k} float32 matrix takes {one['read_seconds'] * 1000:.1f} ms",
         one_head_s=one["seconds"], read_s=one["read_seconds"], iterations=one["iterations"])
    per_head = []
    for h in range(1, 10):  # further heads (SeLa trains ten) while the share lasts
        if left() < 2.5 * one["seconds"] + 5:
            break
        per_head.append(measure(n, k, device=dev, seed=h)["seconds"])
    if per_head:
        emit(f"{len(per_head)} more heads one after another: {sum(per_head) / len(per_head):.2f} s per head "
             f"(min {min(per_head):.2f}, max {max(per_head):.2f}); goal 10 s or less per head",
             more_heads_s=per_head)


PAPER_STEPS = 200 * (50_000 // 64)  # paper 000 Table 2's Conv-4 cell: 200 epochs of 781 steps


def protocol_variant(work_out: Path) -> tuple:
    """The fastest fp32 step the throughput part measured: (compile, mode, ms per step or None)."""
    try:
        figures = json.loads((work_out / "throughput.json").read_text())
    except (OSError, ValueError):
        return False, "default", None
    best = [(v["views_per_s"], v["compile"], v["compile_mode"], v["ms_per_step"]) for v in figures.values()
            if isinstance(v, dict) and "views_per_s" in v and not v.get("amp")]
    return max(best)[1:] if best else (False, "default", None)


def part_protocol(a, work: Path) -> None:
    root, epochs = data_root(a), 200
    run = Path(a.work) / "protocol-relational-k32"
    compile_, mode, ms = protocol_variant(Path(a.out))
    # the timing run: 2 epochs of 40,000 images (625 steps each), or fewer images where the throughput part's step
    # time says 2 such epochs would not fit in a third of the share (loading, compilation and the linear evaluation
    # take the rest)
    train = 40_000
    if ms and not a.full:
        train = max(64 * 50, min(train, 64 * int(left() / 3 / 2 / (ms / 1000))))
    budget_epochs = epochs if a.full else 2
    if SMOKE:
        train, budget_epochs = 256, 2
    emit(f"timing run: relational K=32 Conv-4, batch 64, fp32, {variant_tag(compile_, mode, False)}, "
         f"{budget_epochs} epochs of {train} images", compile=compile_, compile_mode=mode)
    t0 = time.perf_counter()
    res = fit("relational", "conv4", root, run, {"k": 32 if not SMOKE else 4}, epochs=budget_epochs, batch_size=64,
              train_size=train, val_size=10_000, amp=False, compile=compile_, compile_mode=mode,
              evaluate={"epochs": 100} if a.full else {"linear": False})
    wall = time.perf_counter() - t0
    recs = epoch_records(run)
    steps = train // 64
    per_step = recs[-1]["seconds"] / steps  # the last epoch: past compilation and warm-up
    emit(f"{len(recs)} epochs in {wall:.0f} s with loading; last epoch {recs[-1]['seconds']:.1f} s, "
         f"{1000 * per_step:.2f} ms per step ({recs[-1]['views_per_s']:.0f} views/s)",
         epochs_run=len(recs), ms_per_step=1000 * per_step, wall_s=wall)
    if a.full and len(recs) == epochs:
        acc = res.metrics["linear"]["accuracy"]
        emit(f"linear evaluation (validation split): {acc:.2f} (paper 000, Table 2: 61.03 on the test set)",
             accuracy=acc)
        return
    t_lin = time.perf_counter()
    lin = ssltk.evaluate("linear", run=run, evaluator_args={"epochs": 2 if SMOKE else 100},
                         out_dir=Path(a.work) / "protocol-linear", device="cpu" if SMOKE else "auto")
    t_lin = time.perf_counter() - t_lin
    total = PAPER_STEPS * per_step + t_lin
    emit(f"linear evaluation, 100 epochs on 40,000 training / 10,000 held-out features: {t_lin:.0f} s "
         f"(accuracy after {len(recs)} epochs {lin.metrics['accuracy']:.2f})", linear_s=t_lin)
    emit(f"extrapolated: Table 2's cell, {PAPER_STEPS} steps x {1000 * per_step:.2f} ms + linear evaluation "
         f"{t_lin:.0f} s = {total / 60:.1f} min on this GPU (goal 5 min or less)", extrapolated_minutes=total / 60)


def part_peer(a, work: Path) -> None:
    root = data_root(a)
    run = work / "peer-simclr-resnet18"
    fit("simclr", "conv4" if SMOKE else "resnet18-cifar", root, run, epochs=2, batch_size=128)
    per_epoch = epoch_records(run)[-1]["seconds"]
    emit(f"SimCLR, CIFAR ResNet-18, 50,000 images, batch 128, bf16: {per_epoch:.1f} s per epoch "
         f"(second epoch); lightly on one RTX A6000: {LIGHTLY_S_PER_EPOCH:.1f} s per epoch, "
         f"ratio {LIGHTLY_S_PER_EPOCH / per_epoch:.2f}x; 200 epochs would take {200 * per_epoch / 60:.1f} min",
         seconds_per_epoch=per_epoch, lightly_seconds_per_epoch=LIGHTLY_S_PER_EPOCH)


def part_peers(a, work: Path) -> None:
    root = data_root(a)
    method, batch, epochs = a.method, a.batch, 2 if SMOKE else 200
    run = Path(a.work) / f"peers-{method}-b{batch}"
    test = root.parent / "test"
    on_test = test.is_dir() and not SMOKE
    # train/ and test/ side by side give the test split; a folder of training images only holds 10,000 out instead
    data_extra, held = ({"root": str(root.parent)}, 0) if on_test else ({}, 10_000)
    stop = max(30, int(left() - 90)) if left() != float("inf") else None  # the kNN pass and the files after it
    emit(f"{method}, CIFAR ResNet-18, batch {batch}, {epochs} epochs, kNN k=200 t=0.1 on "
         f"{'the test images' if on_test else 'a held-out split'}; this call: {stop or 'no'} s of training",
         method=method, batch=batch)
    t0 = time.perf_counter()
    res = fit(method, "conv4" if SMOKE else "resnet18-cifar", root, run, epochs=epochs, batch_size=batch,
              max_time=f"{stop}s" if stop else None, knn_every=epochs, knn_k=200, knn_sigma=0.1, data=data_extra,
              val_size=held)
    recs = epoch_records(run)
    per_epoch = recs[-1]["seconds"]
    emit(f"{len(recs)}/{epochs} epochs done ({time.perf_counter() - t0:.0f} s this call); last epoch "
         f"{per_epoch:.1f} s ({recs[-1]['views_per_s']:.0f} views/s): 200 epochs take {epochs * per_epoch / 60:.1f} min",
         epochs_done=len(recs), seconds_per_epoch=per_epoch)
    if res.stopped_at_epoch is None:
        from ssltk.engine.metrics import read_metrics

        knn = read_metrics(run, "knn")[-1]["knn_accuracy"]
        paper = LIGHTLY_KNN_B128.get(method)
        emit(f"kNN (k=200, t=0.1) after {epochs} epochs: {knn:.2f}" + (f" (lightly at batch 128: {paper})" if paper
                                                                        else ""), knn_accuracy=knn)


def part_stream(a, work: Path) -> None:
    root = data_root(a)
    n, steps, rounds, dev = (100, 2, 1, "cpu") if SMOKE else (3000, 30, 2, "cuda")
    cmd = [sys.executable, str(Path(__file__).resolve().parent / "stream.py"), "--n", str(n), "--steps", str(steps),
           "--rounds", str(rounds), "--workers", str(a.workers), "--data", str(root), "--out", str(work / "inet"),
           "--device", dev, "--decode", "device"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"stream.py failed: {done.stderr[-3000:]}")
    for ln in done.stdout.splitlines():
        if ln.strip():
            emit(ln)


# --part all: the order of the answers and each part's share of the budget
# shares from the first H200 session: the CUDA tests took about 90 s (75 s compiling the CUDA-graph test), one
# CUDA-graph variant of the throughput part compiles for over a minute, Sinkhorn needed 13 s, the protocol 72 s
ALL_PARTS = (("tests", 0.25), ("throughput", 0.42), ("sinkhorn", 0.06), ("protocol", 0.27))
GRACE_S = 15  # past its share a part is stopped; it has written what it measured


def run_all(a) -> int:
    """Each part of ALL_PARTS in its own process with its share of the budget; returns the number that failed."""
    t0, failed, spent = time.time(), 0, 0.0
    for part, share in ALL_PARTS:
        # what an earlier part left unspent goes to the parts after it
        remaining = sum(sh for p_, sh in ALL_PARTS[[p for p, _ in ALL_PARTS].index(part):])
        seconds = max(5.0, (a.budget - (time.time() - t0) - GRACE_S) * share / remaining)
        argv = [sys.executable, str(Path(__file__).resolve()), "--part", part, "--out", a.out, "--work", a.work,
                "--deadline", str(time.time() + seconds), "--workers", str(a.workers), "--steps", str(a.steps)]
        argv += (["--data", a.data] if a.data else []) + (["--reference", a.reference] if a.reference else [])
        argv += ["--smoke"] if SMOKE else []
        print(f"== part {part}: {seconds:.0f} s of the budget", flush=True)
        try:
            code = subprocess.run(argv, timeout=seconds + GRACE_S).returncode
        except subprocess.TimeoutExpired:
            code = "stopped at its share"
        if code != 0:
            failed += 1
            print(f"== part {part}: {code}", flush=True)
    print(f"== suite: {time.time() - t0:.0f} s of a {a.budget:.0f} s budget, {failed} part(s) failed or stopped")
    return failed


def record_from(folder: Path, commit: str | None) -> None:
    """Append the sections that a device call brought back to RESULTS.md, in the suite's order. The commit is the
    one the call ran: ``--commit``, else the one its files name (``SSLTK_COMMIT`` set on the device machine)."""
    found = 0
    for part in PARTS:
        f = folder / f"{part}.json"
        if not f.is_file():
            continue
        fig = json.loads(f.read_text())
        if "CPU smoke" in fig["title"]:
            sys.exit(f"{f}: a --smoke result measures nothing and is never recorded")
        ran = commit or fig.get("commit")
        if not ran or ran.startswith("ssltk "):
            sys.exit(f"{f}: the files do not name the commit that ran (no git on the device machine); give --commit")
        record(fig["title"], fig["command"], fig["lines"], commit=ran, host=fig["machine"])
        found += 1
    if not found:
        sys.exit(f"{folder}: no part's JSON there")
    print(f"recorded {found} part(s) from {folder} in {RESULTS}")


def main() -> None:
    global SMOKE, DEADLINE
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--part", choices=PARTS + ("all",))
    p.add_argument("--out", help="the folder for the parts' figures (JSON and Markdown, one each per part)")
    p.add_argument("--work", default=None, help="where run directories go (default: a temporary folder)")
    p.add_argument("--budget", type=float, default=450.0, help="--part all: seconds for the whole suite")
    p.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--data", default=None, help="a train/ image folder of CIFAR-10")
    p.add_argument("--reference", default=None, help="reference_relational.py (default: .data/ or ../shared/tools)")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers of the papers' pipeline")
    p.add_argument("--steps", type=int, default=30, help="throughput: steps per measured epoch")
    p.add_argument("--full", action="store_true", help="protocol: train all 200 epochs (resuming across calls)")
    p.add_argument("--method", default="simclr", help="peers: the objective to train")
    p.add_argument("--batch", type=int, default=128, help="peers: the batch size (the peers report 128 and 512)")
    p.add_argument("--record", action="store_true", help="append the section to examples/benchmarks/RESULTS.md")
    p.add_argument("--record-from", default=None, help="append the sections of a device call's DIR to RESULTS.md")
    p.add_argument("--commit", default=None, help="--record-from: the commit the device call ran")
    p.add_argument("--smoke", action="store_true", help="toy scale on the CPU: checks the script, measures nothing")
    a = p.parse_args()
    if a.record_from:
        return record_from(Path(a.record_from), a.commit)
    if not a.part or not a.out:
        p.error("--part and --out are needed (or --record-from DIR)")
    SMOKE = a.smoke
    if not torch.cuda.is_available() and not SMOKE:
        sys.exit("gpu_suite.py needs a CUDA device (torch.cuda.is_available() is False here); --smoke checks the "
                 "script on the CPU")
    if SMOKE:
        a.record, a.steps, a.workers = False, 2, 2
    if a.reference is None:
        local = ROOT / ".data" / "reference_relational.py"
        a.reference = str(local if local.is_file() else ROOT.parent / "shared" / "tools" / "reference_relational.py")
    a.work = a.work or tempfile.mkdtemp(prefix="ssltk-gpu-suite-")
    Path(a.out).mkdir(parents=True, exist_ok=True)
    if a.part == "all":
        sys.exit(1 if run_all(a) else 0)
    if a.deadline is not None:
        DEADLINE = a.deadline
    elif a.part == "peers":  # a part run alone in a device call: its budget is the call's
        DEADLINE = time.time() + a.budget
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    argv = sys.argv[1:]
    if "--deadline" in argv:  # an instant, meaningless in a record
        at = argv.index("--deadline")
        argv = argv[:at] + argv[at + 2:]
    command = "python examples/benchmarks/gpu_suite.py " + " ".join(argv)
    _OUT.update(dir=Path(a.out), part=a.part, lines=[], figures={}, command=command)
    t0 = time.perf_counter()
    globals()[f"part_{a.part}"](a, work)
    emit(f"part took {time.perf_counter() - t0:.0f} s")
    if a.record:
        record(f"GPU suite, part {a.part}, {gpu_name()}", command, _OUT["lines"])


if __name__ == "__main__":
    main()
