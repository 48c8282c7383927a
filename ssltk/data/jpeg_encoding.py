"""How a JPEG was encoded, read from its headers: the libjpeg quality its quantisation tables were scaled to and its
chroma subsampling. A reproduction record names both, because lossy images are a condition the papers did not have
(they read CIFAR's uncompressed arrays) and the loss depends on exactly these two settings.

Quantisation tables (ITU T.81, B.2.4.1) arrive in zig-zag order; the tables libjpeg (and so PIL) scales by quality
are the example tables of T.81 Annex K.1, scaled as libjpeg's ``jpeg_quality_scaling`` does.
"""
from __future__ import annotations

from typing import Dict, List, Optional

from .headers import SOF_MARKERS, jpeg_segments

# T.81 Table K.1 (luminance), in natural (row-major) order
_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
         14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
         49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
# the natural-order index of each zig-zag position (T.81 Figure A.6)
_ZIGZAG = (0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
           14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39,
           46, 53, 60, 61, 54, 47, 55, 62, 63)
_SUBSAMPLING = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (1, 2): "4:4:0", (4, 1): "4:1:1"}


def libjpeg_table(quality: int) -> List[int]:
    """The luminance table libjpeg writes at ``quality`` (1-100), in zig-zag order, as its ``baseline`` setting does
    (every entry clamped to 1..255)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(max((_LUMA[i] * scale + 50) // 100, 1), 255) for i in _ZIGZAG]


def _segments(data: bytes) -> Dict[str, object]:
    """The first luminance quantisation table (zig-zag order) and the frame's sampling factors, up to the first scan."""
    found: Dict[str, object] = {}
    for marker, body in jpeg_segments(data):
        if marker == 0xDB:  # one segment may hold several tables: Pq/Tq, then 64 entries of 1 or 2 bytes
            j = 0
            while j < len(body):
                precision, table_id = body[j] >> 4, body[j] & 0x0F
                size = 128 if precision else 64
                entries = body[j + 1 : j + 1 + size]
                values = list(entries) if not precision else [int.from_bytes(entries[k : k + 2], "big")
                                                              for k in range(0, size, 2)]
                if table_id == 0 and "luma" not in found and len(values) == 64:
                    found["luma"] = values
                j += 1 + size
        elif marker in SOF_MARKERS and len(body) >= 6:
            count = body[5]
            found["sampling"] = [(body[6 + 3 * c + 1] >> 4, body[6 + 3 * c + 1] & 0x0F)
                                 for c in range(count) if 6 + 3 * c + 2 < len(body)]
    return found


def jpeg_quality(data: bytes) -> Optional[int]:
    """The libjpeg quality whose scaled Annex K table equals the image's luminance table, or None (not a JPEG, or
    tables of another encoder)."""
    luma = _segments(data).get("luma")
    if luma is None:
        return None
    return next((q for q in range(100, 0, -1) if libjpeg_table(q) == luma), None)


def chroma_subsampling(data: bytes) -> Optional[str]:
    """'4:2:0', '4:2:2', '4:4:4' ... from the luma and first chroma component's sampling factors (T.81, A.1.1),
    'greyscale' for one component, None where no frame header precedes the scan."""
    sampling = _segments(data).get("sampling")
    if not sampling:
        return None
    if len(sampling) == 1:
        return "greyscale"
    (hy, vy), (hc, vc) = sampling[0], sampling[1]
    if hc == 0 or vc == 0 or hy % hc or vy % vc:
        return f"sampling {hy}x{vy}/{hc}x{vc}"
    return _SUBSAMPLING.get((hy // hc, vy // vc), f"sampling {hy}x{vy}/{hc}x{vc}")


def describe_jpeg(data: bytes) -> str:
    """'JPEG quality 75, 4:2:0 chroma' (what a record's conditions say), naming what the headers do not tell."""
    if data[:2] != b"\xff\xd8":
        return "JPEG (headers unreadable)"
    quality = jpeg_quality(data)
    subsampling = chroma_subsampling(data)
    parts = [f"quality {quality}" if quality is not None else "quantisation tables not libjpeg's"]
    if subsampling == "greyscale":
        parts.append("greyscale")
    elif subsampling is not None:
        parts.append(f"{subsampling} chroma")
    return "JPEG " + ", ".join(parts)
