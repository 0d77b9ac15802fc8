"""Findings: the one way audit, diagnostics, fairness, gates and monitoring report what they see."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from typing import Any, overload

from pydantic import BaseModel, Field


class Severity(StrEnum):
    """How much a finding matters: an error blocks, a warning asks for a look, info informs."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Sort key: errors first."""
        return {"error": 0, "warning": 1, "info": 2}[self.value]


class Finding(BaseModel):
    """One thing a check saw: how bad it is, what it is, the evidence, and how to fix it."""

    severity: Severity
    check: str
    message: str
    column: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)
    fix: str | None = None

    model_config = {"frozen": True}


class Findings(Sequence[Finding]):
    """An ordered collection of findings with the summaries every consumer needs."""

    def __init__(self, items: Iterable[Finding] = ()) -> None:
        self._items = sorted(items, key=lambda f: (f.severity.rank, f.check, f.column or ""))

    @overload
    def __getitem__(self, i: int) -> Finding: ...

    @overload
    def __getitem__(self, i: slice) -> list[Finding]: ...

    def __getitem__(self, i: int | slice) -> Finding | list[Finding]:
        return self._items[i]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"Findings({self.counts()})"

    def of(self, severity: Severity | str) -> list[Finding]:
        """The findings of one severity."""
        return [f for f in self._items if f.severity == Severity(severity)]

    def by_check(self, check: str) -> list[Finding]:
        """The findings of one check id."""
        return [f for f in self._items if f.check == check]

    def counts(self) -> dict[str, int]:
        """Number of findings per severity."""
        return {s.value: len(self.of(s)) for s in Severity}

    @property
    def has_errors(self) -> bool:
        """True when any finding is an error (a gate should fail)."""
        return any(f.severity is Severity.ERROR for f in self._items)

    def to_list(self) -> list[dict[str, Any]]:
        """Plain JSON-ready dicts."""
        return [f.model_dump(mode="json") for f in self._items]

    def to_json(self, indent: int | None = 2) -> str:
        """The findings as a JSON array."""
        return json.dumps(self.to_list(), indent=indent, default=str)
