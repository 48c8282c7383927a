"""Where images come from, one record at a time: files below a folder, files named in a list, members of tar shards.

A record store answers ``len()``, ``read(i) -> bytes`` (the encoded image) and ``name(i)`` (what to print when record
i cannot be decoded). Stores are small, picklable descriptions (paths and offsets, never pixels), so DataLoader
workers receive a copy and read in parallel, and a set of any size costs a few bytes of memory per image.

Nothing here runs code from the data: files are read as bytes and decoded as images; a shard's label members are
parsed as plain integers or class names, never unpickled, and webdataset's ``pipe:`` URLs (which run a shell
command) are refused.
"""
from __future__ import annotations

import csv
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import SsltkError, warn
from .headers import MAX_PIXELS, check_pixels

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
#: the webdataset member extensions read as the image and as the label of a sample, in order of preference
SHARD_IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "ppm", "bmp")
SHARD_LABEL_KEYS = ("cls", "label", "class")


class Records:
    """Base class of record stores. :meth:`read` is where every decoding path gets its bytes, so it refuses an image
    whose header declares more than ``max_pixels`` pixels before anything decodes it (:mod:`ssltk.data.headers`)."""

    max_pixels: int = MAX_PIXELS  # the data source's option, set on the instance

    def __len__(self) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def read(self, i: int) -> bytes:
        return self.read_sized(i)[0]

    def read_sized(self, i: int) -> Tuple[bytes, Optional[Tuple[int, int]]]:
        """Record ``i``'s bytes and the (height, width) its header declares (None where none says it), checked
        against ``max_pixels``: for a reader that needs the size too (the device decoding path) without parsing
        the header again."""
        data = self._read(i)
        return data, check_pixels(data, self.max_pixels)

    def _read(self, i: int) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def name(self, i: int) -> str:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass
class FileRecords(Records):
    """One image file per record."""

    paths: List[Path]

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, i: int) -> bytes:
        return Path(self.paths[i]).read_bytes()

    def name(self, i: int) -> str:
        return str(self.paths[i])


@dataclass
class TarRecords(Records):
    """Image members of uncompressed tar shards, read by (shard, byte offset, size).

    The offsets come from one pass over each shard's headers when the set is opened, so any record can then be read
    with one seek: the epoch order, the per-rank split and the resume guarantees are those of every other source,
    instead of the shuffle buffer of a sequential shard reader.
    """

    shards: List[str]
    entries: List[Tuple[int, int, int, str]]  # (shard number, data offset, size, member name)

    def __len__(self) -> int:
        return len(self.entries)

    def _read(self, i: int) -> bytes:
        shard, offset, size, _ = self.entries[i]
        with open(self.shards[shard], "rb") as fh:
            fh.seek(offset)
            return fh.read(size)

    def name(self, i: int) -> str:
        shard, _, _, member = self.entries[i]
        return f"{self.shards[shard]}:{member}"


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()


def scan_folder(root: Path, labels: str = "auto",
                classes: Optional[Sequence[str]] = None) -> Tuple[List[Path], List[int], List[str]]:
    """Image paths below ``root`` (sorted, any depth) with their labels.

    ``labels``: ``folders`` labels each image by the first folder below ``root`` it lies in (``root/<class>/...``,
    classes sorted by name unless given); ``none`` gives every image the label -1 (unlabelled); ``auto`` means
    ``folders`` when ``root`` holds only folders, and ``none`` when it holds image files itself (a flat folder).
    """
    if not root.is_dir():
        raise SsltkError(f"image folder not found: {root}")
    if labels not in ("auto", "folders", "none"):
        raise SsltkError(f"--data.labels must be auto, folders or none, got {labels!r}")
    if labels == "auto":
        labels = "none" if any(_is_image(p) for p in root.iterdir()) else "folders"
    if labels == "none":
        paths = sorted(p for p in root.rglob("*") if _is_image(p))
        if not paths:
            raise SsltkError(f"no images found below {root} (suffixes {', '.join(sorted(IMAGE_SUFFIXES))})")
        return paths, [-1] * len(paths), []
    if classes is None:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise SsltkError(f"no class folders and no images in {root} (expected {root}/<image> or "
                         f"{root}/<class>/<image>)")
    paths, ids = [], []
    for idx, name in enumerate(classes):
        folder = root / name
        if folder.is_dir():
            found = sorted(p for p in folder.rglob("*") if _is_image(p))
            paths += found
            ids += [idx] * len(found)
    if not paths:
        raise SsltkError(f"no images found below {root} (suffixes {', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths, ids, list(classes)


def _label_ids(raw: List[Optional[str]], where: str) -> Tuple[List[int], List[str]]:
    """Integer labels from their text: all integers are taken as class ids; otherwise names, sorted, give ids.
    A missing label is -1 (unlabelled)."""
    given = [r for r in raw if r not in (None, "")]
    if not given:
        return [-1] * len(raw), []
    if all(r.lstrip("-").isdigit() for r in given):
        ids = [int(r) if r not in (None, "") else -1 for r in raw]
        if any(i < -1 for i in ids):
            raise SsltkError(f"{where}: labels must be class ids >= 0 (or -1 for none)")
        return ids, [str(c) for c in range(max(ids) + 1)]
    classes = sorted(set(given))
    index = {c: i for i, c in enumerate(classes)}
    return [index[r] if r not in (None, "") else -1 for r in raw], classes


def read_file_list(path: Path) -> Tuple[List[Path], List[int], List[str]]:
    """Paths and labels from a list file.

    ``.csv``: a ``path`` column and an optional ``label`` column (a header row naming them), or headerless rows
    ``path[,label]``. Any other suffix: one image per line, ``path`` or ``path<whitespace>label``; blank lines and
    lines starting with ``#`` are skipped. Relative paths are taken from the list file's folder. Labels are class ids
    or class names (names are numbered in sorted order); images without a label are unlabelled (-1).
    """
    if not path.is_file():
        raise SsltkError(f"file list not found: {path}")
    rows: List[Tuple[str, Optional[str]]] = []
    text = path.read_text(encoding="utf-8", errors="strict")
    if path.suffix.lower() == ".csv":
        reader = list(csv.reader(text.splitlines()))
        if reader and [c.strip().lower() for c in reader[0]][:1] == ["path"]:
            header = [c.strip().lower() for c in reader[0]]
            col = header.index("label") if "label" in header else None
            reader = reader[1:]
        else:
            col = 1
        for n, row in enumerate(reader, 1):
            if not row or not row[0].strip():
                continue
            label = row[col].strip() if col is not None and len(row) > col else None
            rows.append((row[0].strip(), label))
    else:
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.rsplit(None, 1)
            if len(parts) == 2 and not Path(line).suffix.lower() in IMAGE_SUFFIXES:
                rows.append((parts[0], parts[1]))
            else:
                rows.append((line, None))
    if not rows:
        raise SsltkError(f"file list {path} names no images")
    base = path.parent
    paths = [(base / p) if not Path(p).is_absolute() else Path(p) for p, _ in rows]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise SsltkError(f"file list {path} names {len(missing)} missing file(s): "
                         f"{', '.join(map(str, missing[:3]))}{more}")
    ids, classes = _label_ids([lab for _, lab in rows], str(path))
    return paths, ids, classes


def expand_shards(pattern: str) -> List[str]:
    """Local shard paths from a path or a brace pattern (``shards/train-{0000..0099}.tar``), expanded by webdataset's
    own expansion so that patterns mean what they mean to webdataset users; several patterns may be joined by
    ``::``. URLs are refused: ``pipe:`` runs a shell command, and a set read over the network is outside this
    source."""
    from webdataset.shardlists import expand_urls

    if "://" in pattern or pattern.startswith("pipe:"):
        raise SsltkError(f"shard pattern {pattern!r} is not a local path: ssltk reads local tar shards only "
                         "(a pipe: URL would run a shell command)")
    paths = [str(Path(p).expanduser()) for p in expand_urls(pattern)]
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise SsltkError(f"{len(missing)} of {len(paths)} shard(s) of {pattern!r} not found: "
                         f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    return paths


def _leaves_shard(name: str) -> bool:
    """A member name that is absolute or climbs out of the shard (``../x``, ``a/../../x``, ``C:\\x``)."""
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts


def index_shards(shards: List[str]) -> Tuple[TarRecords, List[Optional[str]]]:
    """One pass over the headers of each shard: every sample's image member (by webdataset's key convention:
    the member name up to its first dot is the sample key, the rest its extension) and its label text, if any."""
    entries: List[Tuple[int, int, int, str]] = []
    labels: List[Optional[str]] = []
    for s, shard in enumerate(shards):
        samples: Dict[str, Dict[str, tarfile.TarInfo]] = {}
        order: List[str] = []
        skipped: List[str] = []
        try:
            with tarfile.open(shard, "r:") as tar:
                for member in tar:
                    if member.isdir():
                        continue
                    if not member.isfile() or _leaves_shard(member.name):
                        skipped.append(member.name)
                        continue
                    base = member.name.rsplit("/", 1)[-1]
                    if "." not in base:
                        continue
                    prefix = member.name[: len(member.name) - len(base)]
                    key, ext = base.split(".", 1)
                    key = prefix + key
                    if key not in samples:
                        samples[key] = {}
                        order.append(key)
                    samples[key][ext.lower()] = member
                label_text = {}
                for key in order:
                    lab = next((samples[key][e] for e in SHARD_LABEL_KEYS if e in samples[key]), None)
                    if lab is not None:
                        fh = tar.extractfile(lab)
                        label_text[key] = fh.read(64).decode("utf-8", "replace").strip() if fh else None
        except (tarfile.TarError, OSError) as exc:
            raise SsltkError(f"cannot read shard {shard}: {exc} (shards must be uncompressed tar files)") from None
        if skipped:
            more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            warn(f"shard {shard}: skipped {len(skipped)} member(s) that are links or other non-files, or whose names "
                 f"leave the shard ({', '.join(repr(n) for n in skipped[:3])}{more})")
        for key in order:
            img = next((samples[key][e] for e in SHARD_IMAGE_KEYS if e in samples[key]), None)
            if img is None:
                continue
            entries.append((s, img.offset_data, img.size, img.name))
            labels.append(label_text.get(key))
    if not entries:
        raise SsltkError(f"no image samples ({'/'.join(SHARD_IMAGE_KEYS)} members) in {len(shards)} shard(s)")
    return TarRecords(shards, entries), labels
