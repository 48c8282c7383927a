"""One parser style for every subcommand: jsonargparse's ``ArgumentParser`` (as ``ssltk fit`` uses), with ``--help``
alike everywhere and every error as one line before any work is done.

``command_parser`` makes a subcommand's parser; ``parse`` turns a parsing error into an :class:`SsltkError`, which
the command line prints as ``ssltk: error: ...`` with exit status 2, with the closest options for a misspelt one.
"""
from __future__ import annotations

import difflib
import re
from typing import Any, Sequence

from jsonargparse import ArgumentError, ArgumentParser

from .errors import SsltkError

__all__ = ["command_parser", "condense", "parse"]


def command_parser(prog: str, description: str = "") -> ArgumentParser:
    return ArgumentParser(prog=prog, description=description, exit_on_error=False, allow_abbrev=False)


def parse(parser: ArgumentParser, argv: Sequence[str]) -> Any:
    try:
        return parser.parse_args(list(argv))
    except ArgumentError as exc:
        raise SsltkError(condense(str(exc), parser)) from None


def condense(message: str, parser: Any) -> str:
    """A parser's multi-line error as one line, with close matches for an unknown option."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    if not lines:
        return "invalid arguments"
    m = re.search(r"unrecognized arguments: (\S+)", lines[0])
    if m:
        known = [o for o in getattr(parser, "_option_string_actions", {}) if o.startswith("--")]
        close = difflib.get_close_matches(m.group(1), known, n=3, cutoff=0.6)
        hint = "; did you mean " + ", ".join(close) + "?" if close else ""
        return f"unknown option {m.group(1)}{hint} (see --help)"
    return " ".join(lines[:2]) + " (see --help)"
