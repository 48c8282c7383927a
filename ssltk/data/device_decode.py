"""Decoding a streamed step's JPEGs on the training device (``--trainer.stream_decode device``).

In the default ``workers`` mode every image of a step is decoded and cropped by a DataLoader worker on the CPU
(:mod:`ssltk.data.stream`). On a GPU the CPU cores can become the limit: a 450 px JPEG costs about 4 ms to decode on
one core, so 16 cores feed a few thousand images per second. In ``device`` mode the workers do only what needs no
pixels, and the device does the rest:

- a worker reads each JPEG's bytes, takes the image size from its frame header (:func:`ssltk.data.headers.jpeg_size`, no decoding) and
  draws the crop boxes of every view from that size with the step's generator, in the order the ``workers`` mode
  draws them, so both modes crop the same boxes;
- the main process decodes the whole step in one call of ``torchvision.io.decode_jpeg`` on the device (nvjpeg's
  batched decoder on CUDA), then crops and resizes each view there (:func:`finish_step`).

Images that are not JPEG, or whose header cannot be read, are decoded and cropped in the worker as in the ``workers``
mode. On the CPU the device mode decodes in the main process with the same libjpeg-turbo and the same uint8 resize
as the workers, so its views equal the ``workers`` mode's bit for bit (tested); it exists there to test the path, as
it only moves work onto the one process that also trains. On CUDA, nvjpeg's inverse DCT and the float resize
(:func:`ssltk.data.decode.resize_u8`) may move a pixel by one level against libjpeg-turbo and the uint8 resize.

Whether this helps is a matter of the machine: it frees the CPU cores, and costs device time and the main process's
time to launch one resize per view. Measure it with ``examples/benchmarks/stream.py --decode device``.
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..errors import SsltkError
from .decode import decode_image, exception_summary, read_full, resize_u8, unreadable
from .records import Records


class EncodedStep(NamedTuple):
    """What a worker hands over in ``device`` mode for one step of ``batch`` images.

    ``data`` holds the JPEGs end to end, split by ``lengths``; ``positions`` and ``records`` say which image of the
    step and which record each is; ``boxes[j]`` are group j's crop boxes, (number of JPEGs, views, 4) as
    (top, left, height, width); ``heights_widths`` the header sizes they were drawn for. ``done[j]`` holds group j's
    views (views, C, S, S) of the images the worker decoded itself, keyed by position.
    """

    batch: int
    data: Tensor
    lengths: Tensor
    positions: Tensor
    records: Tensor
    heights_widths: Tensor
    boxes: List[Tensor]
    done: List[Dict[int, Tensor]]


def pack(batch: int, jpegs: Sequence[bytes], positions: Sequence[int], records: Sequence[int],
         sizes: Sequence[Tuple[int, int]], boxes: List[List[Tensor]], done: List[Dict[int, Tensor]],
         num_views: Sequence[int]) -> EncodedStep:
    """An :class:`EncodedStep`: the JPEGs as one byte tensor, so a step crosses to the main process as one buffer."""
    data = torch.frombuffer(bytearray(b"".join(jpegs)), dtype=torch.uint8) if jpegs else torch.empty(0, dtype=torch.uint8)
    per_group = [torch.stack(b).long() if b else torch.empty(0, k, 4, dtype=torch.long)
                 for b, k in zip(boxes, num_views)]
    return EncodedStep(batch, data, torch.tensor([len(j) for j in jpegs], dtype=torch.long),
                       torch.tensor(list(positions), dtype=torch.long), torch.tensor(list(records), dtype=torch.long),
                       torch.tensor(list(sizes), dtype=torch.long).reshape(-1, 2), per_group, done)


def check_device_decode(device: torch.device) -> None:
    """One clear line, before training, where this torchvision cannot decode JPEGs on ``device``."""
    from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

    probe = encode_jpeg(torch.full((3, 8, 8), 128, dtype=torch.uint8))
    try:
        decode_jpeg([probe], mode=ImageReadMode.RGB, device=device)
    except Exception as exc:  # torchvision built without nvjpeg, or a device it cannot reach
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SsltkError(f"--trainer.stream_decode device: torchvision cannot decode JPEG on {device} ({first}); "
                         "use --trainer.stream_decode workers") from None


def _decode_all(chunks: List[Tensor], device: torch.device) -> List[Tuple[Optional[Tensor], str]]:
    """Each JPEG decoded to uint8 RGB on ``device``: the whole list in one call (nvjpeg's batched decoder on CUDA),
    then one at a time where the batch fails, so one bad file names itself; (None, the decoder's complaint) for a
    file no decoder reads."""
    from torchvision.io import ImageReadMode, decode_jpeg


    if not chunks:
        return []
    try:
        return [(img, "") for img in decode_jpeg(chunks, mode=ImageReadMode.RGB, device=device)]
    except Exception:
        pass
    out: List[Tuple[Optional[Tensor], str]] = []
    for c in chunks:
        try:
            out.append((decode_jpeg(c, mode=ImageReadMode.RGB, device=device), ""))
        except Exception:
            try:  # a JPEG variant the device decoder lacks (CMYK, say) still decodes on the CPU
                out.append((decode_image(c.numpy().tobytes()).to(device), ""))
            except Exception as exc:
                out.append((None, exception_summary(exc)))
    return out


def _substitute(records: Records, record: int, reason: str, skip_corrupt: bool) -> Tensor:
    """The skip_corrupt rule of the ``workers`` mode for a JPEG whose header read but whose data does not decode:
    stop naming it, or take the next readable record in dataset order (decoded on the CPU)."""

    unreadable(records, record, reason, skip_corrupt)
    return read_full(records, (record + 1) % len(records), True)


def finish_step(step: EncodedStep, sizes: Sequence[int], device: torch.device, records: Records,
                skip_corrupt: bool) -> List[Tensor]:
    """Each group's uint8 views (views * batch, C, S, S), view-major, on ``device``: the step's JPEGs decoded there,
    each box cropped and resized to its group's size (:func:`ssltk.data.decode.resize_u8`), and the views the worker
    made put in their places.

    A substitute for a corrupt JPEG (``skip_corrupt``) is cropped by its boxes scaled to its own size: the
    ``workers`` mode, which finds the file corrupt before drawing, draws them for the substitute instead.
    """

    chunks = list(torch.split(step.data, step.lengths.tolist())) if len(step.lengths) else []
    images = _decode_all(chunks, device)
    b = step.batch
    outs = [torch.empty(step.boxes[j].shape[1] * b, 3, size, size, dtype=torch.uint8, device=device)
            for j, size in enumerate(sizes)]
    for n, ((img, reason), pos, rec) in enumerate(zip(images, step.positions.tolist(), step.records.tolist())):
        h, w = step.heights_widths[n].tolist()
        scale = None
        if img is None or tuple(img.shape[-2:]) != (h, w):
            reason = reason or f"decodes to {tuple(img.shape[-2:])}, its header says {(h, w)}"
            img = _substitute(records, rec, reason, skip_corrupt).to(device)
            scale = torch.tensor([img.shape[-2] / h, img.shape[-1] / w] * 2, dtype=torch.float64)
        for j, size in enumerate(sizes):
            boxes = step.boxes[j][n]
            if scale is not None:
                boxes = (boxes.double() * scale).round().long()
            for v, (t, l, bh, bw) in enumerate(boxes.tolist()):
                outs[j][v * b + pos] = resize_u8(img[:, t : t + max(bh, 1), l : l + max(bw, 1)], size)
    for j in range(len(sizes)):
        for pos, views in step.done[j].items():
            outs[j][pos :: b] = views.to(device)
    return outs
