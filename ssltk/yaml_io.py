"""Reading YAML from files without letting a file take the machine: plain data only (``SafeLoader``: no tag can
construct an object) and a bound on alias expansion.

A "billion laughs" file defines an anchor of ten aliases of an anchor of ten aliases ... and a few hundred bytes
expand to billions of nodes: PyYAML builds it with shared references, but anything that walks, copies or dumps the
result (jsonargparse, ``yaml.safe_dump``) expands it, and ``ssltk fit --config`` grew to 8 GB in 3 minutes. The
file is composed into its node graph first, and its size with every alias expanded is counted without expanding
it (each node once, memoised); beyond :data:`MAX_NODES` it is refused in one line.
"""
from __future__ import annotations

from typing import Any, Dict

import yaml

from .errors import SsltkError

#: nodes a configuration may expand to: a run's config.yaml has a few hundred, a protocol file a few thousand
MAX_NODES = 100_000


def _expanded_size(node: yaml.Node, memo: Dict[int, int], limit: int) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a node that reaches itself (a recursive alias) counts once, then is refused by the loader
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, memo, limit)
            if total > limit:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_size(k, memo, limit) + _expanded_size(v, memo, limit)
            if total > limit:
                break
    memo[key] = total
    return total


def _invalid(where: str, exc: Exception) -> SsltkError:
    mark = getattr(exc, "problem_mark", None)
    at = f" (line {mark.line + 1})" if mark is not None else ""
    detail = getattr(exc, "problem", None) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return SsltkError(f"{where} is not valid YAML{at}: {detail}")


def load_yaml(text: str, where: str, max_nodes: int = MAX_NODES) -> Any:
    """The plain data of a YAML document, refused in one line (naming ``where``) when it cannot be parsed or when
    its aliases expand to more than ``max_nodes`` nodes. The document is parsed once: composed, measured, then
    constructed from the same node graph."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, max_nodes) > max_nodes:
            raise SsltkError(f"{where}: its aliases expand to more than {max_nodes:,} values; refused (a YAML "
                             "alias bomb, or a configuration far larger than any ssltk writes)")
        return loader.construct_document(node)
    except (yaml.YAMLError, RecursionError) as exc:
        raise _invalid(where, exc) from None
    finally:
        loader.dispose()
