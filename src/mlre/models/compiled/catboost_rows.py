"""CatBoost models (mlre's adapter) predicted from the matrix, without a pandas table.

The matrix's categorical columns go back to the level text the adapter gives CatBoost, in an
object array (``CatRows``). This relies on the fitted model's categorical feature indices and on
its predict calls taking such an array and a thread count: ``guard`` checks them.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from mlre.features.transformers import ColumnStack
from mlre.models.compiled.matrix import category_columns, matrix_codes, trees_style
from mlre.models.compiled.predictor import Built, guarded
from mlre.spec import Task


def internals_problem(est: Any, task: Task) -> str | None:
    """What in mlre's CatBoost adapter ``est`` or its fitted CatBoost model is not as the
    compiled path reads it; None when all is."""
    model = getattr(est, "model_", None)
    if model is None:
        return "the adapter has no fitted CatBoost model (model_)"
    if not callable(getattr(model, "get_cat_feature_indices", None)):
        return f"{type(model).__name__} has no get_cat_feature_indices"
    method = "predict" if task == "regression" else "predict_proba"
    try:
        takes = inspect.signature(getattr(model, method)).parameters
    except (AttributeError, TypeError, ValueError):
        return f"{type(model).__name__} has no {method} to inspect"
    if "thread_count" not in takes:
        return f"{type(model).__name__}.{method} takes no thread_count"
    return None


def guard(est: Any, task: Task) -> bool:
    """Whether ``est``'s CatBoost model has what the compiled path reads; says what is wrong (a
    warning naming CatBoost and its version) when not."""
    return guarded("catboost", internals_problem(est, task))


class CatRows:
    """A fitted CatBoost model fed from the matrix: its categorical columns back to the level
    text its adapter gives it (``CatBoostModel._frame``: the encoder's level, "nan" when missing),
    in an object array instead of a pandas table. One row: ~7.5 ms through the pipeline (pandas
    casts and CatBoost reading a table), ~0.1 ms for the model itself."""

    kind = "catboost"

    def __init__(self, model: Any, task: Task, positions: list[int], levels: list[np.ndarray]):
        self.model, self.task = model, task
        self.positions, self.levels = positions, levels

    @classmethod
    def of(cls, est: Any, stack: ColumnStack, task: Task) -> CatRows | None:
        """The compiled form, or None where the columns CatBoost reads as categories are not
        those of the stack's category encoder (a trees-style stack: numbers passed through,
        dates, categories)."""
        positions, levels = [], []
        for position, encoder, column in category_columns(stack):
            positions.append(position)
            # a code indexes its level; -1 (missing) the last entry
            levels.append(np.array([*map(str, encoder.levels_[column]), "nan"], dtype=object))
        if list(est.model_.get_cat_feature_indices()) != positions:
            return None
        return cls(est.model_, task, positions, levels)

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """What the adapter predicts for the table ``M`` stands for (probabilities or values)."""
        table = M.astype(object)
        codes = matrix_codes(M, self.positions)
        for k, (j, levels) in enumerate(zip(self.positions, self.levels, strict=True)):
            table[:, j] = levels[codes[:, k]]
        threads = 1 if small else -1  # waking CatBoost's threads costs more than a few rows
        if self.task == "regression":
            return np.asarray(self.model.predict(table, thread_count=threads), np.float64).ravel()
        return np.asarray(self.model.predict_proba(table, thread_count=threads), np.float64)


def build(est: Any, stack: ColumnStack, task: Task) -> Built | None:
    """The compiled form of mlre's fitted CatBoost adapter behind a trees-style stack, else
    None."""
    if not trees_style(stack) or not guard(est, task):
        return None
    rows = CatRows.of(est, stack, task)
    return None if rows is None else Built(rows)
