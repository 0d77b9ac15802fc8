"""Diagnostics of a fitted model on data it never saw: confidence intervals, calibration, curves
and residuals. Each ends in findings with a verdict (fit and learning curves: ``fit.py``; error
slices: ``slices.py``).

Every function takes encoded targets (class codes ``0..k-1`` or floats) and mlre's prediction
format (class probabilities, or values for regression), and returns a :class:`Diagnostic` whose
``data`` is plain JSON, so a report can be rebuilt later without the model or the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.evaluate.groups import slice_groups
from mlre.evaluate.metrics import Metric, binary_roc_auc
from mlre.findings import Finding, Severity

#: Points kept on a curve: enough to draw it, few enough to keep the report small.
CURVE_POINTS = 200


@dataclass
class Diagnostic:
    """One diagnostic: what it shows (JSON-ready ``data``) and what it concludes."""

    name: str
    title: str
    data: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "title": self.title,
            "data": self.data,
            "findings": [f.model_dump(mode="json") for f in self.findings],
        }


# --------------------------------------------------------------------------- confidence


def resampled(
    metric: Metric, y: np.ndarray, pred: np.ndarray, n_boot: int, take: int, seed: int
) -> list[float]:
    """``metric`` on ``n_boot`` resamples of ``take`` rows drawn with replacement; resamples
    where it is undefined (e.g. one class only, for ROC AUC) are skipped."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), take)
        try:
            values.append(metric(y[idx], pred[idx]))
        except ValueError:
            continue
    return values


def bootstrap_ci(
    metric: Metric,
    y: np.ndarray,
    pred: np.ndarray,
    *,
    n_boot: int = 400,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` over the rows (resampled with replacement)."""
    values = resampled(metric, y, pred, n_boot, len(y), seed)
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_se(
    metric: Metric,
    y: np.ndarray,
    pred: np.ndarray,
    *,
    n_boot: int = 100,
    rows: int = 5_000,
    seed: int = 0,
) -> float:
    """Bootstrap standard error of ``metric`` over the rows; resamples of at most ``rows`` rows,
    their spread scaled to the whole (an error shrinks with the square root of the rows)."""
    take = min(len(y), rows)
    values = resampled(metric, y, pred, n_boot, take, seed)
    if len(values) < 2:
        return float("nan")
    return float(np.std(values, ddof=1) * np.sqrt(take / len(y)))


def expected_range(
    metric: Metric,
    estimate: float,
    searched: tuple[np.ndarray, np.ndarray],
    holdout: tuple[np.ndarray, np.ndarray],
    *,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Where a holdout score is expected to fall, given the search's out-of-fold ``estimate``:
    the estimate plus or minus the noise of both samples of rows (``searched``: the target and
    out-of-fold predictions; ``holdout``: the target and the model's predictions there), each
    a bootstrap standard error. A holdout score outside it says more than sampling noise: the
    search fitted its folds, or the holdout differs from the training rows."""
    from statistics import NormalDist

    noise = np.hypot(bootstrap_se(metric, *searched, seed=seed),
                     bootstrap_se(metric, *holdout, seed=seed + 1))  # fmt: skip
    half = NormalDist().inv_cdf(0.5 + level / 2) * float(noise)
    return estimate - half, estimate + half


def holdout_intervals(
    metrics: list[Metric], y: np.ndarray, pred: np.ndarray, seed: int = 0
) -> Diagnostic:
    """Each metric's holdout value with its bootstrap 95% interval (the first one's from more
    resamples)."""
    rows = []
    for i, m in enumerate(metrics):
        try:
            value = m(y, pred)
        except ValueError:
            continue
        # the first metric is the one the search optimised: its interval gets more resamples
        low, high = bootstrap_ci(m, y, pred, n_boot=400 if i == 0 else 200, seed=seed)
        rows.append({"metric": m.name, "value": value, "low": low, "high": high})
    return Diagnostic("intervals", "Holdout metrics with 95% bootstrap intervals", {"rows": rows})


# --------------------------------------------------------------------------- calibration


def calibration(y: np.ndarray, proba: np.ndarray, *, bins: int = 10) -> Diagnostic:
    """Reliability of the predicted probabilities: binned predicted vs observed rates, Brier score
    and expected calibration error (ECE).

    Binary: the positive class's probability. Multiclass: the confidence of the predicted class
    against how often it is right.
    """
    proba = np.asarray(proba, dtype=float)
    if proba.shape[1] == 2:
        p, hit, kind = proba[:, 1], (y == 1).astype(float), "positive class"
    else:
        p, hit, kind = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float), "top class"
    onehot = np.eye(proba.shape[1])[y]
    brier = float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))
    # quantile bins: every bin holds about the same number of rows
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(0, len(edges) - 2))
    table = []
    ece = 0.0
    for b in np.unique(which):
        inside = which == b
        mean_p, rate = float(p[inside].mean()), float(hit[inside].mean())
        table.append({"predicted": mean_p, "observed": rate, "rows": int(inside.sum())})
        ece += inside.mean() * abs(mean_p - rate)
    findings = []
    if ece > 0.05:
        findings.append(
            Finding(
                severity=Severity.WARNING,
                check="miscalibrated",
                message=f"predicted probabilities are off by {ece:.3f} on average (expected "
                "calibration error): they should not be read as probabilities as they are",
                evidence={"ece": ece, "brier": brier},
                fix="recalibrate (isotonic or Platt scaling on held-out data) before using the "
                "probabilities for decisions that depend on their values",
            )
        )
    else:
        findings.append(
            Finding(
                severity=Severity.INFO,
                check="calibration",
                message=f"predicted probabilities are well calibrated (expected calibration "
                f"error {ece:.3f}, Brier score {brier:.4f})",
                evidence={"ece": ece, "brier": brier},
            )
        )
    return Diagnostic(
        "calibration",
        "Calibration",
        {"bins": table, "brier": brier, "ece": float(ece), "of": kind},
        findings,
    )


# --------------------------------------------------------------------------- curves


def _thin(*columns: np.ndarray) -> list[list[float]]:
    """At most CURVE_POINTS points of a curve, first and last kept."""
    n = len(columns[0])
    keep = np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
    return [[round(float(c[i]), 6) for i in keep] for c in columns]


def _roc_points(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-score, kind="mergesort")
    s, pos = score[order], positive[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last row of each run of equal scores
    tp, fp = np.cumsum(pos)[last], np.cumsum(1 - pos)[last]
    tpr = np.r_[0.0, tp / max(tp[-1], 1)]
    fpr = np.r_[0.0, fp / max(fp[-1], 1)]
    return fpr, tpr


def _pr_points(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-score, kind="mergesort")
    s, pos = score[order], positive[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(pos)[last]
    predicted = last + 1.0
    precision = tp / predicted
    recall = tp / max(pos.sum(), 1)
    return np.r_[0.0, recall], np.r_[1.0, precision]


def classification_curves(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> Diagnostic:
    """Confusion matrix (at the most probable class), ROC and precision-recall curves (binary:
    the positive class; multiclass: one curve per class against the rest)."""
    proba = np.asarray(proba, dtype=float)
    k = proba.shape[1]
    predicted = proba.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (y, predicted), 1)
    curves = []
    for c in [1] if k == 2 else range(k):
        positive = y == c
        if positive.all() or not positive.any():
            continue
        fpr, tpr = _roc_points(positive, proba[:, c])
        recall, precision = _pr_points(positive, proba[:, c])
        fpr_t, tpr_t = _thin(fpr, tpr)
        rec_t, prec_t = _thin(recall, precision)
        curves.append(
            {
                "class": classes[c],
                "auc": binary_roc_auc(positive, proba[:, c]),
                "average_precision": float(np.sum(np.diff(recall) * precision[1:])),
                "prevalence": float(positive.mean()),
                "roc": {"fpr": fpr_t, "tpr": tpr_t},
                "pr": {"recall": rec_t, "precision": prec_t},
            }
        )
    per_class: list[dict[str, Any]] = []
    for c in range(k):
        support = int(confusion[c].sum())
        tp = int(confusion[c, c])
        per_class.append(
            {
                "class": classes[c],
                "support": support,
                "recall": tp / support if support else None,
                "precision": tp / confusion[:, c].sum() if confusion[:, c].sum() else None,
            }
        )
    findings = []
    weak = [r for r in per_class if r["support"] >= 10 and (r["recall"] or 0) < 0.2]
    if weak and k > 2:
        names = ", ".join(str(r["class"]) for r in weak[:5])
        findings.append(
            Finding(
                severity=Severity.WARNING,
                check="weak_classes",
                message=f"the model rarely predicts class(es) {names} correctly (recall below 20%)",
                evidence={"classes": weak[:5]},
                fix="more examples of these classes, class weights, or a threshold per class",
            )
        )
    return Diagnostic(
        "curves",
        "Confusion matrix, ROC and precision-recall curves",
        {
            "classes": classes,
            "confusion": confusion.tolist(),
            "accuracy": float((predicted == y).mean()),
            "per_class": per_class,
            "curves": curves,
        },
        findings,
    )


# --------------------------------------------------------------------------- regression


def residuals(y: np.ndarray, pred: np.ndarray, X: pd.DataFrame, *, seed: int = 0) -> Diagnostic:
    """Residuals (actual - predicted) against the prediction and by the most telling features;
    a residual that trends with the prediction means the model is biased in that range."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    res = y - pred
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(y), size=min(len(y), 2000), replace=False))
    # mean residual by prediction decile: a well specified model is centred everywhere
    deciles = pd.qcut(pred, q=min(10, len(np.unique(pred))), duplicates="drop")
    by_pred = pd.Series(res).groupby(np.asarray(deciles.codes), observed=True)
    bands = [
        {
            "from": float(deciles.categories[code].left),
            "to": float(deciles.categories[code].right),
            "mean_residual": float(r.mean()),
            "rows": len(r),
        }
        for code, r in by_pred
        if code >= 0
    ]
    spread = float(np.std(res)) or 1.0
    biased = [b for b in bands if b["rows"] >= 20 and abs(b["mean_residual"]) > 0.25 * spread]
    findings = []
    if biased:
        worst = max(biased, key=lambda b: abs(b["mean_residual"]))
        side = "under" if worst["mean_residual"] > 0 else "over"
        findings.append(
            Finding(
                severity=Severity.WARNING,
                check="residual_bias",
                message=f"the model {side}-predicts by {abs(worst['mean_residual']):.4g} on "
                f"average when it predicts {worst['from']:.4g} to {worst['to']:.4g}",
                evidence={"bands": biased[:5], "residual_sd": spread},
                fix="a transformed target (e.g. log for skewed values), more flexible models or "
                "features that explain that range",
            )
        )
    by_feature = []
    for col in X.columns:
        bins = slice_groups(X[col])
        if bins is None:
            continue
        groups = (
            pd.Series(np.abs(res)).groupby(bins.to_numpy(), observed=True).agg(["mean", "size"])
        )
        groups = groups[groups["size"] >= 10]
        if len(groups) < 2:
            continue
        by_feature.append(
            {
                "feature": col,
                "spread": float(groups["mean"].max() - groups["mean"].min()),
                "groups": [
                    {"group": str(g), "mean_abs_residual": float(r["mean"]), "rows": int(r["size"])}
                    for g, r in groups.iterrows()
                ],
            }
        )
    by_feature.sort(key=lambda f: -f["spread"])
    return Diagnostic(
        "residuals",
        "Residuals",
        {
            "points": {
                "predicted": pred[sample].round(6).tolist(),
                "residual": res[sample].round(6).tolist(),
            },
            "bands": bands,
            "by_feature": by_feature[:4],
            "rmse": float(np.sqrt(np.mean(res**2))),
            "mean_residual": float(res.mean()),
        },
        findings,
    )
