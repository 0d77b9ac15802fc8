"""Metrics on mlre's prediction format: class probabilities for classification, values for regression.

Every metric also has a loss form (lower is better) so the search can minimise one number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlre.spec import METRICS, Task

EPS = 1e-15


@dataclass(frozen=True)
class Metric:
    """A named score, whether larger is better, and how to compute it."""

    name: str
    greater_is_better: bool
    fn: Callable[[np.ndarray, np.ndarray], float]

    def __call__(self, y: np.ndarray, pred: np.ndarray) -> float:
        """Score predictions ``pred`` (probabilities or values) against encoded targets ``y``."""
        return float(self.fn(y, pred))

    def loss(self, y: np.ndarray, pred: np.ndarray) -> float:
        """The score as a loss: lower is better."""
        value = self(y, pred)
        return -value if self.greater_is_better else value

    def to_score(self, loss: float) -> float:
        """Turn a loss back into the metric's own scale."""
        return -loss if self.greater_is_better else loss


def _labels(proba: np.ndarray) -> np.ndarray:
    return np.asarray(proba).argmax(axis=1)


def binary_roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of a 0/1 target, as the Mann-Whitney statistic with tied scores sharing ranks.

    The same number as ``sklearn.metrics.roc_auc_score``, in a fraction of its time: the
    ensemble selection computes it hundreds of times on every out-of-fold prediction.
    """
    positive = np.asarray(y) == 1
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both classes in the target")
    score = np.asarray(score, dtype=float)
    order = np.argsort(score, kind="mergesort")
    ordered = score[order]
    edges = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1], True])
    # 1-based average rank of each run of equal scores
    ranks = np.empty(len(score))
    ranks[order] = np.repeat((edges[:-1] + edges[1:] + 1) / 2.0, np.diff(edges))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    if proba.shape[1] == 2:
        return binary_roc_auc(y, proba[:, 1])
    present = np.unique(y)
    # one-vs-rest over the classes present, on probabilities renormalised to them
    sub = proba[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), EPS, None)
    remap = np.searchsorted(present, y)
    if len(present) == 2:
        return binary_roc_auc(remap, sub[:, 1])
    return float(np.mean([binary_roc_auc(remap == k, sub[:, k]) for k in range(len(present))]))


def _log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(proba[np.arange(len(y)), y], EPS, 1.0)
    return float(-np.mean(np.log(p)))


# The metrics below are the textbook formulas in numpy, with scikit-learn's conventions (the
# tests check them against scikit-learn): ensemble selection and bootstrap intervals call them
# thousands of times, where scikit-learn's input validation would cost more than the arithmetic.


def _accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(_labels(proba) == y))


def _balanced_accuracy(y: np.ndarray, proba: np.ndarray) -> float:
    labels = _labels(proba)
    return float(np.mean([np.mean(labels[y == c] == c) for c in np.unique(y)]))


def _f1_of(y: np.ndarray, labels: np.ndarray, c: int) -> float:
    tp = np.sum((labels == c) & (y == c))
    wrong = np.sum((labels == c) != (y == c))  # false positives and false negatives
    return float(2 * tp / (2 * tp + wrong)) if tp + wrong else 0.0


def _f1(y: np.ndarray, proba: np.ndarray) -> float:
    labels = _labels(proba)
    if proba.shape[1] == 2:
        return _f1_of(y, labels, 1)
    present = np.union1d(np.unique(y), np.unique(labels))
    return float(np.mean([_f1_of(y, labels, c) for c in present]))


def _rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, float) - pred) ** 2)))


def _mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, float) - pred)))


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    y = np.asarray(y, float)
    residual = np.sum((y - pred) ** 2)
    total = np.sum((y - y.mean()) ** 2)
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return float(1 - residual / total)


def _mape(y: np.ndarray, pred: np.ndarray) -> float:
    y = np.asarray(y, float)
    return float(np.mean(np.abs(y - pred) / np.maximum(np.abs(y), np.finfo(np.float64).eps)))


_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "f1": _f1,
    "rmse": _rmse,
    "mae": _mae,
    "r2": _r2,
    "mape": _mape,
}


def get_metric(name: str) -> Metric:
    """The metric called ``name`` (one of ``mlre.spec.METRICS``)."""
    _, greater = METRICS[name]
    return Metric(name, greater, _FUNCTIONS[name])


def naive_prediction(task: Task, y_train: np.ndarray, n: int, n_classes: int = 0) -> np.ndarray:
    """The baseline a model must beat: class frequencies (classification) or the mean."""
    if task == "regression":
        return np.full(n, float(np.mean(y_train)))
    freq = np.bincount(y_train, minlength=n_classes) / len(y_train)
    return np.tile(freq, (n, 1))
