"""The data audit: every check a careful engineer runs before learning from a table."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from mlre.data.audit import columns, shift, target, text, time
from mlre.data.audit.context import AuditContext
from mlre.findings import Finding, Findings

log = logging.getLogger(__name__)

Check = Callable[[AuditContext], Iterable[Finding]]

#: Every check, cheapest first. Ids are stable: reports, tests and users refer to them.
CHECKS: list[tuple[str, Check]] = [
    ("missing values", columns.missing_values),
    ("disguised missing values", columns.disguised_missing),
    ("constant columns", columns.constant_columns),
    ("identifiers", columns.identifiers),
    ("high cardinality", columns.high_cardinality),
    ("infinite values", columns.infinite_values),
    ("mixed types", columns.mixed_types),
    ("outliers", columns.outliers),
    ("dates", columns.datetime_problems),
    ("times", time.unplaceable_times),
    ("time order", time.time_order),
    ("text", text.text_columns),
    ("duplicate rows", columns.duplicate_rows),
    ("duplicate columns", columns.duplicate_columns),
    ("missing target", target.missing_target),
    ("class balance", target.class_balance),
    ("rows per feature", target.too_few_rows),
    ("target leakage", target.target_leakage),
    ("label issues", target.label_issues),
    ("test schema", shift.schema_mismatch),
    ("train/test overlap", shift.train_test_overlap),
    ("distribution shift", shift.distribution_shift),
    ("unseen categories", shift.unseen_categories),
]


def run_checks(ctx: AuditContext, progress: Callable[[str], None] | None = None) -> Findings:
    """Run every audit check on ``ctx`` and collect the findings."""
    found: list[Finding] = []
    for label, check in CHECKS:
        if progress is not None:
            progress(label)
        found.extend(check(ctx))
    return Findings(found)


__all__ = ["CHECKS", "AuditContext", "run_checks"]
