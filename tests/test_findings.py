"""Findings sort errors first and summarise themselves for gates and reports."""

from __future__ import annotations

import json

from mlre.findings import Finding, Findings, Severity


def test_findings_sort_and_count():
    items = Findings(
        [
            Finding(severity=Severity.INFO, check="b", message="i"),
            Finding(severity=Severity.ERROR, check="a", message="e", column="x"),
            Finding(severity=Severity.WARNING, check="c", message="w"),
        ]
    )
    assert [f.severity for f in items] == [Severity.ERROR, Severity.WARNING, Severity.INFO]
    assert items.counts() == {"error": 1, "warning": 1, "info": 1}
    assert items.has_errors and not Findings(items.of("info")).has_errors
    assert json.loads(items.to_json())[0] == {
        "severity": "error",
        "check": "a",
        "message": "e",
        "column": "x",
        "evidence": {},
        "fix": None,
    }
