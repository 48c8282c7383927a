"""The streaming data path, the sources it reads (flat folders, file lists, tar shards) and multi-crop view groups."""
from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import ssltk
from ssltk.data.datasets import ImageFolder
from ssltk.data.recipes import ContrastiveAugment
from ssltk.data.sources import FileList, WebDataset
from ssltk.data.stream import ResizedCropGeometry, StreamGroup, StreamImages, epoch_batches
from ssltk.errors import SsltkError
from ssltk.interfaces import Objective, ObjectiveOutput, ViewGroup

from helpers import kill_after_first_checkpoint, ssltk as run_ssltk

QUIET = {"progress": False, "device": "cpu", "log_every": 0}


def test_a_flat_or_nested_folder_is_unlabelled_and_evaluation_says_so(flat_jpegs):
    (flat_jpegs / "deeper" / "still").mkdir(parents=True)
    (flat_jpegs / "img0000.jpg").rename(flat_jpegs / "deeper" / "still" / "moved.jpg")
    data = ImageFolder(str(flat_jpegs), size=16, stream=False)
    assert len(data.train) == 96 and (data.train.labels == -1).all() and not data.labelled
    with pytest.raises(SsltkError, match="no labels"):
        data.eval_pair()
    # a class tree keeps its labels, with any nesting below the class folder
    tree = flat_jpegs.parent / "tree"
    for c in ("a", "b"):
        (tree / c / "x").mkdir(parents=True)
    for i, p in enumerate(sorted(flat_jpegs.glob("*.jpg"))[:10]):
        p.rename(tree / ("a" if i < 4 else "b") / "x" / p.name)
    labelled = ImageFolder(str(tree), size=16, stream=True)
    assert labelled.train.labels.tolist() == [0] * 4 + [1] * 6 and labelled.labelled


def test_file_lists_in_text_and_csv(tmp_path, flat_jpegs):
    names = sorted(p.name for p in flat_jpegs.glob("*.jpg"))[:6]
    (tmp_path / "list.txt").write_text("# comment\n" + "".join(f"flat/{n} {'cat' if i % 2 else 'dog'}\n"
                                                            for i, n in enumerate(names)))
    data = FileList(str(tmp_path / "list.txt"), size=16, stream=True)
    assert data.train.labels.tolist() == [1, 0, 1, 0, 1, 0] and data.train.classes == ["cat", "dog"]
    (tmp_path / "list.csv").write_text("path,label\n" + "".join(f"flat/{n},{i % 3}\n" for i, n in enumerate(names)))
    csv = FileList(str(tmp_path / "list.csv"), size=16, stream=False)
    assert csv.train.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert torch.equal(csv.train.images, data.train.images.materialize())
    (tmp_path / "bad.txt").write_text("flat/nope.jpg\n")
    with pytest.raises(SsltkError, match="missing file.*nope.jpg"):
        FileList(str(tmp_path / "bad.txt")).train


def test_webdataset_shards_by_brace_pattern(jpeg_shards):
    data = WebDataset(jpeg_shards, size=16, stream=True)
    assert len(data.train) == 96 and data.train.labels[:8].tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    memory = WebDataset(jpeg_shards, size=16, stream=False)
    assert torch.equal(memory.train.images, data.train.images.materialize())
    with pytest.raises(SsltkError, match="pipe: URL would run a shell command"):
        WebDataset("pipe:curl http://example.com/a.tar").train
    with pytest.raises(SsltkError, match="not found"):
        WebDataset(jpeg_shards.replace("0002", "0009")).train


def test_views_depend_on_the_seed_not_on_the_workers(flat_jpegs):
    images = StreamImages(ImageFolder(str(flat_jpegs), size=16, stream=True).train.images.records, 16)
    groups = [StreamGroup(2, ResizedCropGeometry(16, (0.08, 1.0), (3 / 4, 4 / 3)), 16), StreamGroup(1, None, 16)]
    order = [torch.tensor([5, 1, 7]), torch.tensor([2, 9, 0])]
    runs = []
    for workers in (0, 2):
        images.workers = workers
        runs.append(list(epoch_batches(images, order, groups, seed=11)))
    for (i0, v0), (i1, v1) in zip(*runs):
        assert torch.equal(i0, i1) and all(torch.equal(a, b) for a, b in zip(v0, v1))
    idx, (crops, whole) = runs[0][0]
    assert crops.shape == (6, 3, 16, 16) and whole.shape == (3, 3, 16, 16)
    assert torch.equal(whole[1], images[1])  # the image resized as the in-memory path holds it
    other = list(epoch_batches(images, order, groups, seed=12))
    assert not torch.equal(other[0][1][0], crops)


def _fit(tmp_path, name, stream, augment=None, objective="simclr", **data):
    res = ssltk.fit(objective, data="imagefolder", data_args=dict(stream=stream, size=16, **data),
                    trainer=dict(QUIET, epochs=2, batch_size=16, run_dir=str(tmp_path / name)),
                    evaluate={"linear": False}, augment=augment)
    return load_file(str(res.run_dir / "backbone.safetensors"))


def test_streaming_and_in_memory_training_agree(tmp_path, flat_jpegs):
    # a recipe that runs wholly on the device sees the very images of the in-memory path: same weights
    a = _fit(tmp_path, "memory", False, "crop-flip", root=str(flat_jpegs))
    b = _fit(tmp_path, "stream", True, "crop-flip", root=str(flat_jpegs))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # with the crop taken in the workers the views differ, but every step batches the same images
    seen = {}

    class Spy(Objective):
        def __init__(self, in_dim: int):
            super().__init__(in_dim)
            self.w = torch.nn.Linear(in_dim, 1)

        def forward(self, batch, backbone):
            seen.setdefault(self.tag, []).append(batch.index.clone())
            return ObjectiveOutput(self.w(backbone(batch.views)).mean())

    ssltk.register_objective("in-test-spy")(Spy)
    try:
        for tag, stream in (("memory", False), ("stream", True)):
            Spy.tag = tag
            ssltk.fit("in-test-spy", data="imagefolder", data_args=dict(root=str(flat_jpegs), stream=stream, size=16),
                      trainer=dict(QUIET, epochs=2, batch_size=16, run_dir=str(tmp_path / f"spy-{tag}")),
                      evaluate={"linear": False})
    finally:
        ssltk.OBJECTIVES.unregister("in-test-spy")
    assert len(seen["memory"]) == 12 and all(torch.equal(x, y) for x, y in zip(seen["memory"], seen["stream"]))


class TwoSizes(Objective):
    """A multi-crop test objective: 2 global views at 32 px and 4 local views at 16 px, each local view pulled
    towards the mean of its image's global views (the shape of SwAV's and DINO's multi-crop losses)."""

    def __init__(self, in_dim: int):
        super().__init__(in_dim)
        self.proj = torch.nn.Linear(in_dim, 16)

    def view_groups(self, spec):
        return [ViewGroup(2, ContrastiveAugment(size=32).configure(spec)),
                ViewGroup(4, ContrastiveAugment(size=16, scale=(0.05, 0.4)).configure(spec))]

    def forward(self, batch, backbone):
        assert batch.num_groups == 2 and batch.group_views == [2, 4]
        b = batch.batch_size
        glob = F.normalize(self.proj(backbone(batch.group(0))).view(2, b, -1).mean(0), dim=-1)
        loc = F.normalize(self.proj(backbone(batch.group(1))).view(4, b, -1), dim=-1)
        shapes = (tuple(batch.group(0).shape[-2:]), tuple(batch.group(1).shape[-2:]))
        TwoSizes.shapes = shapes
        return ObjectiveOutput((2 - 2 * (loc * glob).sum(-1)).mean())


@pytest.fixture
def two_sizes():
    ssltk.register_objective("in-test-two-sizes")(TwoSizes)
    yield "in-test-two-sizes"
    ssltk.OBJECTIVES.unregister("in-test-two-sizes")


@pytest.mark.parametrize("stream", [False, True])
def test_a_multi_crop_objective_trains_with_two_view_sizes(tmp_path, flat_jpegs, stream, two_sizes):
    res = ssltk.fit(two_sizes, data="imagefolder", data_args=dict(root=str(flat_jpegs), stream=stream, size=32),
                    trainer=dict(QUIET, epochs=1, batch_size=16, run_dir=str(tmp_path / "mc")),
                    evaluate={"linear": False})
    assert TwoSizes.shapes == ((32, 32), (16, 16))
    assert res.backbone is not None
    with pytest.raises(SsltkError, match="several view groups"):
        ssltk.fit(two_sizes, data="imagefolder", data_args=dict(root=str(flat_jpegs), stream=stream, size=32),
                  trainer=dict(QUIET, epochs=1, batch_size=16, run_dir=str(tmp_path / "mc2")),
                  evaluate={"linear": False}, augment="crop-flip")


def test_a_corrupt_file_is_named_or_skipped_when_asked(tmp_path, flat_jpegs):
    (flat_jpegs / "img0003.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(SsltkError, match="img0003.jpg"):
        _fit(tmp_path, "bad", True, root=str(flat_jpegs), stats="imagenet")
    weights = _fit(tmp_path, "skipped", True, root=str(flat_jpegs), stats="imagenet", skip_corrupt=True)
    assert weights


@pytest.mark.parametrize("source", ["flat", "shards"])
def test_streamed_runs_resume_exactly_after_sigkill(tmp_path, flat_jpegs, jpeg_shards, source):
    data = (["--data", "imagefolder", "--data.root", str(flat_jpegs)] if source == "flat"
            else ["--data", "webdataset", "--data.shards", jpeg_shards])
    fit = ["fit", "--objective", "simclr", *data, "--data.stream", "true", "--data.size", "32",
           "--trainer.epochs", "3", "--trainer.batch_size", "16", "--trainer.device", "cpu", "--trainer.progress",
           "false", "--evaluate.linear", "false"]
    full = run_ssltk(*fit, "--trainer.run_dir", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    killed = tmp_path / "killed"
    if not kill_after_first_checkpoint([sys.executable, "-m", "ssltk", *fit, "--trainer.run_dir", str(killed)],
                                       killed, linger=0.2):
        pytest.skip("the run finished before it could be killed")
    resumed = run_ssltk("fit", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(str(tmp_path / "full" / "backbone.safetensors")), load_file(str(killed / "backbone.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_jpeg_size_reads_the_frame_header_of_every_jpeg_kind(tmp_path):
    import io

    from PIL import Image

    from ssltk.data.headers import jpeg_size

    img = Image.new("RGB", (37, 21), (10, 200, 30))
    for options in ({}, {"progressive": True}, {"exif": Image.Exif(), "comment": b"x" * 300}, {"quality": 5}):
        buf = io.BytesIO()
        img.save(buf, "JPEG", **options)
        assert jpeg_size(buf.getvalue()) == (21, 37), options
    gray = io.BytesIO()
    img.convert("L").save(gray, "JPEG")
    assert jpeg_size(gray.getvalue()) == (21, 37)
    png = io.BytesIO()
    img.save(png, "PNG")
    assert jpeg_size(png.getvalue()) is None
    assert jpeg_size(b"\xff\xd8 not a jpeg") is None and jpeg_size(b"") is None


def test_device_decoding_makes_the_views_of_the_workers(tmp_path, flat_jpegs):
    """On the CPU the device mode decodes with the workers' libjpeg-turbo and resize: the same views, bit for bit,
    for JPEGs (decoded by the main process), a PNG and a JPEG without a frame header (the workers decode those in
    both modes; the header-less file is skipped by the same rule)."""
    from PIL import Image

    Image.new("RGB", (30, 40), (1, 2, 3)).save(flat_jpegs / "img0004.png")
    (flat_jpegs / "img0004.jpg").unlink()
    raw = (flat_jpegs / "img0006.jpg").read_bytes()
    (flat_jpegs / "img0006.jpg").write_bytes(raw[:2] + raw[raw.index(b"\xff\xc4"):])  # no frame header
    records = ImageFolder(str(flat_jpegs), size=16, stream=True, stats="imagenet").train.images.records
    images = StreamImages(records, 16, workers=0, skip_corrupt=True)
    groups = [StreamGroup(2, ResizedCropGeometry(16, (0.08, 1.0), (3 / 4, 4 / 3)), 16), StreamGroup(1, None, 16),
              StreamGroup(3, ResizedCropGeometry(8, (0.05, 0.4), (3 / 4, 4 / 3)), 16)]
    order = [torch.tensor([5, 1, 4, 6]), torch.tensor([2, 9, 0, 6])]
    made = {}
    for mode, workers, on in (("workers", 2, None), ("device", 0, torch.device("cpu")), ("device", 2, "cpu")):
        images.workers = workers
        made[mode, workers] = list(epoch_batches(images, order, groups, seed=11, decode_on=on))
    for other in (made["device", 0], made["device", 2]):
        for (i0, v0), (i1, v1) in zip(made["workers", 2], other):
            assert torch.equal(i0, i1) and [v.shape for v in v0] == [v.shape for v in v1]
            assert all(torch.equal(a, b) for a, b in zip(v0, v1))
    # a JPEG whose header reads but whose data does not stops with its name, as in the workers mode
    (flat_jpegs / "img0007.jpg").write_bytes(raw[: raw.index(b"\xff\xda") + 14] + b"\x00garbage")
    images.skip_corrupt = False
    with pytest.raises(SsltkError, match="img0007.jpg"):
        list(epoch_batches(images, [torch.tensor([0, 7])], groups, seed=1, decode_on=torch.device("cpu")))


def test_the_device_resize_is_the_uint8_resize_within_one_level():
    from ssltk.data.stream import resize_u8, resize_u8_float

    img = torch.randint(0, 256, (3, 53, 41), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    exact, floated = resize_u8(img, 24), resize_u8_float(img, 24)
    assert floated.dtype == torch.uint8 and (exact.int() - floated.int()).abs().max() <= 1


def test_device_decoding_trains_as_the_workers_do_and_is_refused_for_in_memory_sets(tmp_path, flat_jpegs):
    weights = {}
    for mode in ("workers", "device"):
        res = ssltk.fit("simclr", data="imagefolder", data_args=dict(root=str(flat_jpegs), stream=True, size=16),
                        trainer=dict(QUIET, epochs=1, batch_size=32, stream_decode=mode,
                                     run_dir=str(tmp_path / mode)), evaluate={"linear": False})
        weights[mode] = load_file(str(res.run_dir / "backbone.safetensors"))
    assert all(torch.equal(weights["workers"][k], weights["device"][k]) for k in weights["workers"])
    with pytest.raises(SsltkError, match="held in memory"):
        ssltk.fit("simclr", data="imagefolder", data_args=dict(root=str(flat_jpegs), stream=False, size=16),
                  trainer=dict(QUIET, epochs=1, batch_size=32, stream_decode="device",
                               run_dir=str(tmp_path / "memory")), evaluate={"linear": False})
    assert not (tmp_path / "memory").exists()
    with pytest.raises(SsltkError, match="stream_decode must be one of"):
        ssltk.fit("simclr", trainer=dict(QUIET, stream_decode="gpu", run_dir=str(tmp_path / "bad")))
