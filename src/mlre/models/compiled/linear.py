"""scikit-learn's linear models on a dense-style stack, predicted from the matrix.

The numeric part runs its fitted imputer and scaler on arrays, the categorical part becomes a
table lookup learned from its own imputer and one-hot encoder, dates go through their calendar
features then the numeric steps on arrays (``matrix``), and the model predicts the matrix (one
row of a linear member: 7.7 ms through the pipeline, most of it pandas and the encoder's checks;
1.6 ms this way, coercion included). Only public attributes of the model are read: no guard.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from mlre.features.transformers import ColumnStack
from mlre.models.compiled.matrix import dense_style
from mlre.models.compiled.predictor import Built
from mlre.spec import Task


class DensePredictor:
    """A fitted linear model that predicts the matrix of a dense-style stack."""

    kind = "dense"

    def __init__(self, est: Any, task: Task) -> None:
        # a copy that predicts arrays without warning that it was fitted on a table with
        # column names (the copy's values are the estimator's own)
        self.est = copy.deepcopy(est)
        self.est.__dict__.pop("feature_names_in_", None)
        self.task = task

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """The model's probabilities or values for the rows of ``M``."""
        # column-major, as the pipeline's table reaches the model: the product's rounding
        # follows the layout, and this keeps it the pipeline's own to the bit
        M = np.asfortranarray(M)
        if self.task == "regression":
            return np.asarray(self.est.predict(M), dtype=np.float64).ravel()
        return np.asarray(self.est.predict_proba(M), dtype=np.float64)


def linear_model(est: Any) -> bool:
    """A fitted scikit-learn linear model (its prediction a product of the matrix and its
    coefficients)."""
    return type(est).__module__.startswith("sklearn.linear_model.") and hasattr(est, "coef_")


def build(est: Any, stack: ColumnStack, task: Task) -> Built | None:
    """The compiled form of a fitted linear model behind a dense-style stack, else None."""
    if not linear_model(est) or not dense_style(stack):
        return None
    return Built(DensePredictor(est, task))
