"""Target transforms for regression: a model fitted on ``log1p(y)`` whose predictions come back on
the original scale.

For a positive target with a long right tail (prices, counts, durations), squared error on the
raw scale is ruled by a few large values; fitted on the log scale, a model learns relative
differences and its errors are on the order of the values themselves. Which is better is an
empirical question, so the search tries both and keeps what scores better out of fold on the
original scale (``target_transform`` in a configuration)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

#: The configuration key that asks for a transformed target, and the transforms there are.
KEY = "target_transform"
TRANSFORMS = ("none", "log1p")
#: A target is worth trying on the log scale when it is never negative and this skewed.
MIN_SKEW = 1.0


def skewed_positive(y: np.ndarray) -> bool:
    """Whether ``y`` is never negative and has a long right tail (sample skewness above
    ``MIN_SKEW``)."""
    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    if len(y) < 20 or y.min() < 0:
        return False
    spread = y.std()
    if spread == 0:
        return False
    return float(np.mean(((y - y.mean()) / spread) ** 3)) > MIN_SKEW


def forward(y: np.ndarray | None, transform: str) -> np.ndarray | None:
    """``y`` on the scale a model is fitted on."""
    if y is None or transform == "none":
        return y
    return np.log1p(np.clip(np.asarray(y, dtype=float), 0.0, None))


class LogTarget(RegressorMixin, BaseEstimator):
    """A regressor fitted on ``log1p(y)`` (by the search, which transforms the target itself so
    that early stopping watches the same scale); it predicts ``expm1`` of its output."""

    def __init__(self, regressor: Any) -> None:
        self.regressor = regressor

    def fit(self, X: Any, y: Any) -> LogTarget:
        self.regressor.fit(X, forward(np.asarray(y), "log1p"))
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.expm1(np.asarray(self.regressor.predict(X), dtype=float))

    def __sklearn_is_fitted__(self) -> bool:
        return True


def inner(est: Any) -> Any:
    """The fitted model inside a target transform (the model itself when there is none)."""
    return est.regressor if isinstance(est, LogTarget) else est
