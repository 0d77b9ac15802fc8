"""Which library's module compiles a fitted member, and the compiled pipeline it makes.

``BUILDERS`` names each kind of estimator by where its class lives: the class itself
(``sklearn.HistGradientBoostingClassifier``), its library's subpackage (``sklearn.linear_model``)
or its library (``lightgbm``), looked up in that order; the builder it gives returns the member's
``Built`` predictor, or None where the member keeps its pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlre.features.transformers import ColumnCoercer, ColumnStack
from mlre.models.compiled import (
    catboost_rows,
    forests,
    hist_gb,
    lgbm,
    linear,
    mlp_rows,
    xgb,
)
from mlre.models.compiled.pipeline import CompiledPipeline
from mlre.models.compiled.predictor import Built, RowPredictor
from mlre.spec import Task

#: A library's builder: (fitted estimator, fitted column stack, task) -> its compiled form.
Builder = Callable[[Any, ColumnStack, Task], Built | None]

#: The builder for each kind of fitted estimator, by where its class lives.
BUILDERS: dict[str, Builder] = {
    "sklearn.linear_model": linear.build,
    "sklearn.HistGradientBoostingClassifier": hist_gb.build,
    "sklearn.HistGradientBoostingRegressor": hist_gb.build,
    "sklearn.Pipeline": forests.build,  # a forest behind its category-codes step
    "lightgbm": lgbm.build,
    "xgboost": xgb.build,
    "mlre.CatBoostModel": catboost_rows.build,
    "mlre.TabularMLP": mlp_rows.build,
}


class LogScale:
    """A member fitted on ``log1p`` of the target (``LogTarget``): its compiled model's
    predictions brought back to the original scale, as the member's own ``predict`` does."""

    def __init__(self, inner: RowPredictor) -> None:
        self.inner = inner
        self.kind = f"{inner.kind} on a log target"

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        return np.expm1(np.asarray(self.inner.predict(M, small), dtype=float))


def _log_target(est: Any, stack: ColumnStack, task: Task) -> Built | None:
    build = builder_for(est.regressor)
    built = None if build is None else build(est.regressor, stack, task)
    return None if built is None else Built(LogScale(built.predictor), built.recode)


BUILDERS["mlre.LogTarget"] = _log_target


def estimator_keys(est: Any) -> list[str]:
    """The names ``BUILDERS`` may know ``est``'s class by, the most precise first."""
    module = type(est).__module__.split(".")
    return [f"{module[0]}.{type(est).__name__}", ".".join(module[:2]), module[0]]


def builder_for(est: Any) -> Builder | None:
    """The builder of ``est``'s library, or None for an estimator that is not compiled."""
    return next((BUILDERS[key] for key in estimator_keys(est) if key in BUILDERS), None)


def compile_pipeline(pipeline: Any, task: Task) -> CompiledPipeline | None:
    """The compiled form of a fitted pipeline, or None when its member keeps the pipeline."""
    steps = getattr(pipeline, "named_steps", {})
    prep, est = steps.get("prep"), steps.get("model")
    if prep is None or est is None or set(steps) != {"prep", "model"}:
        return None
    prep_steps = getattr(prep, "named_steps", {})
    coercer, stack = prep_steps.get("coerce"), prep_steps.get("columns")
    if not isinstance(coercer, ColumnCoercer) or not isinstance(stack, ColumnStack):
        return None
    if list(prep_steps) != ["coerce", "columns"] or not hasattr(stack, "parts_"):
        return None
    build = builder_for(est)
    built = None if build is None else build(est, stack, task)
    if built is None:
        return None
    return CompiledPipeline(coercer, stack, built.predictor, built.recode)
