"""Image sizes from encoded headers, read before any pixel is decoded: the pixel limit that keeps a small file that
declares a huge image (a "decompression bomb": a 1 KB JPEG declaring 65,000 x 65,000 pixels decodes into 12.7 GB)
from taking the machine's memory.

Every path that decodes an image reads its bytes through :meth:`ssltk.data.records.Records.read`, which calls
:func:`check_pixels`; the limit is the data source's ``max_pixels`` option.
"""
from __future__ import annotations

import io
import struct
from typing import Iterator, Optional, Tuple

from ..errors import SsltkError

#: PIL's own hard bound (twice ``Image.MAX_IMAGE_PIXELS``): above a 100-megapixel photograph, below any bomb that
#: would not fit in memory (3 bytes a pixel: 537 MB decoded at the limit)
MAX_PIXELS = 178_956_970


class ImageTooLarge(SsltkError):
    """An image whose header declares more pixels than the data source's ``max_pixels``."""


# start-of-frame markers: baseline, extended, progressive and lossless, Huffman or arithmetic coded (ITU T.81, B.1.1.3;
# C4, C8 and CC are other tables that share the range)
SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_NO_LENGTH = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn stand alone


def jpeg_segments(data: bytes) -> Iterator[Tuple[int, bytes]]:
    """(marker, body) of each marker segment of a JPEG before its first scan (T.81, B.1.1.4), in file order; a body
    cut short by the end of ``data`` is yielded as it is. Nothing where ``data`` is not a JPEG; the walk stops at
    the first byte that is not a marker."""
    if data[:2] != b"\xff\xd8":
        return
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker in _NO_LENGTH:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan
            return
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        yield marker, data[i + 4 : i + 2 + length]
        i += 2 + length


def jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(height, width) from a JPEG's frame header (T.81, B.2.2), or None where ``data`` is not a JPEG whose header
    says it before the first scan (a height of 0, defined later by a DNL marker, also gives None)."""
    for marker, body in jpeg_segments(data):
        if marker in SOF_MARKERS:
            if len(body) < 5:
                return None
            height = int.from_bytes(body[1:3], "big")
            width = int.from_bytes(body[3:5], "big")
            return (height, width) if height > 0 and width > 0 else None
    return None


def png_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(height, width) from a PNG's IHDR chunk, which the format requires first, or None where ``data`` is not one."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return height, width


def declared_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(height, width) that an encoded image declares: JPEG and PNG from their headers by hand, any other format
    from PIL's lazy open (which reads the header only); None where no header says it."""
    size = jpeg_size(data) or png_size(data)
    if size is not None or data[:2] == b"\xff\xd8" or data[:4] == b"\x89PNG":
        return size
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(str(exc).splitlines()[0]) from None
    except Exception:  # not an image PIL knows: the decoder says so, with its own reason
        return None
    return height, width


def check_pixels(data: bytes, max_pixels: int = MAX_PIXELS) -> Optional[Tuple[int, int]]:
    """Refuse an encoded image that declares more than ``max_pixels`` pixels, before it is decoded; returns the
    declared (height, width), or None where no header says it."""
    size = declared_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        raise ImageTooLarge(f"declares {size[1]} x {size[0]} pixels, above the limit of {max_pixels:,} "
                            "(--data.max_pixels)")
    return size


def check_max_pixels(max_pixels) -> None:
    """One line for a ``--data.max_pixels`` that is not a positive whole number (said when the dataset is built)."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise SsltkError(f"--data.max_pixels must be a positive number of pixels, got {max_pixels!r}")
