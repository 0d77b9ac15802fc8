"""What a search job tells its user beside the scores: a holdout worse than the search
expected, and trials that lost their workers."""

from __future__ import annotations

import numpy as np

from mlre.findings import Finding, Severity
from mlre.search.trial import TrialResult
from mlre.spec import METRICS


def worker_findings(trials: list[TrialResult]) -> list[Finding]:
    """What the run should say about fits whose worker process died."""
    retried = [t for t in trials if t.retries]
    lost = [t for t in trials if t.worker_lost]
    if not retried and not lost:
        return []
    saved = [t for t in retried if t not in lost]
    parts = []
    if saved:
        parts.append(f"{len(saved)} trial(s) lost a worker and finished on another")
    if lost:
        parts.append(f"{len(lost)} trial(s) lost workers twice and are recorded as failed")
    return [
        Finding(
            severity=Severity.WARNING,
            check="worker_lost",
            message="; ".join(parts),
            evidence={
                "retried": [t.id for t in saved],
                "failed": {t.id: t.error for t in lost},
            },
            fix="check the cluster's nodes (memory, preemption); the rest of the search is sound",
        )
    ]


def gap_findings(
    search_score: float,
    holdout_score: float,
    interval: tuple[float, float] | None,
    metric: str,
) -> list[Finding]:
    """A holdout score worse than the search expected, beyond the noise of both sets of rows
    (or, with no range to judge by, more than 5% worse), means the search overfitted its folds
    or the holdout differs from the training rows."""
    _, greater = METRICS[metric]
    s, h = search_score, holdout_score
    worse_by = (s - h) if greater else (h - s)
    scale = max(abs(s), 1e-9)
    if interval is not None and all(np.isfinite(interval)):
        worse = h < interval[0] if greater else h > interval[1]
        expected = f"; the search expected {interval[0]:.4f} to {interval[1]:.4f}"
    else:
        worse, expected = worse_by / scale > 0.05, ""
    if worse:
        return [
            Finding(
                severity=Severity.WARNING,
                check="search_holdout_gap",
                message=f"the holdout {metric} ({h:.4f}) is {100 * worse_by / scale:.1f}% worse than the "
                f"search estimate ({s:.4f}){expected}",
                evidence={"search": s, "holdout": h, "expected": interval},
                fix="the search overfitted its folds or the holdout differs from training; "
                "trust the holdout number, and check for drift or leakage across the split",
            )
        ]
    return []
