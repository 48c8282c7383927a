"""Progress for the long phases that have no bar of their own: start-up, loading data, extracting features, fitting
a classifier, an evaluator's work.

``with heartbeat("loading CIFAR-10"):`` shows a spinner with the elapsed time on a terminal; off a terminal (piped,
in a log file, under a scheduler) it prints a line every few seconds while the phase lasts, so that no stretch of a
run is silent for longer than that. A phase that ends (or fails) sooner prints nothing: bad input still gives one
line. ``beat.detail("batch 3/40")`` says where the phase is.
The interval is ``SSLTK_HEARTBEAT_SECONDS`` (5 by default); ``SSLTK_HEARTBEAT_SECONDS=0`` turns the lines off.
Everything goes to standard error, which the progress bar also uses, so standard output stays the command's answer.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional

from rich.console import Console

_local = threading.local()


def interval() -> float:
    """Seconds between two lines off a terminal (``SSLTK_HEARTBEAT_SECONDS``, default 5; 0 turns them off)."""
    try:
        return max(float(os.environ.get("SSLTK_HEARTBEAT_SECONDS", "5")), 0.0)
    except ValueError:
        return 5.0


class Heartbeat:
    """A phase in progress: a line every :func:`interval` seconds off a terminal, a spinner on one. A phase inside
    another speaks through the outermost, prefixed with its own name."""

    def __init__(self, what: str, enabled: bool = True, console: Optional[Console] = None):
        self.what = what
        self.console = console or Console(file=sys.stderr)
        self.every = interval()
        self.enabled = enabled and self.every > 0
        self._detail = ""
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._status = None
        self._start = 0.0
        self._outer: Optional[Heartbeat] = None

    def detail(self, text: str) -> None:
        """Where the phase is (shown with the next line or on the spinner)."""
        if self._outer is not None:  # a phase inside another speaks through the outer one
            self._outer.detail(f"{self.what}: {text}" if text else self.what)
            return
        self._detail = text
        if self._status is not None:
            self._status.update(self._line())

    def _line(self) -> str:
        took = time.monotonic() - self._start
        return f"{self.what}" + (f": {self._detail}" if self._detail else "") + f" ({took:.0f}s)"

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self.console.print(self._line(), highlight=False, soft_wrap=True)

    def __enter__(self) -> "Heartbeat":
        self._start = time.monotonic()
        stack = _stack()
        self._outer = stack[-1] if stack else None
        stack.append(self)
        if self._outer is not None:
            self._outer.detail(self.what)
            return self
        if not self.enabled:
            return self
        if self.console.is_terminal:
            self._status = self.console.status(self._line())
            self._status.start()
        else:
            self._thread = threading.Thread(target=self._tick, name="ssltk-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        stack = _stack()
        if self in stack:
            stack.remove(self)
        if self._outer is not None:
            self._outer.detail("")
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._status is not None:
            self._status.stop()


@contextmanager
def heartbeat(what: str, enabled: bool = True) -> Iterator[Heartbeat]:
    with Heartbeat(what, enabled) as beat:
        yield beat


def _stack() -> list:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


def current() -> Optional[Heartbeat]:
    """The innermost phase running on this thread, if any."""
    stack = _stack()
    return stack[-1] if stack else None


def say(detail: str) -> None:
    """Where the current phase is (``features 2,048/50,000``); nothing when no phase is running."""
    beat = current()
    if beat is not None:
        beat.detail(detail)
