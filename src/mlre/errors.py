"""Errors a person can act on: every failure mlre reports is an ``MlreError``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MlreError(Exception):
    """An error with a message a person can act on and a hint on how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"

    def __reduce__(self) -> tuple:
        # raised in a worker process (a Ray task), it arrives with its hint
        return (type(self), (self.message, self.hint))


class InputError(MlreError):
    """The data given to mlre cannot be read or cannot be used as asked."""


class SpecError(MlreError):
    """The objective spec (mlre.yaml or CLI flags) is invalid."""


class TrackingError(MlreError):
    """The experiment store could not be reached or written."""


class GateError(MlreError):
    """A check that guards the next step failed (for example the audit before a run)."""

    exit_code = 1


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The names in ``choices`` closest to ``name``, best first (case-insensitive)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    by_substring = [c for c in choices if name.lower() in c.lower() or c.lower() in name.lower()]
    out: list[str] = []
    for c in [lowered[h] for h in hits] + by_substring:
        if c not in out:
            out.append(c)
    return out[:n]


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint, or None when nothing is close."""
    near = closest(name, choices)
    if not near:
        return None
    return "did you mean " + " or ".join(repr(c) for c in near) + "?"
