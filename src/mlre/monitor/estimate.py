"""A classifier's performance on data whose labels have not arrived, estimated from its own
confidence (in the spirit of NannyML's confidence-based performance estimation, CBPE).

If the probabilities are calibrated, each unlabelled row is right with the probability the
model gives its predicted class, so the expected accuracy and the expected ROC AUC follow from
the probabilities alone. Calibration is learnt on the labelled reference (isotonic regression of
the outcome on the model's probability); under covariate shift it carries over, under concept
shift (the same inputs now mean other outcomes) nothing label-free can see the change, which is
why the estimate sits beside drift checks and real labels when they come. Intervals come from
labels drawn from the calibrated probabilities: the true score is one such draw."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

#: Simulated label draws for the interval.
DRAWS = 200


@dataclass
class Estimated:
    """An estimated metric with its 95% interval."""

    metric: str
    value: float
    low: float
    high: float
    rows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


class Calibrator:
    """Isotonic calibration of a binary classifier's positive-class probability."""

    def __init__(self) -> None:
        self.iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")

    def fit(self, p: np.ndarray, y: np.ndarray) -> Calibrator:
        self.iso.fit(np.asarray(p, dtype=float), np.asarray(y, dtype=float))
        return self

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return np.clip(self.iso.predict(np.asarray(p, dtype=float)), 0.0, 1.0)


def expected_auc(scores: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC expected when each row is positive with probability ``p`` (rows ranked by
    ``scores``): the share of (positive, negative) weight that is ordered right, ties half."""
    order = np.argsort(scores, kind="stable")
    s, q = scores[order], p[order]
    # for each row, the negative weight of rows ranked strictly below it, and of its ties
    neg = 1 - q
    uniq, start = np.unique(s, return_index=True)
    neg_by_value = np.add.reduceat(neg, start)
    below = np.r_[0.0, np.cumsum(neg_by_value)[:-1]]
    index = np.searchsorted(uniq, s)
    right = q * (below[index] + 0.5 * neg_by_value[index]) - 0.5 * q * neg  # not itself
    pairs = q.sum() * neg.sum() - np.sum(q * neg)
    return float(right.sum() / pairs) if pairs > 0 else float("nan")


def estimate_binary(
    proba: np.ndarray,
    calibrator: Calibrator | None,
    *,
    threshold: float = 0.5,
    seed: int = 0,
) -> dict[str, Estimated]:
    """Estimated accuracy and ROC AUC of positive-class probabilities ``proba`` (labels
    unknown), with 95% intervals from labels drawn from the calibrated probabilities."""
    proba = np.asarray(proba, dtype=float)
    p = calibrator(proba) if calibrator is not None else proba
    predicted = proba >= threshold
    accuracy = float(np.mean(np.where(predicted, p, 1 - p)))
    auc = expected_auc(proba, p)
    from scipy.stats import rankdata

    # the ranks of the scores do not depend on the labels: ranked once, each draw's AUC is a sum
    ranks = rankdata(proba)
    n = len(p)
    rng = np.random.default_rng(seed)
    sims: dict[str, list[float]] = {"accuracy": [], "roc_auc": []}
    for _ in range(DRAWS):
        y = rng.random(n) < p
        pos = int(y.sum())
        sims["accuracy"].append(float(np.mean(predicted == y)))
        if 0 < pos < n:
            sims["roc_auc"].append(
                float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * (n - pos)))
            )
    out = {}
    for metric, value in (("accuracy", accuracy), ("roc_auc", auc)):
        draws = np.asarray(sims[metric], dtype=float)
        draws = draws[~np.isnan(draws)]
        low, high = np.quantile(draws, [0.025, 0.975]) if len(draws) else (np.nan, np.nan)
        out[metric] = Estimated(metric, value, float(low), float(high), len(p))
    return out
