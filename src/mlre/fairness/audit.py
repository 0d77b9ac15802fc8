"""Fairness audit of a model's predictions: metrics per group of each sensitive column (and of
their intersections) with bootstrap intervals, the disparities between groups against limits,
and the features that stand in for a sensitive attribute.

Disparities come from Fairlearn (``demographic_parity_difference``, ``equalized_odds_difference``
...); group rates are bootstrapped here, all at once per group, because recomputing a
``MetricFrame`` hundreds of times would cost seconds per column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.errors import InputError
from mlre.findings import Finding, Severity
from mlre.spec import Task

#: Groups smaller than this are shown but not judged: their rates are too uncertain.
MIN_GROUP = 30

#: Default limits, used when the spec sets none: the gap in selection rate, in true and false
#: positive rates, and the four-fifths rule of US employment practice for the ratio.
DEFAULT_LIMITS = {
    "demographic_parity_difference": 0.1,
    "equalized_odds_difference": 0.1,
    "equal_opportunity_difference": 0.1,
    "demographic_parity_ratio": 0.8,
}

#: Proxies: a feature that alone predicts a sensitive attribute at least this well (ROC AUC).
PROXY_AUC = 0.8


@dataclass
class GroupMetrics:
    """One group's numbers, each with a 95% bootstrap interval ``(low, high)``."""

    column: str
    group: str
    count: int
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    small: bool


@dataclass
class Disparity:
    """A disparity between the groups of one column, and whether it breaks its limit."""

    column: str
    name: str
    value: float
    limit: float | None
    breached: bool
    judged_groups: int


@dataclass
class Proxy:
    """A feature that predicts a sensitive attribute on its own."""

    feature: str
    sensitive: str
    auc: float


@dataclass
class FairnessAudit:
    """Group metrics, disparities, proxies and the findings they give."""

    task: Task
    groups: list[GroupMetrics]
    disparities: list[Disparity]
    proxies: list[Proxy] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def breached(self) -> bool:
        return any(d.breached for d in self.disparities)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "groups": [g.__dict__ for g in self.groups],
            "disparities": [d.__dict__ for d in self.disparities],
            "proxies": [p.__dict__ for p in self.proxies],
            "findings": [f.model_dump(mode="json") for f in self.findings],
            "breached": self.breached,
        }


def sensitive_frame(
    df: pd.DataFrame, columns: list[str], intersections: bool = True
) -> pd.DataFrame:
    """The sensitive columns as text groups (missing as its own group), with their pairwise
    intersections ("sex × race") when there are several."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        from mlre.errors import did_you_mean

        raise InputError(
            f"sensitive column {missing[0]!r} is not in the data",
            hint=did_you_mean(missing[0], df.columns) or "name columns of the table",
        )
    out = pd.DataFrame(index=df.index)
    for c in columns:
        values = df[c]
        if pd.api.types.is_numeric_dtype(values.dtype) and values.nunique() > 10:
            # a number such as age: judged by quartile bands, not one group per value
            values = pd.qcut(values, 4, duplicates="drop").astype(str)
        out[c] = values.astype(object).where(values.notna(), "missing").astype(str)
        if out[c].nunique() < 2:
            raise InputError(
                f"sensitive column {c!r} has a single group ({out[c].iloc[0]!r}): there is "
                "nothing to compare it with",
                hint="audit a column whose values differ between people",
            )
    if intersections and len(columns) > 1:
        for i, a in enumerate(columns):
            for b in columns[i + 1 :]:
                out[f"{a} × {b}"] = out[a] + " & " + out[b]
    return out


def _rates(y: np.ndarray, yhat: np.ndarray) -> dict[str, float]:
    pos, neg, chosen = y == 1, y == 0, yhat == 1
    return {
        "selection_rate": float(chosen.mean()),
        "true_positive_rate": float(chosen[pos].mean()) if pos.any() else np.nan,
        "false_positive_rate": float(chosen[neg].mean()) if neg.any() else np.nan,
        "precision": float(y[chosen].mean()) if chosen.any() else np.nan,
        "accuracy": float((yhat == y).mean()),
    }


def _regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "mean_prediction": float(pred.mean()),
        "mean_error": float((pred - y).mean()),
        "mae": float(np.abs(pred - y).mean()),
    }


def _bootstrap(
    y: np.ndarray, pred: np.ndarray, fn: Any, rng: np.random.Generator, samples: int
) -> dict[str, tuple[float, float]]:
    draws = [fn(y[rows], pred[rows]) for rows in rng.integers(0, len(y), (samples, len(y)))]
    out = {}
    for key in draws[0]:
        values = np.array([d[key] for d in draws], dtype=float)
        values = values[np.isfinite(values)]
        out[key] = (
            (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))
            if len(values)
            else (np.nan, np.nan)
        )
    return out


def audit_predictions(
    y_true: np.ndarray,
    prediction: np.ndarray,
    groups: pd.DataFrame,
    *,
    task: Task,
    limits: dict[str, float] | None = None,
    samples: int = 200,
    seed: int = 0,
) -> FairnessAudit:
    """Metrics per group and disparities of ``prediction`` (0/1 labels for binary, values for
    regression) against ``y_true`` (0/1 or values), for each column of ``groups``."""
    if task == "multiclass":
        raise InputError(
            "fairness metrics are defined here for binary classification and regression",
            hint="for a multiclass model, audit one class against the rest (a binary target)",
        )
    limits = {**DEFAULT_LIMITS, **(limits or {})}
    rng = np.random.default_rng(seed)
    y = np.asarray(y_true, dtype=float)
    pred = np.asarray(prediction, dtype=float)
    fn = _rates if task == "binary" else _regression
    rows: list[GroupMetrics] = []
    disparities: list[Disparity] = []
    findings: list[Finding] = []
    for column in groups.columns:
        g = groups[column].to_numpy()
        column_rows, judged, small = _group_metrics(column, g, y, pred, fn, rng, samples)
        rows += column_rows
        findings += small
        if len(judged) < 2:
            continue
        if task == "binary":
            found, breaches = _binary_disparities(column, g, judged, y, pred, limits)
            disparities += found
            findings += breaches
        elif task == "regression":
            disparities.append(_error_disparity(column, g, judged, y, pred))
    return FairnessAudit(task, rows, disparities, [], findings)


def _group_metrics(
    column: str,
    g: np.ndarray,
    y: np.ndarray,
    pred: np.ndarray,
    fn: Any,
    rng: np.random.Generator,
    samples: int,
) -> tuple[list[GroupMetrics], list[Any], list[Finding]]:
    """Each group's metrics with bootstrap intervals, the groups large enough to be judged, and
    a finding for each group that is not."""
    rows, judged, findings = [], [], []
    for value in sorted(pd.unique(g), key=str):
        mask = g == value
        n = int(mask.sum())
        small = n < MIN_GROUP
        metrics = fn(y[mask], pred[mask])
        intervals = _bootstrap(y[mask], pred[mask], fn, rng, samples) if n > 1 else {}
        rows.append(GroupMetrics(column, str(value), n, metrics, intervals, small))
        if small:
            findings.append(
                Finding(
                    severity=Severity.INFO,
                    check="fairness_small_group",
                    column=column,
                    message=f"group {value!r} of {column} has {n} rows: shown, not judged",
                )
            )
        else:
            judged.append(value)
    return rows, judged, findings


def _error_disparity(
    column: str, g: np.ndarray, judged: list[Any], y: np.ndarray, pred: np.ndarray
) -> Disparity:
    """The gap between the judged groups' largest and smallest mean absolute error."""
    keep = np.isin(g, judged)
    errors = pd.Series(np.abs(pred - y)[keep]).groupby(g[keep]).mean()
    value = float(errors.max() - errors.min())
    return Disparity(column, "mae_difference", value, None, False, len(judged))


def _binary_disparities(
    column: str,
    g: np.ndarray,
    judged: list[Any],
    y: np.ndarray,
    pred: np.ndarray,
    limits: dict[str, float],
) -> tuple[list[Disparity], list[Finding]]:
    """Fairlearn's disparities between the judged groups, and a finding for each that breaks
    its limit."""
    from fairlearn import metrics as fm

    keep = np.isin(g, judged)
    kwargs = {"y_true": y[keep], "y_pred": pred[keep], "sensitive_features": g[keep]}
    values = {
        "demographic_parity_difference": fm.demographic_parity_difference(**kwargs),
        "demographic_parity_ratio": fm.demographic_parity_ratio(**kwargs),
        "equalized_odds_difference": fm.equalized_odds_difference(**kwargs),
        "equal_opportunity_difference": fm.equal_opportunity_difference(**kwargs),
    }
    disparities, findings = [], []
    for name, value in values.items():
        limit = limits.get(name)
        ratio = name.endswith("_ratio")
        breached = limit is not None and (value < limit if ratio else value > limit)
        disparities.append(
            Disparity(column, name, float(value), limit, bool(breached), len(judged))
        )
        if breached:
            rule = "the four-fifths rule" if name == "demographic_parity_ratio" else "its limit"
            findings.append(
                Finding(
                    severity=Severity.WARNING,
                    check=f"fairness_{name}",
                    column=column,
                    message=f"{name.replace('_', ' ')} by {column} is {value:.3f}, beyond "
                    f"{rule} ({'at least' if ratio else 'at most'} {limit:g})",
                    evidence={"value": float(value), "limit": limit, "groups": len(judged)},
                    fix="see `mlre mitigate` for models that trade a little accuracy for "
                    "smaller disparities, and check the features that stand in for the column",
                )
            )
    return disparities, findings


def find_proxies(
    X: pd.DataFrame, groups: pd.DataFrame, *, rows: int = 20_000, seed: int = 0
) -> list[Proxy]:
    """Features that predict a sensitive column by themselves: the out-of-fold ROC AUC (one class
    against the rest, averaged) of the sensitive column's frequencies in each of the feature's
    values (numbers in ten quantile bins), a one-feature model that costs a group-by."""
    if len(X) > rows:
        picked = np.random.default_rng(seed).choice(len(X), rows, replace=False)
        X, groups = X.iloc[picked], groups.iloc[picked]
    out = []
    for sensitive in [c for c in groups.columns if " × " not in c]:
        target = groups[sensitive].to_numpy()
        if pd.Series(target).value_counts().min() < 5:
            continue
        for feature in X.columns:
            if feature == sensitive:
                continue
            auc = _one_feature_auc(_bins(X[feature]), target, seed)
            if auc is not None and auc >= PROXY_AUC:
                out.append(Proxy(feature, sensitive, auc))
    return sorted(out, key=lambda p: -p.auc)


def _bins(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values.dtype) and values.nunique() > 10:
        values = pd.qcut(values, 10, duplicates="drop")
    return values.astype(str).to_numpy()


def _one_feature_auc(x: np.ndarray, target: np.ndarray, seed: int) -> float | None:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold

    classes = np.unique(target)
    oof = np.zeros((len(x), len(classes)))
    for train, test in KFold(3, shuffle=True, random_state=seed).split(x):
        counts = pd.crosstab(x[train], target[train]).reindex(columns=classes, fill_value=0) + 1
        probs = counts.div(counts.sum(axis=1), axis=0)
        prior = (
            pd.Series(target[train]).value_counts().reindex(classes, fill_value=0) + 1
        ).to_numpy()
        found = probs.reindex(x[test])
        oof[test] = np.where(found.isna().to_numpy(), prior / prior.sum(), found.to_numpy())
    try:
        if len(classes) == 2:
            return float(roc_auc_score(target == classes[1], oof[:, 1]))
        return float(roc_auc_score(target, oof, multi_class="ovr", average="macro", labels=classes))
    except ValueError:
        return None


def proxy_findings(proxies: list[Proxy]) -> list[Finding]:
    return [
        Finding(
            severity=Severity.WARNING,
            check="fairness_proxy",
            column=p.feature,
            message=f"{p.feature} predicts {p.sensitive} by itself (ROC AUC {p.auc:.2f}): leaving "
            f"{p.sensitive} out of the model does not keep it from using it",
            evidence={"sensitive": p.sensitive, "auc": p.auc},
        )
        for p in proxies
    ]
