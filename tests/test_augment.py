import pytest
import torch
import torchvision.transforms.v2.functional as TF

from ssltk.data import recipes
from ssltk.data.augment import (EvalTransform, chunk_slices, color_jitter, crop_boxes, grayscale, jitter_orders,
                                output_buffer, resized_crop)
from ssltk.data.recipes import ContrastiveAugment

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def images(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def test_views_are_view_major_and_per_sample_random():
    x = images()
    aug = ContrastiveAugment(32, MEAN, STD)
    v = aug(x, 4, torch.Generator().manual_seed(1))
    assert v.shape == (24, 3, 32, 32) and v.dtype == torch.float32
    # view k of image n lives at k*B + n; two views of one image differ, views of different images differ
    assert not torch.allclose(v[0], v[6])
    assert not torch.allclose(v[0], v[1])


def test_same_generator_seed_same_views():
    x = images()
    aug = ContrastiveAugment(32, MEAN, STD)
    a = aug(x, 3, torch.Generator().manual_seed(5))
    b = aug(x, 3, torch.Generator().manual_seed(5))
    c = aug(x, 3, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_identity_crop_and_flip_are_exact():
    x = images().float() / 255
    full = torch.tensor([[0.0, 0.0, 32.0, 32.0]]).repeat(6, 1)
    assert torch.allclose(resized_crop(x, full, 32), x, atol=1e-5)
    flipped = resized_crop(x, full, 32, torch.ones(6, dtype=torch.bool))
    assert torch.allclose(flipped, x.flip(-1), atol=1e-5)


def test_crop_matches_integer_crop_then_resize():
    x = images(2, 32).float() / 255
    box = torch.tensor([[4.0, 8.0, 16.0, 16.0], [0.0, 0.0, 16.0, 32.0]])
    out = resized_crop(x, box, 16)
    assert torch.allclose(out[0], x[0, :, 4:20, 8:24], atol=1e-5)  # a same-size crop is a pure copy


def test_crop_boxes_respect_scale_and_ratio():
    boxes = crop_boxes(4000, 32, 32, (0.08, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0), "cpu")
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 32).all() and (left + w <= 32).all()
    area = h * w / 1024
    assert area.min() >= 0.05 and area.max() <= 1.0
    assert area.std() > 0.1  # boxes vary per sample


@pytest.mark.parametrize("op,factor,ref", [
    (0, 1.6, lambda x: TF.adjust_brightness(x, 1.6)),
    (1, 0.4, lambda x: TF.adjust_contrast(x, 0.4)),
    (2, 0.3, lambda x: TF.adjust_saturation(x, 0.3)),
    (3, 0.15, lambda x: TF.adjust_hue(x, 0.15)),
])
def test_color_jitter_matches_torchvision(op, factor, ref):
    x = images(4).float() / 255
    ones, zeros = torch.ones(4), torch.zeros(4)
    args = [ones, ones, ones, zeros]
    args[op] = torch.full((4,), factor)
    assert torch.allclose(color_jitter(x.clone(), *args, [op]), ref(x), atol=1e-5)


def test_per_view_jitter_orders_match_torchvision_view_by_view():
    g = torch.Generator().manual_seed(0)
    n = 24
    x = images(n, 8).float() / 255
    factors = [torch.rand(n, generator=g) * 1.6 + 0.2 for _ in range(3)] + [torch.rand(n, generator=g) * 0.4 - 0.2]
    order = jitter_orders(n, g, "cpu")
    fns = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for channels, applied in ((3, (0, 1, 2, 3)), (1, (0, 1))):  # a one-channel image skips saturation and hue
        v = x[:, :channels]
        expected = []
        for i in range(n):
            e = v[i : i + 1]
            for op in order[i].tolist():
                e = fns[op](e, factors[op][i].item()) if op in applied else e
            expected.append(e)
        out = color_jitter(v, *factors, order)
        assert torch.allclose(out, torch.cat(expected), atol=1e-5)
        assert torch.equal(v, x[:, :channels])  # the input is left as it was


def test_contrastive_recipe_draws_a_jitter_order_per_view(monkeypatch):
    seen = []

    def spy(x, *args, **kwargs):
        seen.append(args[4])
        return color_jitter(x, *args, **kwargs)

    monkeypatch.setattr(recipes, "color_jitter", spy)
    ContrastiveAugment(32, MEAN, STD, jitter_p=1.0)(images(16), 2, torch.Generator().manual_seed(0))
    order = torch.cat(seen)
    # torchvision permutes the four operations anew for every image; a single order for the batch would give one row
    assert order.shape == (32, 4) and len({tuple(r) for r in order.tolist()}) > 8


def test_grayscale_matches_torchvision():
    x = images(3).float() / 255
    assert torch.allclose(grayscale(x), TF.rgb_to_grayscale(x), atol=1e-5)


def test_probabilities_zero_and_one():
    x = images(64)
    gray = ContrastiveAugment(32, (0, 0, 0), (1, 1, 1), scale=(1, 1), ratio=(1, 1), flip_p=0, jitter_p=0, gray_p=1)
    v = gray(x, 1, torch.Generator().manual_seed(0))
    assert torch.allclose(v[:, 0], v[:, 1]) and torch.allclose(v[:, 1], v[:, 2])
    plain = ContrastiveAugment(32, (0, 0, 0), (1, 1, 1), scale=(1, 1), ratio=(1, 1), flip_p=0, jitter_p=0, gray_p=0)
    assert torch.allclose(plain(x, 1), x.float() / 255, atol=1e-5)


def test_eval_transform_normalises():
    x = torch.full((1, 3, 8, 8), 255, dtype=torch.uint8)
    assert torch.allclose(EvalTransform(MEAN, STD)(x), torch.full((1, 3, 8, 8), 2.0))


@pytest.fixture
def chunks_of_five(monkeypatch):
    """The recipes' CPU chunking at five views a chunk, so small batches span several chunks."""
    monkeypatch.setattr(recipes, "chunk_slices", lambda n, item, dev: chunk_slices(n, item, dev, chunk_bytes=5 * item))


def test_chunked_colour_equals_one_pass(chunks_of_five, monkeypatch):
    x = images(13)
    aug = ContrastiveAugment(32, MEAN, STD)
    chunked = [aug(x, 2, torch.Generator().manual_seed(3)), aug.photometric(x, torch.Generator().manual_seed(4))]
    monkeypatch.setattr(recipes, "chunk_slices", lambda n, item, dev: [slice(0, n)])
    whole = [aug(x, 2, torch.Generator().manual_seed(3)), aug.photometric(x, torch.Generator().manual_seed(4))]
    assert all(torch.equal(a, b) for a, b in zip(chunked, whole))


def test_chunks_are_even_and_cover_the_batch():
    parts = chunk_slices(23, 10, "cpu", chunk_bytes=50)
    sizes = [p.stop - p.start for p in parts]
    assert parts[0].start == 0 and parts[-1].stop == 23 and max(sizes) - min(sizes) <= 1 and min(sizes) > 1


def test_an_output_buffer_is_handed_out_again_only_when_nothing_holds_it():
    shape = (3, 5, 7)
    held = output_buffer(shape, "cpu")
    assert output_buffer(shape, "cpu") is not held  # the tensor itself
    ptr = held.data_ptr()
    view = held[1]
    del held
    assert output_buffer(shape, "cpu").data_ptr() != ptr  # a view of it
    del view
    assert output_buffer(shape, "cpu").data_ptr() == ptr  # nothing: reused
    w = torch.ones(7, requires_grad=True)
    saved = output_buffer((2, 7), "cpu").fill_(1.0)
    loss, ptr = (saved * w).sum(), saved.data_ptr()
    del saved
    assert output_buffer((2, 7), "cpu").data_ptr() != ptr  # autograd's saved tensor
    del loss
    assert output_buffer((2, 7), "cpu").data_ptr() == ptr


@pytest.mark.slow
def test_compiled_photometric_matches_eager():
    x = images(10, 64)
    eager = ContrastiveAugment(64, MEAN, STD)
    compiled = ContrastiveAugment(64, MEAN, STD)
    compiled.compiled = True
    for seed in range(3):
        a = eager.photometric(x, torch.Generator().manual_seed(seed))
        b = compiled.photometric(x, torch.Generator().manual_seed(seed))
        assert torch.allclose(a, b, atol=1e-4)


# blur and solarisation (the BYOL family's recipe) ----------------------------------------------------------------

def test_blur_keeps_a_uniform_image_uniform_and_matches_torchvision():
    from ssltk.data.augment import gaussian_blur

    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, torch.tensor([0.5, 2.0]), 5), flat, atol=1e-6)
    x = torch.rand(2, 3, 16, 16)
    sigma = torch.tensor([0.7, 1.6])
    mine = gaussian_blur(x, sigma, 5)
    for i in range(2):  # torchvision's GaussianBlur with the same kernel and sigma, reflect padding
        ref = TF.gaussian_blur(x[i:i + 1], [5, 5], [float(sigma[i])] * 2)
        assert torch.allclose(mine[i:i + 1], ref, atol=1e-5)


def test_solarize_inverts_at_and_above_its_threshold_only_where_drawn():
    from ssltk.data.augment import solarize

    x = torch.tensor([0.1, 127 / 255, 128 / 255, 0.9]).view(1, 1, 1, 4).repeat(2, 1, 1, 1)
    out = solarize(x, torch.tensor([True, False]))
    assert torch.allclose(out[0].flatten(), torch.tensor([0.1, 127 / 255, 127 / 255, 0.1]))
    assert torch.equal(out[1], x[1])


def test_blur_and_solarize_draws_repeat_with_the_seed_and_change_nothing_when_off():
    x = images()
    on = ContrastiveAugment(32, MEAN, STD, blur_p=0.5, solarize_p=0.5)
    a, b = on(x, 2, torch.Generator().manual_seed(3)), on(x, 2, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    plain = ContrastiveAugment(32, MEAN, STD)(x, 2, torch.Generator().manual_seed(3))
    zero = ContrastiveAugment(32, MEAN, STD, blur_p=0.0, solarize_p=0.0)(x, 2, torch.Generator().manual_seed(3))
    assert torch.equal(plain, zero) and not torch.equal(plain, a)
    always = ContrastiveAugment(32, MEAN, STD, jitter_p=0.0, gray_p=0.0, solarize_p=1.0)
    never = ContrastiveAugment(32, MEAN, STD, jitter_p=0.0, gray_p=0.0)
    s, n = always(x, 1, torch.Generator().manual_seed(4)), never(x, 1, torch.Generator().manual_seed(4))
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    raw_s, raw_n = s * std + mean, n * std + mean  # same crops: solarised where the plain view is >= 128/255
    assert torch.allclose(raw_s, torch.where(raw_n >= 128 / 255, 1 - raw_n, raw_n), atol=1e-5)


def test_crop_groups_drop_blur_at_32px_and_keep_it_at_96px():
    from ssltk.data.recipes import crop_groups
    from ssltk.interfaces import DataSpec

    small = crop_groups(DataSpec(32, 3, MEAN, STD, 10), num_local=4)
    assert [g.num_views for g in small] == [1, 1, 4] and [g.augmentation.size for g in small] == [32, 32, 16]
    assert all(g.augmentation.blur_p == 0 for g in small)
    assert [g.augmentation.solarize_p for g in small] == [0.0, 0.2, 0.0]
    big = crop_groups(DataSpec(224, 3, MEAN, STD, 10), num_local=2)
    assert [g.augmentation.blur_p for g in big] == [1.0, 0.1, 0.5] and big[2].augmentation.size == 96
