"""The kept weights: every backbone behind a reproduced number, with the manifest that ties it to its cell.

``manifest.json`` lists one entry per (table, cell, seed): the paper's number, the number the kept weights score
with the protocol's own evaluation, the conditions of the run (data, split, precision, training-set size, steps per
epoch), the commits that trained and kept it, and the file's sha256. The files themselves lie under ``weights/``, in
half precision (a CIFAR-scale backbone is under 1 MB). Entries whose weights were lost (runs recorded before weights
were kept) stay in the manifest with ``weights: null``, so that the report can say so.

A kept backbone is named ``TABLE/ROW/COLUMN/seedN`` (the seed may be left out: seed 0):
``ssltk.load_backbone("rr-table2/supervised/conv4-cifar10")`` or ``--backbone.weights rr-table2/...`` on the command
line. Its sha256 is checked before it is read. This module reads files only; nothing in it runs code from them.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from ..errors import SsltkError

#: the folder of the kept weights that ship with ssltk
ZOO = Path(__file__).resolve().parent
MANIFEST_NAME = "manifest.json"
FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9_.@-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/seed[0-9]+)?$")

__all__ = ["ZOO", "entry_name", "find", "is_kept_name", "read_manifest", "resolve_weights", "sha256_file",
           "kept_file", "write_manifest"]


def entry_name(table: str, cell: str, seed: int, budget_tag: str = "full") -> str:
    """``TABLE/ROW/COLUMN/seedN``; a run of another budget than the paper's is ``TABLE@TAG/...``."""
    return f"{table}{'' if budget_tag == 'full' else '@' + budget_tag}/{cell}/seed{seed}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(zoo: Optional[Path] = None) -> List[Dict[str, Any]]:
    """The manifest's entries ([] when the folder has none yet); a manifest of another format is refused."""
    path = Path(zoo or ZOO) / MANIFEST_NAME
    if not path.is_file():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise SsltkError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), list):
        raise SsltkError(f"{path} is not an ssltk manifest of format {FORMAT}")
    return doc["entries"]


def _order(entry: Dict[str, Any]) -> tuple:
    return (entry["table"], entry.get("cell_index", 0), entry["cell"], entry["seed"], entry.get("date", ""))


def write_manifest(entries: List[Dict[str, Any]], zoo: Optional[Path] = None) -> Path:
    """Write the entries sorted, with stable key order and a final newline, so that the same entries give the same
    bytes (the report is generated from this file and must regenerate byte for byte)."""
    path = Path(zoo or ZOO) / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format": FORMAT, "entries": sorted(entries, key=_order)}, indent=1, sort_keys=True,
                      ensure_ascii=False)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def is_kept_name(value: Union[str, Path]) -> bool:
    """Whether ``value`` reads as a kept backbone's name rather than a file (an existing file always wins)."""
    text = str(value)
    return bool(_NAME.match(text)) and not Path(text).expanduser().exists()


def find(name: str, zoo: Optional[Path] = None) -> Dict[str, Any]:
    """The manifest entry named ``name`` (``TABLE/ROW/COLUMN[/seedN]``), or one line naming the closest ones."""
    full = name if re.search(r"/seed[0-9]+$", name) else f"{name}/seed0"
    entries = read_manifest(zoo)
    for e in entries:
        if e["name"] == full:
            return e
    names = [e["name"] for e in entries if e.get("weights")]
    close = difflib.get_close_matches(full, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else (
        f"; {len(names)} are kept (ssltk reproduce --kept lists them)" if names else "; no weights are kept yet")
    raise SsltkError(f"no kept weights are named {name!r}{hint}")


def resolve_weights(value: Union[str, Path], zoo: Optional[Path] = None) -> Path:
    """The file behind ``value``: the path itself, or the kept file of a kept name, its sha256 checked."""
    if not is_kept_name(value):
        return Path(value).expanduser()
    return kept_file(find(str(value), zoo), zoo)


def kept_file(entry: Dict[str, Any], zoo: Optional[Path] = None) -> Path:
    """The file of a manifest entry, present and with the sha256 the manifest gives."""
    if not entry.get("weights"):
        raise SsltkError(f"{entry['name']}: its weights were not kept "
                         f"({entry.get('note') or 'recorded before ssltk kept weights'})")
    path = Path(zoo or ZOO) / entry["weights"]
    if not path.is_file():
        raise SsltkError(f"{entry['name']}: its file {path} is missing from this installation")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise SsltkError(f"{path}: sha256 {digest[:16]}... does not match the manifest's {entry['sha256'][:16]}...; "
                         "the file was changed after it was kept")
    return path
