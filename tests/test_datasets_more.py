"""The papers' other datasets, each loaded from a tiny fake copy of its documented layout."""
import pickle

import numpy as np
import pytest
import torch

import ssltk
from ssltk.errors import SsltkError


def test_cifar100_fine_and_coarse(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 50), ("test", 20)):
        fine = rng.integers(0, 100, n)
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": list(fine),
                         "coarse_labels": list(fine // 5)}, fh)
    fine = ssltk.DATASETS.create("cifar100", root=str(tmp_path))
    coarse = ssltk.DATASETS.create("cifar100-20", root=str(tmp_path))
    assert fine.train.images.shape == (50, 3, 32, 32) and len(fine.test) == 20
    assert torch.equal(coarse.train.labels, fine.train.labels // 5)
    assert coarse.train.labels.max() < 20 and fine.mean == (0.507, 0.487, 0.441)


def test_svhn_mat(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    for name, n in (("train_32x32.mat", 12), ("test_32x32.mat", 6)):
        savemat(tmp_path / name, {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                  "y": np.arange(1, n + 1).reshape(-1, 1) % 10 + 1})
    d = ssltk.DATASETS.create("svhn", root=str(tmp_path))
    assert d.train.images.shape == (12, 3, 32, 32) and len(d.test) == 6
    assert d.train.labels.min() >= 0 and d.train.labels.max() <= 9 and (d.train.labels == 0).any()


def test_stl10_binary_splits(tmp_path):
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    img = np.zeros((3, 96, 96), dtype=np.uint8)
    img[0, 10, 20] = 255  # channel 0, row 10, column 20 (stored column-major in the file)
    train = np.stack([img] * 4)
    train.transpose(0, 1, 3, 2).tofile(folder / "train_X.bin")
    np.array([1, 2, 3, 10], dtype=np.uint8).tofile(folder / "train_y.bin")
    rng.integers(0, 256, (3, 3, 96, 96), dtype=np.uint8).tofile(folder / "test_X.bin")
    np.array([1, 5, 10], dtype=np.uint8).tofile(folder / "test_y.bin")
    rng.integers(0, 256, (7, 3, 96, 96), dtype=np.uint8).tofile(folder / "unlabeled_X.bin")
    d = ssltk.DATASETS.create("stl10", root=str(tmp_path))
    assert d.train.images.shape == (7, 3, 96, 96) and (d.train.labels == -1).all()
    tr, te, split = d.eval_pair()
    assert split == "test" and len(tr) == 4 and tr.labels.tolist() == [0, 1, 2, 9] and te.labels.max() == 9
    assert tr.images[0, 0, 10, 20] == 255 and tr.images[0, 0, 20, 10] == 0
    both = ssltk.DATASETS.create("stl10", root=str(tmp_path), split="train+unlabeled")
    assert len(both.train) == 11 and d.num_classes == 10


def test_tiny_imagenet_layout(tmp_path):
    from PIL import Image

    base = tmp_path / "tiny-imagenet-200"
    wnids = ["n01", "n02", "n03"]
    (base).mkdir()
    (base / "wnids.txt").write_text("\n".join(wnids))
    for w in wnids:
        (base / "train" / w / "images").mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (64, 64), (10 * i, 0, 0)).save(base / "train" / w / "images" / f"{w}_{i}.JPEG")
    (base / "val" / "images").mkdir(parents=True)
    rows = []
    for i, w in enumerate(["n03", "n01"]):
        Image.new("RGB", (64, 64)).save(base / "val" / "images" / f"val_{i}.JPEG")
        rows.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
    (base / "val" / "val_annotations.txt").write_text("\n".join(rows))
    d = ssltk.DATASETS.create("tiny-imagenet", root=str(tmp_path), workers=0)
    assert d.train.images.shape == (6, 3, 64, 64) and d.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert d.test.labels.tolist() == [2, 0] and d.mean == (0.5, 0.5, 0.5)
    with pytest.raises(SsltkError, match="tiny-imagenet-200"):
        ssltk.DATASETS.create("tiny-imagenet", root=str(tmp_path / "nope")).train


def test_slimagenet_folder(image_tree, tmp_path):
    import shutil

    shutil.copytree(image_tree, tmp_path / "slim" / "train")
    d = ssltk.DATASETS.create("slimagenet", root=str(tmp_path / "slim"), workers=0)
    assert d.train.images.shape[-1] == 64 and d.std == (0.25, 0.25, 0.25)


@pytest.mark.parametrize("kind,expected", [("light", [10] * 9 + [5]), ("heavy", [10 - c for c in range(10)]),
                                           ("none", [10] * 10)])
def test_cifar10_imbalanced(tmp_path, kind, expected):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    labels = np.repeat(np.arange(10), 10)
    for i in range(1, 6):
        part = labels if i == 1 else np.array([], dtype=np.int64)
        with open(folder / f"data_batch_{i}", "wb") as fh:
            pickle.dump({"data": np.zeros((len(part), 3072), dtype=np.uint8), "labels": list(part)}, fh)
    d = ssltk.DATASETS.create("cifar10-imbalanced", root=str(tmp_path), imbalance=kind)
    counts = torch.bincount(d.train.labels, minlength=10).tolist()
    assert counts == expected  # light: half of class 9 (truck) goes, as paper 004's section 4.5 says


def test_cifar10_reads_an_image_export_with_class_folders(tmp_path):
    from PIL import Image

    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for c, name in enumerate(names):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (32, 32), (c * 20, i * 50, 7)).save(tmp_path / name / f"{i:04d}.png")
    d = ssltk.DATASETS.create("cifar10", root=str(tmp_path), val_size=10)
    assert len(d.train) == 20 and len(d.val) == 10
    assert torch.bincount(torch.cat([d.train.labels, d.val.labels])).tolist() == [3] * 10
    assert d.mean == (0.491, 0.482, 0.447)  # CIFAR-10's statistics, not the export's
    with pytest.raises(ssltk.SsltkError, match="files not found"):  # ten class folders are not CIFAR-100
        ssltk.DATASETS.create("cifar100", root=str(tmp_path)).train
