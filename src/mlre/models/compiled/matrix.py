"""The matrix steps: a fitted pipeline's column parts on numpy arrays, without pandas.

scikit-learn's steps check their input and give pandas out on every call, which on a served row
costs several times their own arithmetic; these give the same values to the bit. A numeric
imputer and scaler become numpy arithmetic (``NumericSteps``), an imputer and one-hot encoder a
table lookup learned from the fitted part (``OneHotLookup``), dates their calendar features then
the numeric steps on arrays (``DatedPart``); category codes go between the matrix's floats and
integers (``matrix_codes``, ``category_columns``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlre.features.transformers import CategoryEncoder, ColumnStack, DatetimeFeatures, array_copy


def trees_style(stack: ColumnStack) -> bool:
    """Whether ``stack`` is a trees-style one: numbers passed through, dates, category codes."""
    allowed = (type(None), CategoryEncoder, DatetimeFeatures)
    return all(type(fitted) in allowed for _, fitted, _ in stack.parts_)


def dense_style(stack: ColumnStack) -> bool:
    """Whether every part of ``stack`` is passed through or a pipeline of steps (a dense-style
    stack: imputers, scalers, one-hot encoders, dates)."""
    return all(fitted is None or hasattr(fitted, "steps") for _, fitted, _ in stack.parts_)


def matrix_codes(M: np.ndarray, columns: list[int]) -> np.ndarray:
    """The category codes ``matrix`` wrote as floats in ``columns``, back as integers (-1:
    missing, which the matrix holds as NaN)."""
    codes = M[:, columns]
    return np.where(np.isnan(codes), -1, codes).astype(np.int64)


def category_columns(stack: ColumnStack) -> list[tuple[int, CategoryEncoder, str]]:
    """Each column a category encoder of ``stack`` gives: its position in the stack's output, the
    encoder and the column."""
    found: list[tuple[int, CategoryEncoder, str]] = []
    start = 0
    for _, fitted, columns in stack.parts_:
        if isinstance(fitted, CategoryEncoder):
            found += [(start + j, fitted, c) for j, c in enumerate(fitted.levels_)]
        start += len(columns) if fitted is None else len(fitted.get_feature_names_out(columns))
    return found


class OneHotLookup:
    """A fitted [SimpleImputer, OneHotEncoder] part as a table lookup, learned from the part.

    scikit-learn's encoder checks and maps its input column by column on every call (~1.7 ms on
    one served row of a dozen categorical columns). Its output is each column's block side by
    side, and each block depends on that column's value only, so the output of a row is the
    output of a base row (every column at its first level) plus, per column, the change that
    column's value makes to it. Those changes are read once from the fitted part itself for every
    level it knows, a missing value and an unknown one (the encoder treats all unknown values
    alike), so levels folded into "infrequent", unknown levels and the imputer's filling behave as
    fitted. The outputs are 0 and 1, so the sums are exact: the same values, to the bit.
    """

    def __init__(self, part: Any) -> None:
        encoder = part.steps[-1][1]
        levels = [list(c) for c in encoder.categories_]
        unknown = "\x00unknown\x00"
        while any(unknown in c for c in levels):
            unknown += "\x00"
        base = [c[0] for c in levels]
        probes: list[list[Any]] = []
        starts: list[int] = []
        for j, known in enumerate(levels):
            starts.append(len(probes))
            for value in [*known, np.nan, unknown]:
                row = list(base)
                row[j] = value
                probes.append(row)
        out = np.asarray(part.transform(np.array(probes, dtype=object)), dtype=np.float64)
        self.base = out[0].copy()  # the first probe is the base row itself
        delta = out - self.base
        self.columns = []
        for j, known in enumerate(levels):
            rows = delta[starts[j] : starts[j] + len(known) + 2]
            touched = np.flatnonzero(np.any(rows != 0, axis=0))
            index = {value: i for i, value in enumerate(known)}
            self.columns.append((index, len(known), len(known) + 1, touched, rows[:, touched]))

    @classmethod
    def of(cls, part: Any) -> OneHotLookup | None:
        """The lookup of a part made of a constant imputer and a one-hot encoder that does not
        refuse unknown levels (array output); None for any other part."""
        steps = sklearn_steps(part)
        if [type(step).__name__ for step in steps] != ["SimpleImputer", "OneHotEncoder"]:
            return None
        imputer, encoder = steps
        if imputer.strategy != "constant" or encoder.handle_unknown == "error":
            return None
        if not nan_is_missing(imputer):
            return None
        try:
            return cls(part)
        except (TypeError, ValueError):
            return None

    def transform(self, values: np.ndarray) -> np.ndarray:
        """The part's output for ``values`` (rows, the part's columns; text and NaN)."""
        out = np.tile(self.base, (len(values), 1))
        for j, (index, missing, unknown, touched, change) in enumerate(self.columns):
            rows = [index.get(v, unknown) if v == v else missing for v in values[:, j]]
            out[:, touched] += change[rows]
        return out


class NumericSteps:
    """A fitted [SimpleImputer, StandardScaler] part (or the imputer alone) as numpy arithmetic.

    The steps' own work on a served row is a fill, a mask and two elementwise operations; their
    input checks cost ~0.1 ms each, paid by every pipeline of an ensemble. The same operations
    in the same order give the same values to the bit; a copy whose output differs from the
    fitted steps' on probe rows (another version's rules) is not used.
    """

    def __init__(self, imputer: Any, scaler: Any) -> None:
        self.fill = np.asarray(imputer.statistics_, dtype=np.float64)
        indicator = getattr(imputer, "indicator_", None) if imputer.add_indicator else None
        self.flags = None if indicator is None else np.asarray(indicator.features_, dtype=np.intp)
        self.mean = scaler.mean_ if scaler is not None and scaler.with_mean else None
        self.scale = scaler.scale_ if scaler is not None and scaler.with_std else None

    @classmethod
    def of(cls, part: Any) -> NumericSteps | None:
        """The arithmetic form of an imputer (a statistic per column, NaN as missing, a dense
        indicator of the columns that had holes) and a scaler; None for any other part."""
        steps = sklearn_steps(part)
        names = [type(step).__name__ for step in steps]
        if names not in (["SimpleImputer"], ["SimpleImputer", "StandardScaler"]):
            return None
        imputer, scaler = steps[0], (steps[1] if len(steps) == 2 else None)
        if not nan_is_missing(imputer):
            return None
        if not imputer.keep_empty_features or imputer.strategy == "constant":
            return None  # columns dropped or a fill of another type: the steps themselves
        indicator = getattr(imputer, "indicator_", None)
        if imputer.add_indicator and (
            indicator is None or indicator.features != "missing-only" or indicator.sparse is True
        ):
            return None
        try:
            arithmetic = cls(imputer, scaler)
            probe = arithmetic._probe()
            same = np.array_equal(
                arithmetic.transform(probe), part.transform(probe), equal_nan=True
            )
        except (AttributeError, TypeError, ValueError):
            return None
        return arithmetic if same else None

    def _probe(self) -> np.ndarray:
        """Rows to hold the arithmetic to the fitted steps: holes, the fill values, large and
        small numbers."""
        rng = np.random.default_rng(0)
        k = len(self.fill)
        rows = [np.full(k, np.nan), self.fill, np.zeros(k), np.full(k, 1e12), np.full(k, -1e-9)]
        noise = rng.normal(size=(20, k)) * (np.abs(self.fill) + 1.0)
        noise[rng.random((20, k)) < 0.3] = np.nan
        return np.vstack([np.asarray(rows), noise])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The steps' output for ``X`` (rows, the part's numeric columns, NaN missing)."""
        X = np.asarray(X, dtype=np.float64)
        missing = np.isnan(X)
        out = np.where(missing, self.fill, X)
        if self.flags is not None:
            out = np.hstack([out, missing[:, self.flags]])
        if self.mean is not None:
            out -= self.mean
        if self.scale is not None:
            out /= self.scale
        return out


def sklearn_steps(part: Any) -> list[Any]:
    """The steps of a fitted scikit-learn pipeline (empty for anything else)."""
    steps = [step for _, step in getattr(part, "steps", [])]
    return steps if all(type(s).__module__.startswith("sklearn.") for s in steps) else []


def nan_is_missing(imputer: Any) -> bool:
    """Whether an imputer reads NaN as missing (its default), as the compiled parts do."""
    value = imputer.missing_values
    return isinstance(value, float) and bool(np.isnan(value))


@dataclass
class DatedPart:
    """A fitted [DatetimeFeatures, [imputer, scaler]] part: the calendar features from a table
    of the dates, the numeric steps on arrays (their pandas output cost twice the features)."""

    dates: DatetimeFeatures
    numeric: Any  # the array copy of the numeric steps

    @classmethod
    def of(cls, fitted: Any) -> DatedPart | None:
        """The compiled part, or None for a part of other steps."""
        steps = [step for _, step in getattr(fitted, "steps", [])]
        if len(steps) != 2 or type(steps[0]) is not DatetimeFeatures:
            return None
        numeric = array_copy(steps[1])
        numeric = NumericSteps.of(numeric) or numeric
        return None if numeric is None else cls(steps[0], numeric)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """The part's output for ``values`` (rows, the part's date columns as datetime64)."""
        table = pd.DataFrame({c: values[:, j] for j, c in enumerate(self.dates.columns_)})
        return self.numeric.transform(self.dates.transform(table).to_numpy(np.float64))
