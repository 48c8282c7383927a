"""Batched augmentation primitives on the device, with per-sample random parameters (recipes: ``recipes.py``).

The papers' code builds each view with a separate PIL call in DataLoader workers (paper 000, appendix D.1). Here all
K views of a batch are made with a handful of tensor operations: one ``grid_sample`` for every crop and flip, and
masked colour operations for jitter and grayscale. Every sample still gets its own crop box, flip, jitter factors
and grayscale draw, following torchvision's semantics for each transform (the recipe of paper 002, section 4 and
appendix A.3: RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3) -> HFlip 0.5 -> ColorJitter(0.8, 0.8, 0.8, 0.2) p=0.8 ->
Grayscale p=0.2 -> normalise).
"""
from __future__ import annotations

import math
import sys
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

_GRAY = (0.2989, 0.587, 0.114)  # torchvision's luma weights, so jitter matches it


def _uniform(n: int, lo: float, hi: float, g: Optional[torch.Generator], device) -> Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def to_float(images: Tensor) -> Tensor:
    """uint8 (B, C, H, W) -> float in [0, 1]."""
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def flip_u8(views: Tensor, flip: Tensor) -> Tensor:
    """uint8 views (n, C, H, W) mirrored where ``flip`` (n,) is true (a copy).

    The mirror is taken on the uint8 views (a quarter of the bytes of float ones). On the CPU a view at a time: the
    chunks are a few views, and advanced indexing of uint8 rows measured 11x slower than this loop; compiled, a
    select between each view and its mirror does not vectorise. On a GPU one select, without a host sync."""
    if views.device.type != "cpu":
        return torch.where(flip.view(-1, 1, 1, 1), views.flip(-1), views)
    out = views.clone()
    for i in flip.nonzero().squeeze(1).tolist():
        out[i] = views[i].flip(-1)
    return out


_SCRATCH: dict = {}


def scratch(slot: int, shape: Sequence[int], device) -> Tensor:
    """A float32 buffer of ``shape`` for intermediate results: on the CPU one per ``slot``, kept and grown as needed,
    so that a chain of operations over many chunks maps no new memory (a fresh buffer of a few MiB costs a page
    fault per 4 KiB, measured 30,000 faults and 40% of a streamed batch's photometric half at 224 px); elsewhere a
    new tensor (a GPU's caching allocator already reuses memory). Not for use from two threads at once."""
    device = torch.device(device)
    numel = math.prod(shape)
    if device.type != "cpu":
        return torch.empty(tuple(shape), device=device)
    buf = _SCRATCH.get(slot)
    if buf is None or buf.numel() < numel:
        buf = _SCRATCH[slot] = torch.empty(numel)
    return buf[:numel].view(tuple(shape))


def chunk_slices(n: int, item_bytes: int, device, chunk_bytes: int = 4 << 20) -> list:
    """Slices of ``range(n)`` for processing a batch a few MiB at a time on the CPU (the whole batch elsewhere).

    A chunk of about ``chunk_bytes`` stays in the CPU's cache across a chain of elementwise operations, and buffers
    that small are reused by the allocator instead of being mapped (and zeroed) anew for every operation; between 1
    and 8 MiB measured alike here. A GPU is fastest with one launch per operation over the batch."""
    if torch.device(device).type != "cpu" or n == 0:
        return [slice(0, n)]
    # equal chunks (sizes differ by one at most): a compiled op specialises on a batch of 1, so a remainder of one
    # view would cost a recompilation
    k = -(-n // max(1, chunk_bytes // max(1, item_bytes)))
    bounds = [n * i // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def normalize(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def grayscale(x: Tensor) -> Tensor:
    """Luma of RGB images with torchvision's weights, shape (B, 1, H, W).

    A weighted sum of the three channel planes rather than a reduction over dim 1: compiled, a reduction over a
    dimension of size 3 becomes a strided inner loop that does not vectorise (measured 6x slower for saturation)."""
    r, g, b = x.unbind(1)
    return (r * _GRAY[0] + g * _GRAY[1] + b * _GRAY[2]).unsqueeze(1)


def crop_boxes(n: int, height: int, width: int, scale: Tuple[float, float], ratio: Tuple[float, float],
               g: Optional[torch.Generator], device, attempts: int = 10) -> Tensor:
    """Per-sample RandomResizedCrop boxes (top, left, h, w) with torchvision's sampling: up to ``attempts`` draws of
    area and log-aspect, first valid one wins, otherwise the whole image clipped to the ratio range."""
    area = float(height * width)
    target = area * (torch.rand(n, attempts, generator=g, device=device) * (scale[1] - scale[0]) + scale[0])
    lr = (math.log(ratio[0]), math.log(ratio[1]))
    aspect = torch.exp(torch.rand(n, attempts, generator=g, device=device) * (lr[1] - lr[0]) + lr[0])
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(ok.int(), dim=1)
    pick = torch.arange(n, device=device)
    w, h, found = w[pick, first], h[pick, first], ok.any(1)
    # fallback of torchvision: central crop of the whole image with the aspect clipped into the ratio range
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = float(width), float(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = float(round(height * ratio[1])), float(height)
    else:
        fw, fh = float(width), float(height)
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))
    u = torch.rand(n, 2, generator=g, device=device)
    top = torch.where(found, torch.floor(u[:, 0] * (height - h + 1)), torch.round((height - h) / 2))
    left = torch.where(found, torch.floor(u[:, 1] * (width - w + 1)), torch.round((width - w) / 2))
    return torch.stack([top, left, h, w], 1)


def resized_crop(x: Tensor, boxes: Tensor, size: int, flip: Optional[Tensor] = None) -> Tensor:
    """Crop each image to its box and resize to ``size`` (bilinear), mirroring where ``flip`` is true: one
    ``grid_sample`` for the whole batch."""
    n, _, height, width = x.shape
    top, left, h, w = boxes.unbind(1)
    sx = w / width
    sy = h / height
    cx = (left + w / 2) / width * 2 - 1
    cy = (top + h / 2) / height * 2 - 1
    if flip is not None:
        sx = torch.where(flip, -sx, sx)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, cx
    theta[:, 1, 1], theta[:, 1, 2] = sy, cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    # clamp to the centres of the box's edge pixels: bilinear resizing of the cropped image (torchvision) never
    # reads pixels outside the box, so the batched op matches it at the borders too, not only inside
    lo_x = ((left + 0.5) / width * 2 - 1).view(-1, 1, 1)
    hi_x = ((left + w - 0.5) / width * 2 - 1).view(-1, 1, 1)
    lo_y = ((top + 0.5) / height * 2 - 1).view(-1, 1, 1)
    hi_y = ((top + h - 0.5) / height * 2 - 1).view(-1, 1, 1)
    grid = torch.stack([torch.maximum(torch.minimum(grid[..., 0], hi_x), lo_x),
                        torch.maximum(torch.minimum(grid[..., 1], hi_y), lo_y)], -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


_OUTPUTS: dict = {}
_POOL_DEPTH = 3  # enough for a loop that still holds the last step's views while asking for the next


def _held_elsewhere(t: Tensor, pool_refs: int) -> bool:
    """Whether anything besides the pool still refers to ``t`` (the object: ``pool_refs`` Python references are the
    pool's own) or to its memory (a view, autograd's saved tensors)."""
    try:
        # the storage's references: the pool's tensor, and the storage object made for the question
        shared = torch._C._storage_Use_Count(t.untyped_storage()._cdata) > 2
    except (AttributeError, RuntimeError):  # a torch without the count: never reuse
        return True
    return shared or sys.getrefcount(t) > pool_refs + 2  # + 2: this function's ``t`` and getrefcount's argument


def output_buffer(shape: Sequence[int], device) -> Tensor:
    """A float32 tensor of ``shape`` for a recipe's views: on the CPU one handed out before is handed out again once
    nothing else refers to its memory (a fresh batch of views at 224 px maps 77 MB, a page fault per 4 KiB, measured
    a quarter of the photometric half); elsewhere, and while every pooled one is in use, a new tensor."""
    device, shape = torch.device(device), tuple(shape)
    if device.type != "cpu":
        return torch.empty(shape, device=device)
    pool = _OUTPUTS.setdefault(shape, [])
    for i in range(len(pool)):
        if not _held_elsewhere(pool[i], 1):
            return pool[i]
    t = torch.empty(shape)
    pool.append(t)
    del pool[:-_POOL_DEPTH]
    return t


def _frac(t: Tensor) -> Tensor:
    """``t mod 1``: equal to ``t % 1.0`` (the difference with the integer below is exact), without the sign fix-ups
    that ``remainder`` costs in a fused loop."""
    return t - torch.floor(t)


def _rgb_to_hsv(x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """RGB over dim 1 -> the planes H, S, V (each (B, H, W)) with torchvision's conventions (ties resolved red, then
    green, then blue).

    Written with elementwise maxima and selects over the three channel planes: reductions over a dimension of
    size 3 are several times slower on the CPU. The planes are not stacked: compiled, a stack in the middle of the
    hue chain is materialised, and the chain becomes several passes."""
    r, g, b = x.unbind(1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    delta = maxc - minc
    # where max == 0 or delta == 0 the numerators are exactly 0, so dividing by a clamped denominator gives the
    # 0 that torchvision's masked branches give, without the selects
    s = delta / maxc.clamp_min(1e-12)
    is_r, is_g = maxc == r, maxc == g
    sector = torch.where(is_r, 0.0, torch.where(is_g, 2.0, 4.0))
    num = torch.where(is_r, g - b, torch.where(is_g, b - r, r - g))
    h = _frac((sector + num / delta.clamp_min(1e-12)) / 6.0)
    return h, s, maxc


def _hsv_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """H, S, V planes (B, H, W) -> RGB (B, 3, H, W) in closed form: channel n in (R, G, B) = v - v s clamp(min(k,
    4 - k), 0, 1) with k = (m_n + 6 h) mod 6, m = (5, 3, 1); equal to the piecewise sextant formula, without building
    all six cases. With h in [0, 1), m + 6 h lies in [1, 11), so the modulus is one exact subtraction of 6."""
    m = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype, device=h.device).view(1, 3, 1, 1)
    k = m + 6.0 * h.unsqueeze(1)
    k = torch.where(k >= 6.0, k - 6.0, k)
    v = v.unsqueeze(1)
    return v - v * s.unsqueeze(1) * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)


def _brightness(x: Tensor, f: Tensor) -> Tensor:
    return (x * f.view(-1, 1, 1, 1)).clamp(0, 1)


def _contrast(x: Tensor, f: Tensor) -> Tensor:
    gray = grayscale(x) if x.shape[1] == 3 else x
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    f = f.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * mean).clamp(0, 1)


def _saturation(x: Tensor, f: Tensor) -> Tensor:
    f = f.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * grayscale(x)).clamp(0, 1)


def _hue(x: Tensor, shift: Tensor) -> Tensor:
    h, s, v = _rgb_to_hsv(x)
    return _hsv_to_rgb(_frac(h + shift.view(-1, 1, 1)), s, v).clamp(0, 1)


def _brightness_into(x: Tensor, f: Tensor, out: Tensor) -> Tensor:
    return out.copy_(_brightness(x, f))


def _contrast_into(x: Tensor, f: Tensor, out: Tensor) -> Tensor:
    return out.copy_(_contrast(x, f))


def _saturation_into(x: Tensor, f: Tensor, out: Tensor) -> Tensor:
    return out.copy_(_saturation(x, f))


def _hue_into(x: Tensor, shift: Tensor, out: Tensor) -> Tensor:
    return out.copy_(_hue(x, shift))


def to_float_into(images: Tensor, out: Tensor) -> Tensor:
    """:func:`to_float` written into ``out``."""
    return out.copy_(to_float(images))


_JITTER_OPS = (_brightness, _contrast, _saturation, _hue)
# each its own function, not a closure over the op: torch.compile keeps one cache per function's code
_JITTER_INTO = (_brightness_into, _contrast_into, _saturation_into, _hue_into)
_COMPILED: dict = {}


def maybe_compiled(fn, compiled: bool):
    """``fn``, or its ``torch.compile`` (dynamic batch size), compiled once per process."""
    if not compiled:
        return fn
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=True)
    return _COMPILED[fn]


def jitter_ops(compiled: bool = False, into: bool = False):
    """The four jitter operations (brightness, contrast, saturation, hue), eager or through ``torch.compile``; with
    ``into`` their forms that write into a given ``out``.

    Compiled, each operation becomes one fused loop over the views (hue measured 6x faster than eager on the CPU,
    where the batched photometric half is the cost of a streamed step). Each op is compiled once, with a dynamic
    batch size, so the random order of the ops costs no recompilation. A single loop for the whole chain would need
    one compilation per order (24), and measured no faster on chunks that stay in cache."""
    return tuple(maybe_compiled(op, compiled) for op in (_JITTER_INTO if into else _JITTER_OPS))


def color_jitter(x: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor, hue: Tensor,
                 order: Union[Sequence[int], Tensor], compiled: bool = False,
                 buffers: Optional[Sequence[Tensor]] = None) -> Tensor:
    """torchvision's ColorJitter with one factor per sample (each a (B,) tensor), clamping to [0, 1] after each
    operation as torchvision does (0 brightness, 1 contrast, 2 saturation, 3 hue).

    ``order``: one sequence of operations for every view, or a (B, 4) integer tensor whose row i is view i's order,
    as torchvision's ColorJitter draws a fresh permutation for every image it is called on (see
    :func:`jitter_per_view`).

    ``buffers``: two tensors shaped like ``x`` that the operations write into by turns, so that none allocates
    (see :func:`scratch`); the result is then one of them, and ``x`` is left as it was."""
    factors = (brightness, contrast, saturation, hue)
    if isinstance(order, Tensor):
        return jitter_per_view(x, factors, order, compiled, buffers)
    ops = jitter_ops(compiled, into=buffers is not None)
    rgb = x.shape[1] == 3
    for op in order:
        if op in (0, 1) or rgb:
            if buffers is None:
                x = ops[op](x, factors[op])
            else:
                x = ops[op](x, factors[op], buffers[1] if x is buffers[0] else buffers[0])
    return x


SKIP = 4  # an entry of a per-view order that leaves its view as it is (a view not drawn for jitter)


def jitter_orders(n: int, g: Optional[torch.Generator], device) -> Tensor:
    """(n, 4) independent uniform permutations of the four jitter operations, one per view (torchvision's
    ``ColorJitter.get_params`` draws ``randperm(4)`` on every call)."""
    return torch.rand(n, 4, generator=g, device=device).argsort(1)


def jitter_per_view(x: Tensor, factors: Sequence[Tensor], order: Tensor, compiled: bool = False,
                    buffers: Optional[Sequence[Tensor]] = None) -> Tensor:
    """ColorJitter where view i applies its operations in ``order[i]`` (B, 4).

    At each of the four steps the views are regrouped so that those applying the same operation are contiguous, and
    each operation runs once on its group: four passes of operations over the batch, as with one shared order, plus
    one gather per step and one at the end. Views keep their positions in the regrouped layout between steps, so
    only the final gather puts them back in place; the group sizes for all steps come to the host at once (one
    synchronisation on a GPU). Rows of :data:`SKIP` (a recipe's views not drawn for jitter) are copied through
    unchanged, never computed."""
    ops = jitter_ops(compiled, into=True)
    n, rgb = x.shape[0], x.shape[1] == 3
    if buffers is None:
        buffers = (torch.empty_like(x), torch.empty_like(x))
    a, b = buffers
    order = order.to(x.device)
    sizes = torch.stack([torch.bincount(order[:, step], minlength=SKIP + 1) for step in range(4)]).tolist()
    rank = torch.arange(n, device=x.device)
    position = rank  # where each view sits in ``current``
    current = x
    for step in range(4):
        views = torch.argsort(order[:, step], stable=True)  # the views, grouped by their operation at this step
        torch.index_select(current, 0, position[views], out=a)
        position = torch.empty_like(position).index_put_((views,), rank)
        start = 0
        for op, size in enumerate(sizes[step]):
            stop = start + size
            if size and op != SKIP and (op in (0, 1) or rgb):
                ops[op](a[start:stop], factors[op][views[start:stop]], b[start:stop])
            elif size:  # skipped, or saturation and hue on a one-channel image: left as it is
                b[start:stop].copy_(a[start:stop])
            start = stop
        current = b
    return torch.index_select(current, 0, position, out=a)


class EvalTransform:
    """Evaluation-time transform: no augmentation, resize if needed, then normalise (the linear protocol)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], size: Optional[int] = None):
        self.mean, self.std, self.size = tuple(mean), tuple(std), size

    def __call__(self, images: Tensor) -> Tensor:
        x = to_float(images)
        if self.size is not None and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return normalize(x, self.mean, self.std)


def affine_matrices(angle: Tensor, translate: Tensor, scale: Tensor, shear: Tensor) -> Tensor:
    """Per-sample inverse affine matrices (N, 2, 3) in pixel units about the image centre, exactly as torchvision's
    ``_get_inverse_affine_matrix`` with centre (0, 0): angle and shear (x, y) in degrees, translate (x, y) in px."""
    rot = torch.deg2rad(angle)
    sx, sy = torch.deg2rad(shear[:, 0]), torch.deg2rad(shear[:, 1])
    a = torch.cos(rot - sy) / torch.cos(sy)
    b = -torch.cos(rot - sy) * torch.tan(sx) / torch.cos(sy) - torch.sin(rot)
    c = torch.sin(rot - sy) / torch.cos(sy)
    d = -torch.sin(rot - sy) * torch.tan(sx) / torch.cos(sy) + torch.cos(rot)
    m = torch.stack([d, -b, torch.zeros_like(a), -c, a, torch.zeros_like(a)], 1) / scale[:, None]
    tx, ty = translate[:, 0], translate[:, 1]
    m[:, 2] = m[:, 0] * -tx + m[:, 1] * -ty
    m[:, 5] = m[:, 3] * -tx + m[:, 4] * -ty
    return m.view(-1, 2, 3)


def affine(x: Tensor, matrices: Tensor) -> Tensor:
    """Apply inverse affine matrices (N, 2, 3) (pixel units, centred) with bilinear sampling and zero fill, the
    same sampling torchvision's tensor ``affine`` performs, for the whole batch in one ``grid_sample``."""
    n, c, h, w = x.shape
    theta = matrices.clone().to(x.dtype)
    theta[:, 0, 1] *= h / w
    theta[:, 1, 0] *= w / h
    theta[:, 0, 2] *= 2.0 / w
    theta[:, 1, 2] *= 2.0 / h
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def cutout(x: Tensor, size: int, apply: Tensor, g: Optional[torch.Generator], value: float = 0.0) -> Tensor:
    """Cutout (DeVries & Taylor 2017): a ``size`` x ``size`` square, centred uniformly on the image and clipped at
    its borders, set to ``value`` where ``apply`` is true."""
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=g, device=x.device)
    cx = torch.randint(0, w, (n,), generator=g, device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    top = cy.view(-1, 1, 1) - size // 2
    left = cx.view(-1, 1, 1) - size // 2
    inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
    mask = (inside & apply.view(-1, 1, 1)).unsqueeze(1)
    return x.masked_fill(mask, value)


def blur_kernel_size(size: int) -> int:
    """The odd Gaussian kernel of about a tenth of the side that BYOL uses (23 px at 224, appendix B); 3 at 32 px."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel: int) -> Tensor:
    """Separable Gaussian blur of float views (n, C, H, W), each with its own ``sigma`` (n,), reflect-padded as
    torchvision's ``GaussianBlur``: one grouped convolution per axis for the whole batch."""
    n, c, h, w = x.shape
    r = kernel // 2
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    weights = torch.exp(-(t[None, :] ** 2) / (2 * sigma.to(x.dtype)[:, None] ** 2))
    weights = (weights / weights.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n*C, kernel)
    y = F.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, weights.view(n * c, 1, kernel, 1), groups=n * c)
    y = F.conv2d(y, weights.view(n * c, 1, 1, kernel), groups=n * c)
    return y.view(n, c, h, w)


def solarize(x: Tensor, apply: Tensor, threshold: float = 128 / 255) -> Tensor:
    """PIL's ``ImageOps.solarize`` on float views in [0, 1]: where ``apply`` (n,), values at or above ``threshold``
    (128 of 255) are inverted (BYOL, appendix B)."""
    return torch.where(apply.view(-1, 1, 1, 1) & (x >= threshold), 1.0 - x, x)
