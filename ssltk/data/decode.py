"""Decoding primitives shared by the worker pipeline (:mod:`ssltk.data.stream`) and device decoding
(:mod:`ssltk.data.device_decode`): an encoded image to uint8 pixels, the antialiased uint8 resize, and the
corrupt-file rule (an error naming the file, or with ``skip_corrupt`` the next readable image and a line on stderr).
"""
from __future__ import annotations

import io
import sys
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import SsltkError
from .records import Records

_TV_FORMATS = (b"\xff\xd8", b"\x89PNG", b"GIF8", b"RIFF")  # JPEG, PNG, GIF, WEBP: what torchvision.io decodes
# torchvision 0.29 announces that its decoders move to TorchCodec, whose image path needs FFmpeg's libraries on the
# machine; until that is a plain pip install, torchvision.io stays (libjpeg-turbo, measured 1.35x PIL on a 450 px
# JPEG here), and PIL takes over if a later torchvision drops it
try:
    from torchvision.io import ImageReadMode, decode_image as _tv_decode
except ImportError:  # pragma: no cover - a torchvision without image decoding
    _tv_decode = None


def decode_image(data: bytes) -> Tensor:
    """uint8 (3, H, W) RGB from an encoded image: torchvision.io for JPEG/PNG/GIF/WEBP, PIL for the rest."""
    if _tv_decode is not None and data[:4].startswith(_TV_FORMATS):
        with warnings.catch_warnings():  # the deprecation notice above, for this call only
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            img = _tv_decode(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
        return img[0] if img.dim() == 4 else img  # an animated GIF: its first frame, as PIL gives
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    return torch.from_numpy(arr).permute(2, 0, 1)


def resize_u8(img: Tensor, size: int) -> Tensor:
    """uint8 (C, H, W) -> (C, size, size), bilinear with antialiasing (PIL's filter, on torch's uint8 kernels).

    Off the CPU the resize runs in float and rounds back, since torch's antialiased uint8 kernel is the CPU's; the
    two differ by at most one level per pixel."""
    if img.shape[-2:] == (size, size):
        return img.contiguous()
    if img.device.type != "cpu":
        return resize_u8_float(img, size)
    return F.interpolate(img[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def resize_u8_float(img: Tensor, size: int) -> Tensor:
    """:func:`resize_u8` computed in float and rounded back to uint8: the form that runs off the CPU."""
    out = F.interpolate(img[None].float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out[0].round_().clamp_(0, 255).to(torch.uint8)


def load_resized(records: Records, i: int, size: int) -> Tensor:
    """Record i decoded and resized to ``size`` x ``size``: the one function both data paths hold images through."""
    return resize_u8(decode_image(records.read(i)), size)


def _first_readable(records: Records, record: int, skip_corrupt: bool, load) -> Tensor:
    """``load(record)``, or with ``skip_corrupt`` that of the next readable record in dataset order (the skipped
    file named on stderr); without it, an :class:`SsltkError` naming the file."""
    n = len(records)
    for step in range(n):
        r = (record + step) % n
        try:
            return load(r)
        except Exception as exc:
            unreadable(records, r, exception_summary(exc), skip_corrupt)
    raise SsltkError("no readable image in the data")


def exception_summary(exc: BaseException) -> str:
    """``Type: first line of the message``, as unreadable files are reported."""
    detail = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {detail}"


def unreadable(records: Records, record: int, reason: str, skip_corrupt: bool) -> None:
    """The corrupt-file rule for one record: without ``skip_corrupt`` an :class:`SsltkError` naming it, with it a
    line on stderr saying it is skipped (the caller takes the next readable record)."""
    msg = f"{records.name(record)} ({reason})"
    if not skip_corrupt:
        raise SsltkError(f"unreadable image: {msg} (pass --data.skip_corrupt true to skip it)") from None
    print(f"ssltk: skipping unreadable image {msg}", file=sys.stderr)


def read_or_substitute(records: Records, record: int, size: int, skip_corrupt: bool) -> Tensor:
    """Pixels of ``record`` at ``size`` px, under the ``skip_corrupt`` rule."""
    return _first_readable(records, record, skip_corrupt, lambda r: load_resized(records, r, size))


def read_full(records: Records, record: int, skip_corrupt: bool) -> Tensor:
    """Pixels of ``record`` at full resolution (what geometric crops are taken from), under the same rule."""
    return _first_readable(records, record, skip_corrupt, lambda r: decode_image(records.read(r)))
