"""Boosted-tree pipelines predicted from one float matrix, without pandas in between.

A served request is a row or a few. Through scikit-learn's pipeline, each bagged LightGBM or
XGBoost model of an ensemble spends ~15 ms on one row turning pandas categoricals into the
booster's input (the booster itself needs 0.1-0.5 ms); an ensemble of eight paid ~150 ms. Here the
table is coerced once for all pipelines, each fold's category codes come from its own encoder, and
the booster predicts the matrix directly. The codes are those the booster saw in training (the
encoder's levels are the categories of the pandas dtype it was fitted on), so the predictions are
the pipeline's own, to the last bit; tests hold the two paths equal.

Anything else (other families, other preprocessing) is not compiled and keeps its pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlre.features.transformers import CategoryEncoder, ColumnCoercer, ColumnStack, DatetimeFeatures

#: Up to this many rows a booster predicts on one thread: waking a thread team costs more than
#: it saves on a few rows, and a service answers its concurrent requests on the other cores.
SMALL_BATCH = 64

#: The objectives whose booster output is what the scikit-learn wrapper returns.
_XGB_OBJECTIVES = {"binary:logistic", "multi:softprob", "reg:squarederror", "reg:absoluteerror"}


@dataclass
class CompiledPipeline:
    """A fitted trees-style pipeline as coercion (shared), matrix building and a booster call."""

    coercer: ColumnCoercer
    stack: ColumnStack
    booster: Any
    kind: str  # "lightgbm" or "xgboost"
    iterations: (
        tuple[int, int] | None
    )  # XGBoost's iteration range (best iteration when early-stopped)
    binary: bool  # a one-column probability to widen into two

    @property
    def coercer_key(self) -> tuple:
        """Pipelines with equal keys coerce a table identically (computed once per call)."""
        c = self.coercer
        return tuple(map(tuple, (c.numeric, c.boolean, c.datetime, c.categorical)))

    def matrix(self, coerced: dict[str, np.ndarray]) -> np.ndarray:
        """The booster's input: the stack's columns in order, categories as codes (missing NaN)."""
        blocks = []
        for _, fitted, columns in self.stack.parts_:
            if fitted is None:
                blocks.append(np.column_stack([coerced[c] for c in columns]).astype(np.float64))
            elif isinstance(fitted, CategoryEncoder):
                codes = fitted.codes(coerced).astype(np.float64)
                codes[codes < 0] = np.nan
                blocks.append(codes)
            else:
                frame = pd.DataFrame({c: coerced[c] for c in columns})
                blocks.append(fitted.transform(frame).to_numpy(np.float64))
        return blocks[0] if len(blocks) == 1 else np.hstack(blocks)

    def _single_threaded(self) -> Any:
        # XGBoost takes its thread count from the booster, not the call: a copy set to one
        single = self.__dict__.get("single_")
        if single is None:
            single = self.booster.copy()
            single.set_param({"nthread": 1})
            self.single_ = single
        return single

    def coerce(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """The table in the contract's types, column by column (shared by equal coercers)."""
        return self.coercer.arrays(X)

    def predict(self, coerced: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities (one column per class the booster saw) or regression values."""
        M = self.matrix(coerced)
        small = len(M) <= SMALL_BATCH
        if self.kind == "lightgbm":
            out = self.booster.predict(M, num_threads=1) if small else self.booster.predict(M)
        else:
            booster = self._single_threaded() if small else self.booster
            out = booster.inplace_predict(M, iteration_range=self.iterations)
        out = np.asarray(out)
        if self.binary:  # in the booster's own precision (XGBoost's is float32), as its wrapper
            out = out.ravel()
            out = np.column_stack([1 - out, out])
        return out.astype(np.float64, copy=False)


def compile_pipeline(pipeline: Any, task: str) -> CompiledPipeline | None:
    """The compiled form of a fitted pipeline, or None when it is not a plain boosted-tree one."""
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
    allowed = (type(None), CategoryEncoder, DatetimeFeatures)
    if not all(type(fitted) in allowed for _, fitted, _ in stack.parts_):
        return None
    binary = task == "binary"
    kind = type(est).__module__.split(".")[0]
    if kind == "lightgbm" and hasattr(est, "booster_"):
        if callable(getattr(est, "objective", None)) or (binary and len(est.classes_) != 2):
            return None
        return CompiledPipeline(coercer, stack, est.booster_, "lightgbm", None, binary)
    if kind == "xgboost" and hasattr(est, "get_booster"):
        booster = est.get_booster()
        objective = est.get_xgb_params().get("objective")
        if objective not in _XGB_OBJECTIVES or (binary and len(est.classes_) != 2):
            return None
        best = getattr(est, "best_iteration", None)
        iterations = (0, best + 1) if best is not None else (0, 0)
        return CompiledPipeline(coercer, stack, booster, "xgboost", iterations, binary)
    return None
