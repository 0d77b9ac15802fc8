"""A fitted pipeline as coercion (shared), matrix building and its member's ``RowPredictor``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlre.features.transformers import (
    CategoryEncoder,
    ColumnCoercer,
    ColumnStack,
    DatetimeFeatures,
)
from mlre.models.compiled.matrix import DatedPart, NumericSteps, OneHotLookup
from mlre.models.compiled.predictor import SMALL_BATCH, Recode, RowPredictor


@dataclass
class CompiledPipeline:
    """A fitted pipeline as coercion (shared), matrix building and a predictor call."""

    coercer: ColumnCoercer
    stack: ColumnStack
    predictor: RowPredictor
    #: the estimator's own input step as a recoding of the matrix (HistGradientBoosting's)
    recode: Recode | None = None

    @property
    def kind(self) -> str:
        """What the member is compiled as ("lightgbm", "dense", "forest", ...), for reading."""
        return self.predictor.kind

    @property
    def coercer_key(self) -> tuple:
        """Pipelines with equal keys coerce a table identically (computed once per call)."""
        c = self.coercer
        return tuple(map(tuple, (c.numeric, c.boolean, c.datetime, c.categorical)))

    @property
    def matrix_key(self) -> tuple:
        """Pipelines with equal keys build the same matrix from the same coerced table: the
        bagged folds of one configuration mostly learn the same levels, so an ensemble of
        sixteen pipelines builds its one-row matrix a few times, not sixteen."""
        key = self.__dict__.get("matrix_key_")
        if key is None:
            parts: list[tuple] = []
            for _, fitted, columns in self.stack.parts_:
                if fitted is None:
                    parts.append(("passthrough", tuple(columns)))
                elif isinstance(fitted, CategoryEncoder):
                    levels = tuple(tuple(fitted.levels_[c]) for c in columns)
                    parts.append(("categories", tuple(columns), levels))
                elif isinstance(fitted, DatetimeFeatures):
                    times = tuple(fitted.with_time_[c] for c in fitted.columns_)
                    starts = tuple(sorted(map(str, fitted.__dict__.get("start_", {}).items())))
                    calendar = (fitted.__dict__.get("country"), fitted.__dict__.get("subdivision"))
                    parts.append(
                        ("dates", tuple(columns), tuple(fitted.columns_), times, starts, calendar)
                    )
                else:
                    parts.append(("other", id(fitted)))
            recode = None
            if self.recode is not None:
                luts, order = self.recode
                recode = (tuple((j, luts[j].tobytes()) for j in sorted(luts)), order.tobytes())
            key = self.matrix_key_ = (self.coercer_key, tuple(parts), recode)
        return key

    def matrix(self, coerced: dict[str, np.ndarray]) -> np.ndarray:
        """The predictor's input: the stack's columns in order, categories as codes (missing
        NaN), recoded and reordered for an estimator with an input step of its own."""
        blocks = []
        for (_, fitted, columns), fast in zip(self.stack.parts_, self.array_parts(), strict=True):
            if fitted is None:
                blocks.append(np.column_stack([coerced[c] for c in columns]).astype(np.float64))
            elif isinstance(fitted, CategoryEncoder):
                codes = fitted.codes(coerced).astype(np.float64)
                codes[codes < 0] = np.nan
                blocks.append(codes)
            elif fast is not None:  # the part's own steps on arrays, or its lookup
                blocks.append(fast.transform(np.column_stack([coerced[c] for c in columns])))
            else:
                frame = pd.DataFrame({c: coerced[c] for c in columns})
                blocks.append(fitted.transform(frame).to_numpy(np.float64))
        M = blocks[0] if len(blocks) == 1 else np.hstack(blocks)
        if self.recode is not None:
            luts, order = self.recode
            for j, lut in luts.items():
                codes = M[:, j]
                known = ~np.isnan(codes)
                codes[known] = lut[codes[known].astype(np.intp)]
            M = np.ascontiguousarray(M[:, order])
        return M

    def array_parts(self) -> list[Any]:
        """Per stack part, what turns its columns (as one array) into its output without pandas:
        a ``OneHotLookup`` for an imputer and one-hot encoder, ``NumericSteps`` for an imputer
        and scaler, else the stack's array copy of the part, a ``DatedPart`` for dates, else
        None (the part takes a table)."""
        parts = self.__dict__.get("array_parts_")
        if parts is None:
            # the stack's own array copies of its parts (built once, not pickled)
            twins = self.stack.array_parts()
            parts = self.array_parts_ = [
                OneHotLookup.of(twin) or NumericSteps.of(twin) or twin or DatedPart.of(fitted)
                for (_, fitted, _), twin in zip(self.stack.parts_, twins, strict=True)
            ]
        return parts

    def coerce(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """The table in the contract's types, column by column (shared by equal coercers)."""
        return self.coercer.arrays(X)

    def predict(self, coerced: dict[str, np.ndarray]) -> np.ndarray:
        """Probabilities (one column per class the estimator saw) or regression values."""
        return self.predict_matrix(self.matrix(coerced))

    def predict_matrix(self, M: np.ndarray) -> np.ndarray:
        """``predict`` from the matrix ``matrix`` built (read, not changed)."""
        return self.predictor.predict(M, len(M) <= SMALL_BATCH)
