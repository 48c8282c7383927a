"""Augmentation recipes: equivalence with torchvision for the same parameters, and the same parameter
distributions (crop area and aspect ratio, application probabilities)."""
import math

import pytest
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as TF

import ssltk
from ssltk.data.augment import affine, affine_matrices, crop_boxes, resized_crop
from ssltk.data.recipes import AffineCutoutAugment, ContrastiveAugment, CropFlipAugment
from ssltk_baselines.rotation import RotationAugment  # the recipes of one method each live in its plugin
from ssltk_sela.recipes import SelaAugment
from ssltk.interfaces import DataSpec

SPEC = DataSpec(image_size=32, channels=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), num_classes=10)


def imgs(n=8, size=32, seed=0):
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


@pytest.mark.parametrize("box", [(3, 5, 20, 14), (0, 0, 32, 32), (10, 2, 8, 30), (31, 31, 1, 1)])
@pytest.mark.parametrize("flip", [False, True])
def test_resized_crop_equals_torchvision(box, flip):
    x = imgs(3).float() / 255
    ours = resized_crop(x, torch.tensor([box] * 3, dtype=torch.float32), 32, torch.full((3,), flip))
    ref = TF.resized_crop(x, *box, [32, 32], antialias=False)
    ref = TF.horizontal_flip(ref) if flip else ref
    assert torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("angle,translate,scale,shear", [(12.0, (2, -3), 1.05, 7.0), (-18.0, (0, 3), 0.9, -10.0),
                                                         (0.0, (0, 0), 1.0, 0.0)])
def test_affine_equals_torchvision(angle, translate, scale, shear):
    x = imgs(2, 48).float() / 255
    m = affine_matrices(torch.tensor([angle] * 2), torch.tensor([translate] * 2, dtype=torch.float32),
                        torch.tensor([scale] * 2), torch.tensor([[shear, 0.0]] * 2))
    ref = TF.affine(x, angle=angle, translate=list(translate), scale=scale, shear=[shear, 0.0],
                    interpolation=TF.InterpolationMode.BILINEAR)
    assert torch.allclose(affine(x, m), ref, atol=1e-4)


def test_crop_flip_is_an_exact_padded_crop():
    x = imgs(64)
    v = CropFlipAugment().configure(SPEC)(x, 1, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x.float() / 255, (4, 4, 4, 4))
    for n in range(8):
        found = False
        for top in range(9):
            for left in range(9):
                crop = padded[n, :, top:top + 32, left:left + 32]
                if torch.allclose(v[n], crop, atol=1e-5) or torch.allclose(v[n], crop.flip(-1), atol=1e-5):
                    found = True
        assert found, n


def test_rotation_views_are_quarter_turns():
    x = imgs(5)
    v = RotationAugment(base="none").configure(SPEC)(x, 4)
    for k in range(4):
        ref = TF.rotate(x.float() / 255, 90.0 * k)
        assert torch.allclose(v[k * 5:(k + 1) * 5], ref, atol=1e-6)


def test_crop_box_distribution_matches_torchvision():
    torch.manual_seed(0)
    n = 6000
    ours = crop_boxes(n, 32, 32, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(1), "cpu")
    ref = torch.tensor([T.RandomResizedCrop.get_params(torch.zeros(3, 32, 32), [0.08, 1.0], [3 / 4, 4 / 3])
                        for _ in range(n)], dtype=torch.float32)
    for stat in (lambda b: b[:, 2] * b[:, 3] / 1024, lambda b: torch.log(b[:, 3] / b[:, 2])):
        a, r = stat(ours), stat(ref)
        assert abs(a.mean() - r.mean()) < 4 * r.std() / math.sqrt(n) + 0.005
        assert torch.allclose(torch.quantile(a, torch.tensor([0.1, 0.5, 0.9])),
                              torch.quantile(r, torch.tensor([0.1, 0.5, 0.9])), atol=0.03)
    # crop positions are uniform over the valid range: the mean centre sits in the middle
    centre = ours[:, 1] + ours[:, 3] / 2
    assert abs(centre.mean().item() - 16) < 0.3


def test_application_probabilities():
    n = 4000
    x = torch.zeros(n, 3, 8, 8, dtype=torch.uint8)
    x[:, 0, :, :4] = 255  # red on the left half: flips and grayscale are visible
    g = torch.Generator().manual_seed(0)
    flip_only = ContrastiveAugment(8, (0, 0, 0), (1, 1, 1), scale=(1, 1), ratio=(1, 1), jitter_p=0, gray_p=0)
    v = flip_only(x, 1, g)
    flipped = (v[:, 0, 0, 0] < 0.5).float().mean().item()
    gray_only = ContrastiveAugment(8, (0, 0, 0), (1, 1, 1), scale=(1, 1), ratio=(1, 1), flip_p=0, jitter_p=0)
    v = gray_only(x, 1, g)
    grayed = (v[:, 1, 0, 0] > 0).float().mean().item()
    jitter_only = ContrastiveAugment(8, (0, 0, 0), (1, 1, 1), scale=(1, 1), ratio=(1, 1), flip_p=0, gray_p=0,
                                     jitter=(0.8, 0, 0, 0))
    jittered = (jitter_only(x, 1, g)[:, 0, 0, 0] < 0.999).float().mean().item()
    tol = 4 * math.sqrt(0.25 / n)
    assert abs(flipped - 0.5) < tol and abs(grayed - 0.2) < tol
    # brightness draws below 1 darken the red pixel: half the jittered views, 0.8 * 0.5 = 0.4
    assert abs(jittered - 0.4) < tol


def test_affine_cutout_recipe():
    x = torch.full((2000, 3, 32, 32), 200, dtype=torch.uint8)
    aug = AffineCutoutAugment(affine_p=0.0, cutout=8).configure(SPEC)
    v = aug(x, 1, torch.Generator().manual_seed(0))
    holes = (v == 0).all(1).flatten(1).sum(1)
    assert abs((holes > 0).float().mean().item() - 0.5) < 0.05
    assert holes.max() == 64  # a whole 8 x 8 patch at most, clipped at the borders
    aff = AffineCutoutAugment(affine_p=1.0, cutout_p=0.0).configure(SPEC)(x[:50], 1, torch.Generator().manual_seed(0))
    assert (aff == 0).any() and (aff > 0.7).any()  # zero fill where the map leaves the image


def test_sela_recipe_defaults():
    a = SelaAugment()
    assert a.scale == (0.2, 1.0) and a.jitter == (0.4, 0.4, 0.4, 0.4) and a.jitter_p == 1.0 and a.gray_p == 0.2


def test_every_recipe_makes_view_major_views():
    x = imgs(3)
    for name in ssltk.AUGMENTATIONS.names():
        aug = ssltk.AUGMENTATIONS.create(name).configure(SPEC)
        v = aug(x, 4, torch.Generator().manual_seed(0))
        assert v.shape == (12, 3, 32, 32), name


def test_fit_with_an_overriding_recipe(tmp_path):
    res = ssltk.fit("relational", objective_args={"k": 2}, data_args={"train_size": 64}, augment="sela",
                    augment_args={"scale": [0.5, 1.0]},
                    trainer={"epochs": 1, "batch_size": 32, "run_dir": str(tmp_path), "progress": False},
                    evaluate={"linear": False})
    import yaml

    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert cfg["augment"]["class_path"].endswith("SelaAugment") and cfg["augment"]["init_args"]["scale"] == [0.5, 1.0]
    assert res.run_dir == tmp_path


def test_per_image_pipeline_matches_the_batched_recipe_in_distribution():
    from ssltk.data.recipes import PerImageContrastive

    x = imgs(16)
    torch.manual_seed(0)
    slow = PerImageContrastive().configure(SPEC)(x, 2)
    fast = ContrastiveAugment().configure(SPEC)(x, 2, torch.Generator().manual_seed(0))
    assert slow.shape == fast.shape == (32, 3, 32, 32)
    # same transforms, different draws: the per-pixel statistics agree loosely
    assert abs(slow.mean() - fast.mean()) < 0.1 and abs(slow.std() - fast.std()) < 0.1
