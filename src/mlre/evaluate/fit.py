"""Over- and underfitting, and whether more data would help (learning curves)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mlre.evaluate.diagnostics import Diagnostic, bootstrap_ci
from mlre.evaluate.metrics import Metric
from mlre.findings import Finding, Severity


def fit_diagnosis(
    metric: Metric,
    *,
    train_score: float,
    holdout_score: float,
    baseline_score: float,
    holdout_interval: tuple[float, float] | None = None,
) -> Diagnostic:
    """Over- or underfitting, from the score on rows the model trained on, the holdout score and
    the naive baseline's.

    Overfitting: the training score is much better than the holdout score (the model memorised).
    Underfitting: the model barely beats the naive baseline, and not on its training rows either.
    """
    sign = 1 if metric.greater_is_better else -1
    gap = sign * (train_score - holdout_score)  # > 0: better on training rows
    lift = sign * (holdout_score - baseline_score)  # > 0: better than the baseline
    train_lift = sign * (train_score - baseline_score)
    room = abs(baseline_score - (1.0 if metric.greater_is_better else 0.0)) or 1.0
    scale = max(abs(holdout_score), 1e-9)
    data: dict[str, Any] = {
        "train": train_score,
        "holdout": holdout_score,
        "baseline": baseline_score,
        "gap": gap,
        "lift": lift,
    }
    if holdout_interval is not None:
        data["holdout_interval"] = list(holdout_interval)
    findings = []
    # no signal first: a model that learnt nothing can still score a little better on its
    # training rows, which is not the memorising that overfitting means
    if lift / room < 0.05 and train_lift / room < 0.1:
        verdict = "underfitting"
        findings.append(
            Finding(
                severity=Severity.WARNING,
                check="underfitting",
                message=f"the model barely beats a naive baseline ({holdout_score:.4f} against "
                f"{baseline_score:.4f} {metric.name}) and does no better on its own training rows",
                evidence=data,
                fix="the features may not carry the signal: add informative features, check the "
                "target, or allow more flexible models and a longer search",
            )
        )
    elif gap / scale > 0.1 or (
        metric.name in ("roc_auc", "accuracy", "balanced_accuracy", "f1", "r2") and gap > 0.1
    ):
        verdict = "overfitting"
        findings.append(
            Finding(
                severity=Severity.WARNING,
                check="overfitting",
                message=f"the model scores {train_score:.4f} {metric.name} on rows it trained "
                f"on but {holdout_score:.4f} on the holdout: it memorises its training data",
                evidence=data,
                fix="more regularisation (shallower trees, fewer leaves, more rows per leaf, "
                "stronger penalties), fewer features, or more data",
            )
        )
    else:
        verdict = "good fit"
        findings.append(
            Finding(
                severity=Severity.INFO,
                check="fit",
                message=f"no sign of over- or underfitting: {train_score:.4f} on training rows, "
                f"{holdout_score:.4f} on the holdout, {baseline_score:.4f} for a naive baseline",
                evidence=data,
            )
        )
    data["verdict"] = verdict
    return Diagnostic("fit", "Over- and underfitting", data, findings)


def learning_curve_verdict(
    metric: Metric, sizes: list[int], scores: list[float], noise: float
) -> Diagnostic:
    """Whether more data would help, from holdout scores of the same configuration trained on
    growing parts of the training data.

    More data helps when the recent trend still adds, per doubling of the rows, more than the
    noise of the holdout estimate (``noise``: a standard error of the metric) and more than 0.5%.
    """
    sign = 1 if metric.greater_is_better else -1
    data: dict[str, Any] = {"sizes": sizes, "scores": scores, "noise": noise}
    findings: list[Finding] = []
    if len(scores) < 2:
        data["verdict"] = "unknown"
        return Diagnostic("learning_curve", "Learning curve", data, findings)
    # the recent trend, per doubling of the rows: a least-squares line through the last three
    # points on a log scale is steadier than the last step alone
    recent = slice(-3, None)
    slope = float(np.polyfit(np.log2(sizes[recent]), scores[recent], 1)[0])
    gain = sign * slope
    data["gain_per_doubling"] = slope
    if gain > max(noise, 0.005 * abs(scores[-1])):
        data["verdict"] = "more data would help"
        findings.append(
            Finding(
                severity=Severity.WARNING,
                check="more_data_would_help",
                message=f"the score is still climbing: from {sizes[-2]:,} to {sizes[-1]:,} "
                f"training rows {metric.name} went from {scores[-2]:.4f} to {scores[-1]:.4f}, "
                f"about {abs(slope):.4f} per doubling of the rows; more data would help",
                evidence=data,
                fix="collect more labelled rows of the same kind; the curve suggests the gain "
                "continues",
            )
        )
    else:
        data["verdict"] = "plateau"
        findings.append(
            Finding(
                severity=Severity.INFO,
                check="learning_curve_plateau",
                message=f"the score has levelled off ({metric.name} {scores[-2]:.4f} with "
                f"{sizes[-2]:,} training rows, {scores[-1]:.4f} with {sizes[-1]:,}): more rows "
                "of the same kind are unlikely to help much, better features might",
                evidence=data,
            )
        )
    return Diagnostic("learning_curve", "Learning curve", data, findings)


def learning_curve(
    fit_predict: Callable[[np.ndarray], np.ndarray],
    n_train: int,
    y_hold: np.ndarray,
    metric: Metric,
    *,
    fractions: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0),
    deadline: float = float("inf"),
    seed: int = 0,
    seconds_per_row: float | None = None,
    latest_first: bool = False,
) -> Diagnostic:
    """Holdout score of one configuration trained on growing random parts of the training rows
    (``latest_first``, for rows in time order: growing windows of the latest rows, reaching back
    from the holdout).

    ``fit_predict(rows)`` fits on the training rows at positions ``rows`` and returns predictions
    for the holdout. Each part contains the smaller ones, so the curve shows the effect of adding
    rows and nothing else. Sizes that cannot be fitted before ``deadline`` are left out, largest
    first (``seconds_per_row``, a fit's known cost, keeps even the first from overrunning); a
    part the model cannot be fitted on (e.g. one class only) is skipped.
    """
    rng = np.random.default_rng(seed)
    order = np.arange(n_train)[::-1] if latest_first else rng.permutation(n_train)
    sizes: list[int] = []
    scores: list[float] = []
    last_pred = None
    started = time.monotonic()
    for f in fractions:
        size = max(20, round(f * n_train))
        if size > n_train or (sizes and size == sizes[-1]):
            continue
        # fit times grow about linearly with rows: stop before a part that would not finish,
        # judged by the fits so far or, before the first, by ``seconds_per_row`` if known
        so_far = (time.monotonic() - started) / sum(sizes) if sizes else seconds_per_row or 0.0
        if time.monotonic() + so_far * size > deadline:
            break
        try:
            pred = fit_predict(np.sort(order[:size]))
            score = metric(y_hold, pred)
        except ValueError:
            continue
        sizes.append(size)
        scores.append(float(score))
        last_pred = pred
    noise = 0.0
    if last_pred is not None:
        low, high = bootstrap_ci(metric, y_hold, last_pred, n_boot=200, level=0.68, seed=seed)
        noise = float((high - low) / 2) if np.isfinite(high - low) else 0.0
    return learning_curve_verdict(metric, sizes, scores, noise)
