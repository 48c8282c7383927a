"""How much does the JPEG encoding of the shared CIFAR-10 images move a linear-evaluation number? (issue #14)

The papers trained on CIFAR-10 as the original uint8 arrays; ../shared holds the same 50,000 training images
re-encoded as JPEG, and no copy of the originals is on this machine. The effect of that one lossy generation is
therefore measured by adding a second generation of the same strength and seeing what it changes:

1. the JPEG quality of the shared files is read off their quantisation tables (the quality whose tables Pillow's
   encoder writes equals theirs), with their chroma subsampling;
2. the distortion of one generation at that quality on images that were never compressed at 32 px is measured as a
   PSNR: tiles of scikit-learn's bundled photographs, downscaled 4x with a box filter (which removes their own JPEG
   artefacts), then encoded at that quality;
3. the shared images are encoded again at the quality whose PSNR against the shared images is closest to the
   distortion of step 2: a second generation as strong as the first (encoding them again at their own quality is
   printed too: it is nearly lossless, so it could not stand for the first generation);
4. each set trains the same model on the reduced protocol (``_common.reduced_cifar10_fit``: Conv-4, a fixed
   10,000-image training subset, linear evaluation on a disjoint 10,000-image validation split; supervised training
   with its own crop and flip, and the random-weights baseline of the same fit) for each seed.

The difference between the second generation and the shared images estimates what the shared images' own encoding
costs against the originals; the spread over seeds is the noise floor of the comparison. Finished runs are reused
and unfinished ones resume, so the script can be stopped and restarted.

``--write-only`` stops after step 3 and prints the second generation's folder, so that a cell of ``ssltk reproduce``
can run on it at the paper's full budget (``--data.root`` that folder): the file names are the shared ones, so the
validation split is the same and the cell compares seed for seed with its run on the shared images.

    python examples/benchmarks/jpeg_effect.py [--seeds 0 1] [--epochs 20] [--data TRAIN_DIR] [--out DIR] [--record]
    python examples/benchmarks/jpeg_effect.py --write-only [--data TRAIN_DIR] [--out DIR] [--record]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_run_arguments, data_and_runs, record, reduced_cifar10_fit  # noqa: E402


def _encode(img, quality: int, subsampling: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def shared_quality(paths) -> tuple:
    """(quality, subsampling) of the shared JPEGs: the Pillow quality whose quantisation tables equal theirs."""
    from PIL import Image, JpegImagePlugin

    found = set()
    for p in paths:
        with Image.open(p) as im:
            tables = {k: list(v) for k, v in im.quantization.items()}
            sub = JpegImagePlugin.get_sampling(im)
            rgb = im.convert("RGB")
        match = [q for q in range(1, 101)
                 if {k: list(v) for k, v in Image.open(io.BytesIO(_encode(rgb, q, max(sub, 0)))).quantization.items()}
                 == tables]
        found.add((match[0] if match else -1, sub))
    if len(found) != 1 or next(iter(found))[0] < 0:
        sys.exit(f"the shared JPEGs do not share one Pillow quality: {sorted(found)}")
    return next(iter(found))


def psnr(a, b) -> float:
    import numpy as np

    err = np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(err, 1e-12)))


def first_generation_psnr(quality: int, subsampling: int) -> tuple:
    """Mean PSNR of one encoding at ``quality`` on 32 px tiles that were never compressed at that size."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    values = []
    for arr in load_sample_images().images:
        im = Image.fromarray(arr)
        small = im.resize((im.width // 4, im.height // 4), Image.BOX)
        for top in range(0, small.height - 31, 32):
            for left in range(0, small.width - 31, 32):
                tile = small.crop((left, top, left + 32, top + 32))
                values.append(psnr(tile, Image.open(io.BytesIO(_encode(tile, quality, subsampling))).convert("RGB")))
    return statistics.mean(values), len(values)


def second_generation_psnr(paths, quality: int, subsampling: int) -> float:
    from PIL import Image

    values = []
    for p in paths:
        with Image.open(p) as im:
            rgb = im.convert("RGB")
        values.append(psnr(rgb, Image.open(io.BytesIO(_encode(rgb, quality, subsampling))).convert("RGB")))
    return statistics.mean(values)


def write_variant(paths, root: Path, dest: Path, quality: int, subsampling: int) -> Path:
    """Every image of ``root`` encoded again at ``quality`` under ``dest``, same names (so the same split)."""
    from PIL import Image

    done = dest / ".complete"
    if done.is_file():
        return dest
    for p in paths:
        out = dest / p.relative_to(root)
        out.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(p) as im:
            out.write_bytes(_encode(im.convert("RGB"), quality, subsampling))
    done.write_text("ok\n")
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--sample", type=int, default=500, help="shared images the quality and PSNR are measured on")
    p.add_argument("--write-only", action="store_true",
                   help="write the second generation, print its folder and train nothing")
    add_run_arguments(p)
    a = p.parse_args()
    from ssltk.eval.results import read_results

    root, out = data_and_runs(a)
    paths = sorted(Path(root).rglob("*.jpg"))
    sample = paths[:: max(1, len(paths) // a.sample)][: a.sample]
    q0, sub = shared_quality(sample[:50])
    target, tiles = first_generation_psnr(q0, sub)
    control = second_generation_psnr(sample, q0, sub)
    candidates = {q: second_generation_psnr(sample, q, sub) for q in range(q0 - 5, 4, -5)}
    q1 = min(candidates, key=lambda q: abs(candidates[q] - target))
    lines = [f"shared CIFAR-10 JPEGs: Pillow quality {q0}, chroma subsampling {sub} (0 4:4:4, 1 4:2:2, 2 4:2:0), "
             f"{len(paths)} files",
             f"one generation at quality {q0} on {tiles} never-compressed 32 px tiles: PSNR {target:.2f} dB",
             f"shared images encoded again at quality {q0}: PSNR {control:.2f} dB against the shared files",
             "shared images encoded again at lower qualities: " + ", ".join(f"q{q} {v:.2f} dB"
                                                                     for q, v in candidates.items()),
             f"second generation as strong as the first: quality {q1} ({candidates[q1]:.2f} dB)"]
    print("\n".join(lines), flush=True)
    sets = {"shared": Path(root),
            f"second-q{q1}": write_variant(paths, Path(root), out / f"jpeg-q{q1}" / "train", q1, sub)}
    if a.write_only:
        lines.append(f"second generation written: {sets[f'second-q{q1}']} ({len(paths)} files)")
        print(lines[-1])
        _record(a, lines)
        return
    scores = {name: {"supervised": [], "random": []} for name in sets}
    for seed in a.seeds:
        for name, data in sets.items():
            run = out / f"jpeg-{name}-supervised-seed{seed}"
            if "linear" not in read_results(run):
                reduced_cifar10_fit("supervised", {}, data, run, seed, a.epochs)
            res = read_results(run)
            scores[name]["supervised"].append(res["linear"]["accuracy"])
            scores[name]["random"].append(res["linear_random"]["accuracy"])
            print(f"{name} seed {seed}: supervised {scores[name]['supervised'][-1]:.2f}, "
                  f"random weights {scores[name]['random'][-1]:.2f}", flush=True)
    mean = lambda v: statistics.mean(v)  # noqa: E731
    lines.append(f"linear evaluation, Conv-4, 10k train / 10k val, supervised {a.epochs} epochs, seeds "
                 f"{' '.join(map(str, a.seeds))} (mean; per seed in brackets):")
    for name in sets:
        row = "; ".join(f"{kind} {mean(v):.2f} [{', '.join(f'{x:.2f}' for x in v)}]"
                        for kind, v in scores[name].items())
        diff = "" if name == "shared" else "; against shared: " + ", ".join(
            f"{kind} {mean(v) - mean(scores['shared'][kind]):+.2f}" for kind, v in scores[name].items())
        lines.append(f"  {name}: {row}{diff}")
    print("\n".join(lines[-len(sets) - 1:]))
    _record(a, lines)


def _record(args, lines) -> None:
    if args.record:
        record("JPEG encoding of the shared CIFAR-10 images: effect of one more generation (jpeg_effect.py)",
               "python examples/benchmarks/jpeg_effect.py " + " ".join(sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
