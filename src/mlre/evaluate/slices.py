"""Error slices: the subgroups where a model does significantly worse than on the other rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlre.evaluate.diagnostics import Diagnostic
from mlre.evaluate.groups import slice_groups
from mlre.evaluate.metrics import EPS
from mlre.findings import Finding, Severity
from mlre.spec import Task


def row_losses(task: Task, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Each row's loss: log loss of the true class (classification), squared error (regression)."""
    if task == "regression":
        return (np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)) ** 2
    p = np.clip(np.asarray(pred)[np.arange(len(y)), y], EPS, 1.0)
    return -np.log(p)


def error_slices(
    X: pd.DataFrame,
    y: np.ndarray,
    pred: np.ndarray,
    task: Task,
    *,
    min_rows: int | None = None,
    alpha: float = 0.05,
    min_ratio: float = 1.25,
) -> Diagnostic:
    """Subgroups (a category's value, or a quantile range of a number) where the model does
    significantly worse than on the other rows.

    For every group of at least ``min_rows`` rows, its mean per-row loss is compared with the rest
    by Welch's t-test; p-values are adjusted over all groups (Benjamini-Hochberg), and a group is
    reported when the adjusted p-value is below ``alpha`` and its mean loss is at least
    ``min_ratio`` times the rest's.
    """
    loss = row_losses(task, y, pred)
    min_rows = min_rows or max(30, int(0.01 * len(loss)))
    overall = float(loss.mean())
    candidates = _tested_groups(X, loss, min_rows)
    worse = sorted(
        (c for c in candidates if c["p_adjusted"] < alpha and c["ratio"] >= min_ratio),
        key=lambda c: (-c["ratio"], c["p_adjusted"]),
    )
    what = "squared error" if task == "regression" else "log loss"
    return Diagnostic(
        "slices",
        "Error slices",
        {"loss": what, "overall": overall, "tested": len(candidates), "slices": worse[:20]},
        [_slices_finding(worse, len(candidates), what, overall, min_rows)],
    )


def _tested_groups(X: pd.DataFrame, loss: np.ndarray, min_rows: int) -> list[dict[str, Any]]:
    """Every group of every column with ``min_rows`` rows inside and out: its mean loss against
    the rest's, with the one-sided Welch p-value and its Benjamini-Hochberg adjustment."""
    from scipy import stats

    n = len(loss)
    candidates = []
    for col in X.columns:
        groups = slice_groups(X[col])
        if groups is None:
            continue
        codes = groups.to_numpy()
        for value in pd.unique(codes):
            inside = codes == value
            k = int(inside.sum())
            if k < min_rows or n - k < min_rows:
                continue
            a, b = loss[inside], loss[~inside]
            t = stats.ttest_ind(a, b, equal_var=False, alternative="greater")
            candidates.append(
                {
                    "feature": col,
                    "group": str(value),
                    "rows": k,
                    "mean_loss": float(a.mean()),
                    "rest_loss": float(b.mean()),
                    "ratio": float(a.mean() / max(b.mean(), EPS)),
                    "p_value": float(t.pvalue) if np.isfinite(t.pvalue) else 1.0,
                }
            )
    if candidates:
        adjusted = stats.false_discovery_control([c["p_value"] for c in candidates])
        for c, p in zip(candidates, adjusted, strict=True):
            c["p_adjusted"] = float(p)
    return candidates


def _slices_finding(
    worse: list[dict[str, Any]], tested: int, what: str, overall: float, min_rows: int
) -> Finding:
    """The groups where the model does worse (a warning), or that none was found."""
    if worse:
        shown = "; ".join(
            f"{c['feature']} = {c['group']} ({c['ratio']:.1f}x, {c['rows']} rows)"
            for c in worse[:3]
        )
        return Finding(
            severity=Severity.WARNING,
            check="error_slices",
            message=f"the model does significantly worse on {len(worse)} subgroup(s): {shown}",
            evidence={"slices": worse[:10], "loss": what, "overall": overall},
            fix="look at these rows: more examples of them, features that describe them, or a "
            "separate model; if a group is a protected attribute, run a fairness audit",
        )
    return Finding(
        severity=Severity.INFO,
        check="error_slices",
        message=f"no subgroup of {min_rows}+ rows where the model does significantly worse "
        f"({tested} groups tested)",
        evidence={"tested": tested},
    )
