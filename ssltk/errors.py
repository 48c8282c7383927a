"""User-facing errors.

Anything raised as :class:`SsltkError` is a problem with the user's input (a name, a path, a value), not a bug.
The CLI prints it as a single line and exits with status 2 instead of showing a traceback.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional


class SsltkError(Exception):
    """An error caused by the user's input, shown as one readable line."""


class UnknownNameError(SsltkError, KeyError):
    """A registry lookup failed; the message carries close matches."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT or SIGTERM; says which run and what of it is saved."""

    def __init__(self, run_dir: Path, checkpoints: Optional[List[Path]] = None, reason: str = "interrupted"):
        super().__init__(reason)
        self.run_dir, self.checkpoints, self.reason = Path(run_dir), list(checkpoints or []), reason

    def message(self) -> str:
        if self.checkpoints:
            return (f"{self.reason}; {self.run_dir} is checkpointed up to {self.checkpoints[-1].name} (continue with "
                    f"ssltk fit --resume {self.run_dir})")
        return f"{self.reason} before the first checkpoint of {self.run_dir}; nothing to resume yet"


def warn(message: str) -> None:
    """A legitimate but suspicious input: one line on stderr, and the run goes on."""
    print(f"ssltk: warning: {message}", file=sys.stderr, flush=True)


def check_at_least(low: int, prefix: str = "", **values: object) -> None:
    """Integer options with a lower bound (``prefix`` is the option's group, e.g. ``trainer.``); None is unset."""
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SsltkError(f"--{prefix}{name} must be an integer >= {low}, got {value!r}")
