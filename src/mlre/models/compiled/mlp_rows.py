"""mlre's PyTorch MLP predicted from the matrix, without the stack's pandas table.

Its numeric columns and category codes are taken from the matrix by position (``MlpRows``) and
go to the network through the estimator's array entry point. This relies on the fitted network
being a PyTorch module and on the estimator's fitted column lists: ``guard`` checks them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlre.features.transformers import ColumnStack
from mlre.models.compiled.matrix import category_columns, matrix_codes, trees_style
from mlre.models.compiled.predictor import Built, guarded
from mlre.spec import Task


def internals_problem(est: Any) -> str | None:
    """What in a fitted ``TabularMLP`` (its PyTorch network, array entry point and column lists)
    is not as the compiled path reads it; None when all is."""
    net = getattr(est, "net_", None)
    if net is None:
        return "a fitted TabularMLP has no network (net_)"
    try:
        import torch
    except ImportError:
        return "PyTorch is not importable"
    if not isinstance(net, torch.nn.Module):
        return f"the network net_ is a {type(net).__name__}, not a torch.nn.Module"
    if not callable(getattr(est, "predict_arrays", None)):
        return "a fitted TabularMLP has no predict_arrays"
    lists = [
        name
        for name in ("num_cols_", "cat_cols_")
        if not isinstance(getattr(est, name, None), list)
    ]
    if lists:
        return f"a fitted TabularMLP has no column lists {', '.join(lists)}"
    return None


def guard(est: Any) -> bool:
    """Whether ``est`` has what the compiled path reads; says what is wrong (a warning naming
    PyTorch and its version) when not."""
    return guarded("torch", internals_problem(est))


class MlpRows:
    """mlre's PyTorch MLP fed from the matrix: its numeric columns and category codes taken by
    position instead of from the stack's pandas table (one row: ~6 ms through the pipeline)."""

    kind = "mlp"

    def __init__(self, est: Any, numeric: list[int], categorical: list[int]) -> None:
        self.est, self.numeric, self.categorical = est, numeric, categorical

    @classmethod
    def of(cls, est: Any, stack: ColumnStack) -> MlpRows | None:
        """The compiled form, or None where the network's categories are not the columns of the
        stack's category encoder."""
        names = [str(n) for n in stack.feature_names_out_]
        categories = {column: position for position, _, column in category_columns(stack)}
        if sorted(map(str, est.cat_cols_)) != sorted(categories):
            return None
        numeric = [names.index(str(c)) for c in est.num_cols_ if str(c) in names]
        if len(numeric) != len(est.num_cols_):
            return None
        return cls(est, numeric, [categories[str(c)] for c in est.cat_cols_])

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """The network's probabilities or values for the table ``M`` stands for."""
        codes = matrix_codes(M, self.categorical)
        return np.asarray(self.est.predict_arrays(M[:, self.numeric], codes), dtype=np.float64)


def build(est: Any, stack: ColumnStack, task: Task) -> Built | None:
    """The compiled form of mlre's fitted MLP behind a trees-style stack, else None."""
    if not trees_style(stack) or not guard(est):
        return None
    rows = MlpRows.of(est, stack)
    return None if rows is None else Built(rows)
