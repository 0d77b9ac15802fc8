"""Error slices: the subgroups where a model does significantly worse than on the other rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlre.evaluate.diagnostics import Diagnostic
from mlre.evaluate.metrics import EPS
from mlre.findings import Finding, Severity


def row_losses(task: str, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Each row's loss: log loss of the true class (classification), squared error (regression)."""
    if task == "regression":
        return (np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)) ** 2
    p = np.clip(np.asarray(pred)[np.arange(len(y)), y], EPS, 1.0)
    return -np.log(p)


def groups_of(values: pd.Series, q: int = 4) -> pd.Series | None:
    """Groups of a column for slicing: categories as they are (the most frequent ones), numbers in
    quantile ranges; None when the column cannot be grouped usefully."""
    if (
        isinstance(values.dtype, pd.CategoricalDtype)
        or values.dtype == object
        or (pd.api.types.is_string_dtype(values.dtype))
        or pd.api.types.is_bool_dtype(values.dtype)
    ):
        labels = values.astype("string").fillna("(missing)")
        top = labels.value_counts().index[:20]
        if len(top) < 2:
            return None
        return labels.where(labels.isin(top), "(other)")
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        if numbers.nunique() <= 6:
            return numbers.astype("string").fillna("(missing)")
        binned = pd.qcut(numbers, q=q, duplicates="drop")
        if len(binned.cat.categories) < 2:
            return None
        out = binned.astype("string").fillna("(missing)")
        return out
    return None


def error_slices(
    X: pd.DataFrame,
    y: np.ndarray,
    pred: np.ndarray,
    task: str,
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
    from scipy import stats

    loss = row_losses(task, y, pred)
    n = len(loss)
    min_rows = min_rows or max(30, int(0.01 * n))
    overall = float(loss.mean())
    candidates = []
    for col in X.columns:
        groups = groups_of(X[col])
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
    worse = sorted(
        (c for c in candidates if c["p_adjusted"] < alpha and c["ratio"] >= min_ratio),
        key=lambda c: (-c["ratio"], c["p_adjusted"]),
    )
    what = "squared error" if task == "regression" else "log loss"
    findings = []
    if worse:
        shown = "; ".join(
            f"{c['feature']} = {c['group']} ({c['ratio']:.1f}x, {c['rows']} rows)"
            for c in worse[:3]
        )
        findings.append(
            Finding(
                severity=Severity.WARNING,
                check="error_slices",
                message=f"the model does significantly worse on {len(worse)} subgroup(s): {shown}",
                evidence={"slices": worse[:10], "loss": what, "overall": overall},
                fix="look at these rows: more examples of them, features that describe them, or a "
                "separate model; if a group is a protected attribute, run a fairness audit",
            )
        )
    else:
        findings.append(
            Finding(
                severity=Severity.INFO,
                check="error_slices",
                message=f"no subgroup of {min_rows}+ rows where the model does significantly worse "
                f"({len(candidates)} groups tested)",
                evidence={"tested": len(candidates)},
            )
        )
    return Diagnostic(
        "slices",
        "Error slices",
        {"loss": what, "overall": overall, "tested": len(candidates), "slices": worse[:20]},
        findings,
    )
