"""Augmentation recipes of the papers, each a batched on-device augmentation with per-sample random parameters.

A recipe is called on uint8 images (B, C, H, W) and returns K views (K*B, C, S, S), view-major and normalised.
Recipes are registry entries (``ssltk list augmentations``); an objective picks its default, and ``--augment NAME
--augment.OPTION value`` (or ``augment:`` in a config file) overrides it. Size, mean and std left unset come from the
dataset (:meth:`Augmentation.configure`).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..interfaces import DataSpec, ViewGroup
from .augment import (affine, affine_matrices, blur_kernel_size, chunk_slices, color_jitter, crop_boxes, cutout,
                      flip_u8, gaussian_blur, grayscale, SKIP, jitter_orders, maybe_compiled, normalize, output_buffer,
                      resized_crop, scratch, solarize, to_float, to_float_into, _uniform)


class Augmentation:
    """Base class of recipes: ``configure(spec)`` fills size/mean/std from the data, ``__call__`` makes views.

    ``compiled`` (set by ``--trainer.compile_augment``) runs the recipe's colour operations through
    ``torch.compile``, where the recipe supports it (:func:`ssltk.data.augment.jitter_ops`)."""

    compiled: bool = False

    def __init__(self, size: Optional[int] = None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None):
        self.size = size
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None

    def configure(self, spec: DataSpec) -> "Augmentation":
        self.size = self.size or spec.image_size
        self.mean = self.mean or tuple(spec.mean)
        self.std = self.std or tuple(spec.std)
        return self

    def _check(self) -> None:
        if self.size is None or self.mean is None or self.std is None:
            raise RuntimeError(f"{type(self).__name__} needs size, mean and std: call configure(spec) first")

    def __call__(self, images: Tensor, num_views: int = 1, generator: Optional[torch.Generator] = None) -> Tensor:
        raise NotImplementedError

    # the streaming split (ssltk.data.stream) ------------------------------------------------------------------------
    def geometry(self):
        """The geometric half of this recipe, for streaming workers to apply to the full-resolution image, or None
        (the default) when the whole recipe runs on the device from images resized to the data's size."""
        return None

    def photometric(self, views: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """The rest of the recipe on uint8 views (n, C, S, S) that :meth:`geometry` made; only recipes with a
        geometric half have one."""
        raise NotImplementedError(f"{type(self).__name__} has no geometric split")


class ContrastiveAugment(Augmentation):
    """The relational / SimCLR recipe (paper 002, section 4; 000, A.3): RandomResizedCrop(scale 0.08-1, ratio
    3/4-4/3, bilinear) -> HFlip 0.5 -> ColorJitter(0.8, 0.8, 0.8, 0.2) with p 0.8 -> Grayscale p 0.2 -> normalise.

    Each view of each image has its own crop box, flip, jitter factors, order of the four jitter operations and
    grayscale draw, as torchvision's per-image transforms have: two views of one image seldom share their order.

    ``blur_p`` and ``solarize_p`` (0 here) add the last two steps of the BYOL recipe (Grill et al. 2020, appendix B),
    which DINO, MoCo v3, SwAV, Barlow Twins and VICReg share: Gaussian blur with a per-view sigma drawn from
    ``blur_sigma`` and a kernel of a tenth of the side (:func:`~ssltk.data.augment.blur_kernel_size`), then
    solarisation (invert values at or above 128/255). They run after grayscale, in torchvision's order, and draw
    nothing when their probability is 0, so the recipes without them are unchanged."""

    def __init__(self, size: Optional[int] = None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, scale: Tuple[float, float] = (0.08, 1.0),
                 ratio: Tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.5,
                 jitter: Tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2), jitter_p: float = 0.8,
                 gray_p: float = 0.2, blur_p: float = 0.0, blur_sigma: Tuple[float, float] = (0.1, 2.0),
                 solarize_p: float = 0.0):
        super().__init__(size, mean, std)
        self.scale, self.ratio, self.flip_p = tuple(scale), tuple(ratio), flip_p
        self.jitter, self.jitter_p, self.gray_p = tuple(jitter), jitter_p, gray_p
        for name, p in (("blur_p", blur_p), ("solarize_p", solarize_p)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"--augment.{name} must be a probability in [0, 1], got {p!r}")
        if not 0 < blur_sigma[0] <= blur_sigma[1]:
            raise ValueError(f"--augment.blur_sigma must be 0 < low <= high, got {blur_sigma!r}")
        self.blur_p, self.blur_sigma, self.solarize_p = blur_p, tuple(blur_sigma), solarize_p

    def __call__(self, images: Tensor, num_views: int = 1, generator: Optional[torch.Generator] = None) -> Tensor:
        self._check()
        dev, g = images.device, generator
        x = to_float(images)
        _, c, h, w = x.shape
        x = x.repeat(num_views, 1, 1, 1)
        n = x.shape[0]
        boxes = crop_boxes(n, h, w, self.scale, self.ratio, g, dev)
        flip = torch.rand(n, generator=g, device=dev) < self.flip_p
        return self._colour(resized_crop(x, boxes, self.size, flip), g)

    def geometry(self):
        """RandomResizedCrop, taken in the workers from the full-resolution image (resized with antialiasing, as
        torchvision does on PIL images); flip and colour stay on the device."""
        from .stream import ResizedCropGeometry

        self._check()
        return ResizedCropGeometry(int(self.size), tuple(self.scale), tuple(self.ratio))

    def photometric(self, views: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        self._check()
        flip = torch.rand(views.shape[0], generator=generator, device=views.device) < self.flip_p
        return self._colour(views, generator, flip)

    def _colour(self, x: Tensor, g: Optional[torch.Generator], flip: Optional[Tensor] = None) -> Tensor:
        """Jitter with ``jitter_p``, grayscale with ``gray_p``, normalise: the recipe after the crop. ``x`` is float,
        or uint8 views with their ``flip`` (the streamed half), mirrored and converted a chunk at a time.

        Every draw is made for the whole batch first, then the views are processed in chunks
        (:func:`ssltk.data.augment.chunk_slices`): on the CPU a chunk of a few MiB stays in cache through the five
        operations and its buffers are reused, measured 3x faster than batch-wide passes at 224 px; on a GPU the
        batch is one chunk. Chunking changes no value: every operation is per view."""
        dev, n, c = x.device, x.shape[0], x.shape[1]
        factors = torch.ones(4, n, device=dev)  # the columns of the views not drawn are never read
        order: Optional[Tensor] = None
        if self.jitter_p > 0 and any(self.jitter):
            drawn = torch.rand(n, generator=g, device=dev) < self.jitter_p
            idx = drawn.nonzero().squeeze(1)
            if idx.numel():
                m = idx.numel()
                bj, cj, sj, hj = self.jitter
                for row, v in enumerate((bj, cj, sj)):
                    factors[row, idx] = _uniform(m, max(0.0, 1 - v), 1 + v, g, dev)
                factors[3, idx] = _uniform(m, -hj, hj, g, dev)
                order = jitter_orders(n, g, dev).masked_fill_(~drawn.view(-1, 1), SKIP)
        gmask = None
        if self.gray_p > 0 and c == 3:
            gmask = (torch.rand(n, generator=g, device=dev) < self.gray_p).view(-1, 1, 1, 1)
        blur = self._blur_draws(n, g, dev)
        sol = torch.rand(n, generator=g, device=dev) < self.solarize_p if self.solarize_p > 0 else None
        convert = maybe_compiled(to_float_into, self.compiled)
        finish = maybe_compiled(_gray_normalize_into, self.compiled)
        out = output_buffer(x.shape, dev)
        for part in chunk_slices(n, x[0].numel() * 4, dev):
            shape = (part.stop - part.start, *x.shape[1:])
            v = convert(flip_u8(x[part], flip[part]), scratch(0, shape, dev)) if flip is not None else x[part]
            if order is not None:
                v = color_jitter(v, *factors[:, part], order[part], compiled=self.compiled,
                                 buffers=(scratch(1, shape, dev), scratch(2, shape, dev)))
            gm = None if gmask is None else gmask[part]
            if blur is not None or sol is not None:
                v = self._blur_solarize(v if gm is None else torch.where(gm, grayscale(v).expand(-1, 3, -1, -1), v),
                                        blur, sol, part)
                gm = None
            finish(v, gm, self.mean, self.std, out[part])
        return out

    def _blur_draws(self, n: int, g: Optional[torch.Generator], dev):
        """Which views are blurred and their sigmas, drawn for the whole batch (none when ``blur_p`` is 0)."""
        if self.blur_p <= 0:
            return None
        apply = torch.rand(n, generator=g, device=dev) < self.blur_p
        return apply, _uniform(n, self.blur_sigma[0], self.blur_sigma[1], g, dev)

    def _blur_solarize(self, v: Tensor, blur, sol: Optional[Tensor], part: slice) -> Tensor:
        if blur is not None:
            idx = blur[0][part].nonzero().squeeze(1)
            if idx.numel():
                v = v.clone()
                v[idx] = gaussian_blur(v[idx], blur[1][part][idx], blur_kernel_size(v.shape[-1]))
        return v if sol is None else solarize(v, sol[part])


def _gray_normalize_into(x: Tensor, gmask: Optional[Tensor], mean: Sequence[float], std: Sequence[float],
                         out: Tensor) -> Tensor:
    """Random grayscale (where ``gmask``) and normalisation, written into ``out``: one fused loop when compiled."""
    if gmask is not None:
        x = torch.where(gmask, grayscale(x).expand(-1, 3, -1, -1), x)
    return out.copy_(normalize(x, mean, std))


class CropFlipAugment(Augmentation):
    """The supervised baseline's recipe (paper 000, A.5): RandomCrop(size, padding 4, zero fill) -> HFlip 0.5 ->
    normalise. Integer shifts make the batched crop an exact copy of torchvision's."""

    def __init__(self, size: Optional[int] = None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, padding: int = 4, flip_p: float = 0.5):
        super().__init__(size, mean, std)
        self.padding, self.flip_p = padding, flip_p

    def __call__(self, images: Tensor, num_views: int = 1, generator: Optional[torch.Generator] = None) -> Tensor:
        self._check()
        dev, g, p = images.device, generator, self.padding
        x = torch.nn.functional.pad(to_float(images), (p, p, p, p)).repeat(num_views, 1, 1, 1)
        n, _, hp, wp = x.shape
        s = self.size
        top = torch.randint(0, hp - s + 1, (n,), generator=g, device=dev).float()
        left = torch.randint(0, wp - s + 1, (n,), generator=g, device=dev).float()
        side = torch.full((n,), float(s), device=dev)
        flip = torch.rand(n, generator=g, device=dev) < self.flip_p
        x = resized_crop(x, torch.stack([top, left, side, side], 1), s, flip)
        return normalize(x, self.mean, self.std)


class AffineCutoutAugment(Augmentation):
    """The finetuning recipe of paper 000, appendix A.6 (after Ji et al. 2019): with p 0.5 a random affine map
    (rotation +-18 deg, scale 0.9-1.1, translation up to 0.1 of the side, x-shear +-10 deg, bilinear), then with
    p 0.5 cutout of a ``cutout`` x ``cutout`` patch (on the normalised image, so the patch takes the mean colour),
    and a horizontal flip with ``flip_p``."""

    def __init__(self, size: Optional[int] = None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, affine_p: float = 0.5, degrees: float = 18.0,
                 translate: float = 0.1, scale: Tuple[float, float] = (0.9, 1.1), shear: float = 10.0,
                 cutout_p: float = 0.5, cutout: int = 32, flip_p: float = 0.0):
        super().__init__(size, mean, std)
        self.affine_p, self.degrees, self.translate, self.scale = affine_p, degrees, translate, tuple(scale)
        self.shear, self.cutout_p, self.cutout, self.flip_p = shear, cutout_p, cutout, flip_p

    def sample_matrices(self, n: int, h: int, w: int, g: Optional[torch.Generator], dev) -> Tensor:
        """RandomAffine's parameter draws (torchvision ``get_params``), one set per sample."""
        angle = _uniform(n, -self.degrees, self.degrees, g, dev)
        tx = torch.round(_uniform(n, -self.translate * w, self.translate * w, g, dev))
        ty = torch.round(_uniform(n, -self.translate * h, self.translate * h, g, dev))
        scale = _uniform(n, self.scale[0], self.scale[1], g, dev)
        shear = torch.stack([_uniform(n, -self.shear, self.shear, g, dev), torch.zeros(n, device=dev)], 1)
        return affine_matrices(angle, torch.stack([tx, ty], 1), scale, shear)

    def __call__(self, images: Tensor, num_views: int = 1, generator: Optional[torch.Generator] = None) -> Tensor:
        self._check()
        dev, g = images.device, generator
        x = to_float(images)
        if x.shape[-1] != self.size:
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = x.repeat(num_views, 1, 1, 1)
        n, _, h, w = x.shape
        if self.flip_p > 0:
            flip = (torch.rand(n, generator=g, device=dev) < self.flip_p).view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(-1), x)
        apply = torch.rand(n, generator=g, device=dev) < self.affine_p
        if apply.any():
            x[apply] = affine(x[apply], self.sample_matrices(int(apply.sum()), h, w, g, dev))
        x = normalize(x, self.mean, self.std)
        if self.cutout_p > 0:
            x = cutout(x, self.cutout, torch.rand(n, generator=g, device=dev) < self.cutout_p, g)
        return x


class PerImageContrastive(ContrastiveAugment):
    """The papers' own per-image pipeline (paper 000, appendix D.1), kept as a reference for parity runs: every view
    of every image goes through torchvision's PIL transforms one at a time on the CPU (RandomResizedCrop, HFlip,
    RandomApply(ColorJitter), RandomGrayscale, ToTensor, Normalize). Same options as ``contrastive``; slow by
    design. Draws from torch's global generator, which the trainer seeds every epoch."""

    def geometry(self):
        return None  # the reference pipeline stays whole: streamed images reach it resized to the data's size

    def __call__(self, images: Tensor, num_views: int = 1, generator: Optional[torch.Generator] = None) -> Tensor:
        import torchvision.transforms as T
        from PIL import Image

        self._check()
        tf = T.Compose([
            T.RandomResizedCrop(self.size, scale=self.scale, ratio=self.ratio),
            T.RandomHorizontalFlip(self.flip_p),
            T.RandomApply([T.ColorJitter(*self.jitter)], p=self.jitter_p),
            T.RandomGrayscale(self.gray_p),
            T.ToTensor(),
            T.Normalize(self.mean, self.std),
        ])
        pil = [Image.fromarray(img.permute(1, 2, 0).cpu().numpy()) for img in images]
        views = [tf(p) for _ in range(num_views) for p in pil]
        return torch.stack(views).to(images.device)


def objective_recipe(objective: Any, spec: DataSpec) -> Augmentation:
    """The recipe that makes ``objective``'s views: its own, or the default relational/SimCLR recipe
    (:class:`ContrastiveAugment`, paper 000 A.5) when its :meth:`~ssltk.Objective.augmentation` says None."""
    recipe = objective.augmentation(spec)
    return recipe if recipe is not None else ContrastiveAugment().configure(spec)


#: the side at or below which the crop recipes drop Gaussian blur, as the CIFAR benchmarks of solo-learn and lightly
#: do: a kernel of a tenth of 32 px is 3 px, and blurring what is left of a 32 px crop removes most of the image
SMALL_IMAGE = 64


def crop_groups(spec: DataSpec, *, global_scale: Tuple[float, float] = (0.08, 1.0),
                jitter: Tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1), gray_p: float = 0.2,
                global_blur: Tuple[float, float] = (1.0, 0.1), global_solarize: Tuple[float, float] = (0.0, 0.2),
                num_local: int = 0, local_scale: Tuple[float, float] = (0.05, 0.4), local_size: Optional[int] = None,
                local_blur: float = 0.5) -> list:
    """The view groups of the BYOL family's recipe (Grill et al. 2020, appendix B; shared with small changes by MoCo
    v3, DINO, SwAV, Barlow Twins and VICReg): two global views of the data's size, each its own group because their
    blur and solarisation probabilities differ (``global_blur``, ``global_solarize``), then ``num_local`` small
    views (multi-crop, Caron et al. 2020) of ``local_size`` px (default: 96/224 of the side, at least 16) from
    ``local_scale`` of the image, blurred with ``local_blur``. Crop, flip 0.5, colour jitter ``jitter`` with p 0.8,
    grayscale ``gray_p``, blur, solarisation, normalise, in that order.

    At or below :data:`SMALL_IMAGE` px blur is dropped (probability 0), as in the peers' CIFAR recipes; solarisation
    is kept."""
    size = spec.image_size
    small = size <= SMALL_IMAGE

    def recipe(scale, blur, solar, side=None):
        return ContrastiveAugment(side, scale=scale, jitter=jitter, gray_p=gray_p, blur_p=0.0 if small else blur,
                                  solarize_p=solar).configure(spec)

    groups = [ViewGroup(1, recipe(global_scale, global_blur[0], global_solarize[0])),
              ViewGroup(1, recipe(global_scale, global_blur[1], global_solarize[1]))]
    if num_local > 0:
        side = local_size or min(size, max(16, round(size * 96 / 224)))
        groups.append(ViewGroup(int(num_local), recipe(local_scale, local_blur, 0.0, side)))
    return groups
