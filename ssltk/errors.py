"""User-facing errors.

Anything raised as :class:`SsltkError` is a problem with the user's input (a name, a path, a value), not a bug.
The CLI prints it as a single line and exits with status 2 instead of showing a traceback.
"""
from __future__ import annotations


class SsltkError(Exception):
    """An error caused by the user's input, shown as one readable line."""


class UnknownNameError(SsltkError, KeyError):
    """A registry lookup failed; the message carries close matches."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""
