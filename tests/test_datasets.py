"""Built-in datasets: the embedded digits, CIFAR-10 pickles, image folders, splits and clear errors."""
import pytest
import torch

import ssltk
from ssltk.data.base import split_indices
from ssltk.errors import SsltkError


def test_digits_is_real_and_split():
    d = ssltk.DATASETS.create("digits")
    assert d.train.images.shape == (1438, 3, 32, 32) and d.train.images.dtype == torch.uint8
    assert len(d.val) == 359 and d.num_classes == 10
    train, test, split = d.eval_pair()
    assert split == "val" and len(test) == 359
    assert set(d.train.labels.tolist()) == set(range(10))
    assert d.spec().image_size == 32 and len(d.spec().mean) == 3


def test_split_is_fixed_disjoint_and_seeded():
    tr, va = split_indices(100, 0.2, 30, 0)
    tr2, va2 = split_indices(100, 0.2, 30, 0)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    assert len(va) == 20 and len(tr) == 30 and not set(tr.tolist()) & set(va.tolist())
    assert not torch.equal(split_indices(100, 0.2, 30, 1)[1], va)
    with pytest.raises(SsltkError):
        split_indices(10, 0, 20, 0)


def test_cifar10_pickles(cifar_batches):
    d = ssltk.DATASETS.create("cifar10", root=str(cifar_batches))
    assert d.train.images.shape == (100, 3, 32, 32)
    assert d.test.images.shape == (30, 3, 32, 32)
    assert d.mean == (0.491, 0.482, 0.447)
    # the folder itself works as root too, and a validation split replaces the test set for evaluation
    d2 = ssltk.DATASETS.create("cifar10", root=str(cifar_batches / "cifar-10-batches-py"), val_size=20)
    assert len(d2.train) == 80 and d2.eval_pair()[2] == "val"
    assert d2.eval_pair("test")[2] == "test"


def test_cifar10_missing_names_the_layout(tmp_path):
    with pytest.raises(SsltkError, match="cifar-10-batches-py.*data_batch_1"):
        ssltk.DATASETS.create("cifar10", root=str(tmp_path)).train


def test_image_folder(image_tree):
    d = ssltk.DATASETS.create("imagefolder", root=str(image_tree), size=16, val_size=6, workers=0)
    assert d.train.images.shape == (18, 3, 16, 16) and len(d.val) == 6
    assert d.train.classes == ["cat", "dog", "owl"]
    # the channel that was set to 255 for each class survives decoding and resizing
    cat = d.train.images[d.train.labels == 0]
    assert (cat[:, 0] == 255).all()


def test_image_folder_with_train_and_test(image_tree, tmp_path):
    import shutil

    root = tmp_path / "split"
    shutil.copytree(image_tree, root / "train")
    shutil.copytree(image_tree, root / "test")
    d = ssltk.DATASETS.create("imagefolder", root=str(root), size=8, workers=0)
    assert len(d.train) == 24 and len(d.test) == 24 and d.eval_pair()[2] == "test"


def test_corrupt_image_is_reported_by_path(image_tree):
    bad = image_tree / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(SsltkError, match="broken.jpg"):
        ssltk.DATASETS.create("imagefolder", root=str(image_tree), size=8, workers=0).train
    d = ssltk.DATASETS.create("imagefolder", root=str(image_tree), size=8, workers=0, skip_corrupt=True)
    assert len(d.train) == 24


def test_missing_folder(tmp_path):
    with pytest.raises(SsltkError, match="image folder not found"):
        ssltk.DATASETS.create("imagefolder", root=str(tmp_path / "nope")).train


def test_real_cifar10_jpegs_load_through_imagefolder(tmp_path):
    """A few of the real CIFAR-10 training JPEGs of ../shared/datasets, extracted to a temporary folder."""
    import tarfile
    from pathlib import Path

    archive = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-train-jpg.tar.gz"
    if not archive.is_file():
        pytest.skip(f"{archive} is absent")
    wanted = {c: 0 for c in ("airplane", "cat", "truck")}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and len(parts) >= 3 and parts[-2] in wanted and wanted[parts[-2]] < 4:
                wanted[parts[-2]] += 1
                tar.extract(member, tmp_path)
            if all(v == 4 for v in wanted.values()):
                break
    d = ssltk.DATASETS.create("imagefolder", root=str(tmp_path / "train"), workers=0, stats="cifar10")
    assert d.train.images.shape == (12, 3, 32, 32) and d.train.classes == ["airplane", "cat", "truck"]
    assert torch.bincount(d.train.labels).tolist() == [4, 4, 4]
    assert d.train.images.float().std() > 20  # real pictures, not blank files


def test_download_without_network_names_the_layout(tmp_path, monkeypatch):
    import torchvision

    def offline(*args, **kwargs):
        raise RuntimeError("network unreachable")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(SsltkError, match="network unreachable.*cifar-10-batches-py.*data_batch_1"):
        ssltk.DATASETS.create("cifar10", root=str(tmp_path), download=True).train
