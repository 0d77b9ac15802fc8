"""Boosted-tree pipelines predicted from one float matrix, without pandas in between.

A served request is a row or a few. Through scikit-learn's pipeline, each bagged LightGBM or
XGBoost model of an ensemble spends ~15 ms on one row turning pandas categoricals into the
booster's input (the booster itself needs 0.1-0.5 ms); an ensemble of eight paid ~150 ms. Here the
table is coerced once for all pipelines, each fold's category codes come from its own encoder, and
the booster predicts the matrix directly. The codes are those the booster saw in training (the
encoder's levels are the categories of the pandas dtype it was fitted on), so the predictions are
the pipeline's own, to the last bit; tests hold the two paths equal.

scikit-learn's HistGradientBoosting is compiled too: its own input step (an OrdinalEncoder in a
ColumnTransformer, ~5 ms on one row, several times the trees' time) becomes a lookup from our
encoder's codes to its ordinal codes and a column order; its trees are walked all at once for a
few rows (``HistForest``) and by its own routine for more. A few rows also walk a single-output
XGBoost model's trees in numpy (``XgbForest``), in XGBoost's own precision and order, and one
row goes through LightGBM's prepared single-row call (``LgbRow``). Random forests and extra
trees take the matrix as their category-codes step would give it, and small batches skip
joblib (``Forest``). CatBoost gets the matrix with its categorical columns as the level text its
adapter would give it, in an object array rather than a table (``CatRows``), and mlre's MLP its
numeric columns and category codes by position (``MlpRows``).

scikit-learn's linear models on the dense-style stack are compiled too (``kind="dense"``): the
numeric part runs its fitted imputer and scaler on arrays, the categorical part becomes a table
lookup learned from its own fitted imputer and one-hot encoder (``OneHotLookup``), dates go
through their calendar features then the numeric steps on arrays (``DatedPart``), and the model
predicts the matrix (one row of a linear member: 7.7 ms through the pipeline, most of it pandas
and the encoder's checks; 1.6 ms this way, coercion included).

Anything else (other families, other preprocessing) is not compiled and keeps its pipeline.
"""

from __future__ import annotations

import ctypes
import functools
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.features.transformers import (
    CategoryEncoder,
    ColumnCoercer,
    ColumnStack,
    DatetimeFeatures,
    array_copy,
)

#: Up to this many rows a booster predicts on one thread: waking a thread team costs more than
#: it saves on a few rows, and a service answers its concurrent requests on the other cores.
SMALL_BATCH = 64

#: Up to this many rows a HistGradientBoosting or XGBoost model's trees are walked all at once
#: (one row: ~0.05 ms for 150 trees, against 0.59 ms for scikit-learn's routine tree by tree and
#: 0.4 ms for XGBoost's call); from about ten rows on, their own routines are faster.
FEW_ROWS = 8

#: The objectives whose booster output is what the scikit-learn wrapper returns.
_XGB_OBJECTIVES = {"binary:logistic", "multi:softprob", "reg:squarederror", "reg:absoluteerror"}


@dataclass
class CompiledPipeline:
    """A fitted trees-style pipeline as coercion (shared), matrix building and a booster call."""

    coercer: ColumnCoercer
    stack: ColumnStack
    booster: Any
    kind: str  # "lightgbm", "xgboost", "hist_gb" or "dense" (the booster is then the estimator,
    # for "dense" a copy that takes arrays), "forest" (a ``Forest``), "catboost" (``CatRows``)
    # or "mlp" (``MlpRows``)
    iterations: (
        tuple[int, int] | None
    )  # XGBoost's iteration range (best iteration when early-stopped)
    binary: bool  # a one-column probability to widen into two
    #: HistGradientBoosting's input step: per categorical column of the stack's output (by
    #: position) the ordinal code of each of our levels (last entry: missing), then the order
    #: in which its ColumnTransformer puts the columns
    recode: tuple[dict[int, np.ndarray], np.ndarray] | None = None
    task: str = ""

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
                    parts.append(("dates", tuple(columns), tuple(fitted.columns_), times))
                else:
                    parts.append(("other", id(fitted)))
            recode = None
            if self.recode is not None:
                luts, order = self.recode
                recode = (tuple((j, luts[j].tobytes()) for j in sorted(luts)), order.tobytes())
            key = self.matrix_key_ = (self.coercer_key, tuple(parts), recode)
        return key

    def matrix(self, coerced: dict[str, np.ndarray]) -> np.ndarray:
        """The booster's input: the stack's columns in order, categories as codes (missing NaN)."""
        blocks = []
        for (_, fitted, columns), fast in zip(self.stack.parts_, self._array_parts(), strict=True):
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

    def _array_parts(self) -> list[Any]:
        """Per stack part, what turns its columns (as one array) into its output without pandas:
        a ``OneHotLookup`` for an imputer and one-hot encoder, ``NumericSteps`` for an imputer
        and scaler, else the stack's array copy of the part (see ``ColumnStack._array_parts``),
        a ``DatedPart`` for dates, else None (the part takes a table)."""
        parts = self.__dict__.get("array_parts_")
        if parts is None:
            twins = self.stack._array_parts()
            parts = self.array_parts_ = [
                OneHotLookup.of(twin) or NumericSteps.of(twin) or twin or DatedPart.of(fitted)
                for (_, fitted, _), twin in zip(self.stack.parts_, twins, strict=True)
            ]
        return parts

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
        return self.predict_matrix(self.matrix(coerced))

    def predict_matrix(self, M: np.ndarray) -> np.ndarray:
        """``predict`` from the matrix ``matrix`` built (read, not changed)."""
        small = len(M) <= SMALL_BATCH
        if self.kind == "hist_gb":
            return self._hist_gb(M, small)
        if self.kind in ("forest", "catboost", "mlp"):
            return self.booster.predict(M, small)
        if self.kind == "dense":
            # column-major, as the pipeline's table reaches the model: the product's rounding
            # follows the layout, and this keeps it the pipeline's own to the bit
            est, M = self.booster, np.asfortranarray(M)
            if self.task == "regression":
                return np.asarray(est.predict(M), dtype=np.float64).ravel()
            return np.asarray(est.predict_proba(M), dtype=np.float64)
        if self.kind == "lightgbm":
            out = None
            if len(M) == 1:
                single = self.__dict__.get("lgb_row_", False)
                if single is False:
                    single = self.lgb_row_ = LgbRow.of(self.booster)
                out = None if single is None else single.predict(M[0])
            if out is None:
                out = self.booster.predict(M, num_threads=1) if small else self.booster.predict(M)
        else:
            forest = self.__dict__.get("xgb_forest_", False)
            if forest is False:
                forest = self.xgb_forest_ = XgbForest.of(self.booster, self.iterations)
            out = forest.predict(M) if forest is not None and len(M) <= FEW_ROWS else None
            if out is None:
                booster = self._single_threaded() if small else self.booster
                out = booster.inplace_predict(M, iteration_range=self.iterations)
        out = np.asarray(out)
        if self.binary:  # in the booster's own precision (XGBoost's is float32), as its wrapper
            out = out.ravel()
            out = np.column_stack([1 - out, out])
        return out.astype(np.float64, copy=False)

    def _hist_gb(self, M: np.ndarray, small: bool) -> np.ndarray:
        # what the estimator's predict does after its input step: the baseline plus each tree's
        # value, added tree by tree in the same order, then its loss's inverse link
        est = self.booster
        forest = self.__dict__.get("forest_") or self._hist_gb_forest()
        base = est._baseline_prediction
        raw = np.zeros((len(M), est.n_trees_per_iteration_), dtype=base.dtype, order="F")
        raw += base
        if len(M) <= FEW_ROWS:
            forest.add_to(raw, M)
        else:
            from mlre.models.families.base import n_threads

            forest.add_to_by_tree(raw, M, 1 if small else n_threads())
        if self.task == "regression":
            return np.asarray(est._loss.link.inverse(raw.ravel()), dtype=np.float64)
        return np.asarray(est._loss.predict_proba(raw), dtype=np.float64)

    def _hist_gb_forest(self) -> HistForest:
        self.forest_ = HistForest(self.booster)
        return self.forest_


class CatRows:
    """A fitted CatBoost model fed from the matrix: its categorical columns back to the level
    text its adapter gives it (``CatBoostModel._frame``: the encoder's level, "nan" when missing),
    in an object array instead of a pandas table. One row: ~7.5 ms through the pipeline (pandas
    casts and CatBoost reading a table), ~0.1 ms for the model itself."""

    def __init__(self, model: Any, task: str, positions: list[int], levels: list[np.ndarray]):
        self.model, self.task = model, task
        self.positions, self.levels = positions, levels

    @classmethod
    def of(cls, est: Any, stack: ColumnStack, task: str) -> CatRows | None:
        """The compiled form, or None where the columns CatBoost reads as categories are not
        those of the stack's category encoder (a trees-style stack: numbers passed through,
        dates, categories)."""
        positions, levels = [], []
        for position, encoder, column in _category_columns(stack):
            positions.append(position)
            # a code indexes its level; -1 (missing) the last entry
            levels.append(np.array([*map(str, encoder.levels_[column]), "nan"], dtype=object))
        try:
            if list(est.model_.get_cat_feature_indices()) != positions:
                return None
        except (AttributeError, TypeError):
            return None
        return cls(est.model_, task, positions, levels)

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """What the adapter predicts for the table ``M`` stands for (probabilities or values)."""
        table = M.astype(object)
        codes = _matrix_codes(M, self.positions)
        for k, (j, levels) in enumerate(zip(self.positions, self.levels, strict=True)):
            table[:, j] = levels[codes[:, k]]
        threads = 1 if small else -1  # waking CatBoost's threads costs more than a few rows
        if self.task == "regression":
            return np.asarray(self.model.predict(table, thread_count=threads), np.float64).ravel()
        return np.asarray(self.model.predict_proba(table, thread_count=threads), np.float64)


class MlpRows:
    """mlre's PyTorch MLP fed from the matrix: its numeric columns and category codes taken by
    position instead of from the stack's pandas table (one row: ~6 ms through the pipeline)."""

    def __init__(self, est: Any, numeric: list[int], categorical: list[int]) -> None:
        self.est, self.numeric, self.categorical = est, numeric, categorical

    @classmethod
    def of(cls, est: Any, stack: ColumnStack) -> MlpRows | None:
        """The compiled form, or None where the network's categories are not the columns of the
        stack's category encoder."""
        names = [str(n) for n in stack.feature_names_out_]
        categories = {column: position for position, _, column in _category_columns(stack)}
        if sorted(map(str, est.cat_cols_)) != sorted(categories):
            return None
        numeric = [names.index(str(c)) for c in est.num_cols_ if str(c) in names]
        if len(numeric) != len(est.num_cols_):
            return None
        return cls(est, numeric, [categories[str(c)] for c in est.cat_cols_])

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """The network's probabilities or values for the table ``M`` stands for."""
        codes = _matrix_codes(M, self.categorical)
        return np.asarray(self.est.predict_arrays(M[:, self.numeric], codes), dtype=np.float64)


def _matrix_codes(M: np.ndarray, columns: list[int]) -> np.ndarray:
    """The category codes ``matrix`` wrote as floats in ``columns``, back as integers (-1:
    missing, which the matrix holds as NaN)."""
    codes = M[:, columns]
    return np.where(np.isnan(codes), -1, codes).astype(np.int64)


def _category_columns(stack: ColumnStack) -> list[tuple[int, CategoryEncoder, str]]:
    """Each column a category encoder of ``stack`` gives: its position in the stack's output, the
    encoder and the column."""
    found, start = [], 0
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
        probes, starts = [], []
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
        steps = _sklearn_steps(part)
        if [type(step).__name__ for step in steps] != ["SimpleImputer", "OneHotEncoder"]:
            return None
        imputer, encoder = steps
        if imputer.strategy != "constant" or encoder.handle_unknown == "error":
            return None
        if not _nan_is_missing(imputer):
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
        steps = _sklearn_steps(part)
        names = [type(step).__name__ for step in steps]
        if names not in (["SimpleImputer"], ["SimpleImputer", "StandardScaler"]):
            return None
        imputer, scaler = steps[0], (steps[1] if len(steps) == 2 else None)
        if not _nan_is_missing(imputer):
            return None
        if not imputer.keep_empty_features or imputer.strategy == "constant":
            return None  # columns dropped or a fill of another type: the steps themselves
        indicator = getattr(imputer, "indicator_", None)
        if imputer.add_indicator and (
            indicator is None or indicator.features != "missing-only" or indicator.sparse is True
        ):
            return None
        try:
            steps = cls(imputer, scaler)
            probe = steps._probe()
            same = np.array_equal(steps.transform(probe), part.transform(probe), equal_nan=True)
        except (AttributeError, TypeError, ValueError):
            return None
        return steps if same else None

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


def _sklearn_steps(part: Any) -> list[Any]:
    """The steps of a fitted scikit-learn pipeline (empty for anything else)."""
    steps = [step for _, step in getattr(part, "steps", [])]
    return steps if all(type(s).__module__.startswith("sklearn.") for s in steps) else []


def _nan_is_missing(imputer: Any) -> bool:
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


@dataclass
class FlatTrees:
    """Many trees' nodes in flat arrays, walked for a few rows all at once, a level per step.

    Leaves point at themselves. A number goes left when below its threshold (``<=`` when not
    ``strict``), a missing value the node's missing side, a category the side its node's row of
    ``table`` gives for its code (the last column: a negative code, or with ``wrap`` off one past
    the table; with ``wrap`` on a code is read as a uint8, as scikit-learn's routine reads it).
    """

    roots: np.ndarray
    depth: int
    leaf: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    categorical: np.ndarray
    table: np.ndarray | None  # (categorical nodes, codes + 1) -> goes left
    table_row: np.ndarray | None  # each node's row in ``table``
    strict: bool
    wrap: bool
    # the categorical nodes' features (as positions in ``category_features``) and their rows'
    # starts in ``table`` read flat, for ``row``
    category_features: np.ndarray = field(init=False, repr=False)
    node_category: np.ndarray = field(init=False, repr=False)
    category_start: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.table is None:
            return
        assert self.table_row is not None
        nodes = np.flatnonzero(self.categorical)
        self.category_features, self.node_category = np.unique(
            self.feature[nodes], return_inverse=True
        )
        self.category_start = self.table_row[nodes] * self.table.shape[1]

    def leaves(self, X: np.ndarray) -> np.ndarray | None:
        """Each row's leaf value in each tree, (rows, trees); None if a walk did not end at a
        leaf (trees read wrong: the caller's library answers instead)."""
        nodes = self.nodes(X)
        return None if nodes is None else self.value[nodes]

    def nodes(self, X: np.ndarray) -> np.ndarray | None:
        """Each row's leaf in each tree (flat node indices), (rows, trees), or None (as
        ``leaves``). Row by row (``row``) costs about a nanosecond per node of the forest, level
        by level (``by_level``) about 12 us per level; the cheaper estimate walks."""
        if len(X) * (len(self.feature) / 400 + 10) <= self.depth * 12:
            found = [self.row(x) for x in X]
            return None if any(f is None for f in found) else np.vstack(found)
        return self.by_level(X)

    def by_level(self, X: np.ndarray) -> np.ndarray | None:
        """``nodes`` for all rows together, walking down a level per step."""
        n, n_trees = len(X), len(self.roots)
        node = np.tile(self.roots, n)  # one walker per (row, tree), row-major
        row = np.repeat(np.arange(n, dtype=np.intp), n_trees)
        active = np.arange(n * n_trees)
        for _ in range(self.depth):
            here = node[active]
            done = self.leaf[here]
            if done.any():  # walkers that reached a leaf stop: many trees are shallow
                active, here = active[~done], here[~done]
                if not len(active):
                    break
            x = X[row[active], self.feature[here]]
            threshold = self.threshold[here]
            left = x < threshold if self.strict else x <= threshold
            missing = np.isnan(x)
            if self.table is not None:
                cat = np.flatnonzero(self.categorical[here] & ~missing)
                if len(cat):
                    left[cat] = self.table[self.table_row[here[cat]], self._columns(x[cat])]
            if missing.any():
                left[missing] = self.missing_left[here[missing]]
            node[active] = np.where(left, self.left[here], self.right[here])
        if not self.leaf[node].all():
            return None
        return node.reshape(n, n_trees)

    def row(self, x: np.ndarray) -> np.ndarray | None:
        """One row's leaf in each tree, or None (as ``nodes``). Every node decides at once, then
        each tree follows its decisions from the root, a level per step: a few numpy calls over
        all nodes and one per level, where the walk of many rows makes about fifteen a level.
        150 trees of ~60 nodes on one row: ~45 us, against ~100 us (six levels) and ~250 us
        (twenty) level by level."""
        at = x[self.feature]
        left = at < self.threshold if self.strict else at <= self.threshold
        missing = np.isnan(x)
        if self.table is not None:
            code = x[self.category_features]
            code = np.where(np.isnan(code), -1.0, code)  # a missing value's side comes below
            column = self._columns(code)[self.node_category]
            left[self.categorical] = self.table.ravel()[self.category_start + column]
        if missing.any():
            left = np.where(missing[self.feature], self.missing_left, left)
        child = np.where(left, self.left, self.right)
        node = self.roots
        for _ in range(self.depth):
            node = child[node]
        if not self.leaf[node].all():
            return None
        return node

    def _columns(self, code: np.ndarray) -> np.ndarray:
        assert self.table is not None
        last = self.table.shape[1] - 1
        negative = code < 0
        column = np.where(negative, 0.0, code).astype(np.int64)
        column = column & 0xFF if self.wrap else np.minimum(column, last)
        column[negative] = last
        return column


def _linked(left: np.ndarray, right: np.ndarray, leaf: np.ndarray, offset: int) -> tuple:
    """A tree's child links as flat indices, its leaves pointing at themselves."""
    index = np.arange(offset, offset + len(leaf))
    return np.where(leaf, index, left + offset), np.where(leaf, index, right + offset)


def _linked_parts(*extra: str) -> dict[str, list[np.ndarray]]:
    """Per-tree node arrays to concatenate: those ``_add_linked`` fills, and ``extra`` ones
    (HistGradientBoosting's leaf values and bitsets; XGBoost's leaf value is its threshold,
    forests keep a table of theirs)."""
    return {name: [] for name in _NODE_FIELDS if name not in ("bitset", "value") or name in extra}


def _add_linked(
    parts: dict[str, list[np.ndarray]],
    offset: int,
    left: Any,
    right: Any,
    feature: Any,
    threshold: np.ndarray,
    missing_left: Any,
    categorical: Any = None,
    leaf: Any = None,
) -> np.ndarray:
    """Append one tree's node fields to ``parts``; its leaf mask (given, or where the child
    links are -1)."""
    left, right = np.asarray(left, dtype=np.intp), np.asarray(right, dtype=np.intp)
    leaf = left == -1 if leaf is None else np.asarray(leaf, dtype=bool)
    links = _linked(left, right, leaf, offset)
    parts["left"].append(links[0])
    parts["right"].append(links[1])
    parts["leaf"].append(leaf)
    parts["feature"].append(np.where(leaf, 0, feature).astype(np.intp))
    parts["threshold"].append(threshold)
    parts["missing_left"].append(np.asarray(missing_left, dtype=bool))
    split = np.zeros(len(leaf), dtype=bool) if categorical is None else categorical
    parts["categorical"].append(np.asarray(split, dtype=bool) & ~leaf)
    return leaf


def _category_rows(categorical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The categorical nodes, and each node's row in a table of them."""
    nodes = np.flatnonzero(categorical)
    rows = np.zeros(len(categorical), dtype=np.intp)
    rows[nodes] = np.arange(len(nodes))
    return nodes, rows


class HistForest:
    """A fitted HistGradientBoosting model's trees, walked the fastest way for the batch.

    A few rows are walked down every tree at once from flat arrays (``FlatTrees``: ~0.05 ms for
    150 trees on one row, where scikit-learn's routine, called once per tree, takes 0.59 ms).
    The decisions are its routine's, node for node: missing goes the node's missing side; a
    category goes left when in the node's bitset, right when known in training, else the
    missing side; a number goes left when ``<=`` the threshold.
    Larger batches, and forests whose flat form would take more than ``FLAT_BYTES``, go tree
    by tree through its routine.
    """

    #: The most memory the flat form may take (arrays and category tables, ~80 bytes a node).
    FLAT_BYTES = 16 * 2**20

    def __init__(self, est: Any) -> None:
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data

        self.walk = _predict_from_raw_data
        self.n_outputs = int(est.n_trees_per_iteration_)
        self.known, self.f_idx_map = est._bin_mapper.make_known_categories_bitsets()
        self.trees = [
            (k, p.nodes, p.raw_left_cat_bitsets) for it in est._predictors for k, p in enumerate(it)
        ]
        self.flat: FlatTrees | None = None
        self.flat_built = False
        self.columns: list[np.ndarray] = []  # each output's trees, in order

    def add_to(self, raw: np.ndarray, M: np.ndarray) -> None:
        """Add every tree's value to ``raw`` (rows, outputs), tree after tree as scikit-learn's
        caller does: a running sum, so the float additions happen in the same order."""
        flat = self._flat()
        values = None if flat is None else flat.leaves(M)
        if values is None:
            self.add_to_by_tree(raw, M, 1)
            return
        for k, columns in enumerate(self.columns):
            running = np.column_stack([raw[:, k], values[:, columns]])
            raw[:, k] = np.cumsum(running, axis=1)[:, -1]

    def add_to_by_tree(self, raw: np.ndarray, M: np.ndarray, threads: int) -> None:
        """``add_to`` by scikit-learn's routine, tree by tree (threads across rows)."""
        out = np.empty(len(M), dtype=np.float64)
        for k, nodes, left_bits in self.trees:
            self.walk(nodes, M, left_bits, self.known, self.f_idx_map, threads, out)
            raw[:, k] += out

    def _flat(self) -> FlatTrees | None:
        """All trees in flat arrays, built on first use; None when they would take more than
        ``FLAT_BYTES``."""
        if self.flat_built:
            return self.flat
        self.flat_built = True
        n_nodes = sum(len(nodes) for _, nodes, _ in self.trees)
        n_categorical = sum(int(nodes["is_categorical"].sum()) for _, nodes, _ in self.trees)
        if n_nodes * 60 + n_categorical * 257 > self.FLAT_BYTES:
            return None
        parts = _linked_parts("value", "bitset")
        roots, klass, bitsets = [], [], []
        offset = bit_offset = depth = 0
        for k, nodes, left_bits in self.trees:
            roots.append(offset)
            klass.append(k)
            _add_linked(parts, offset, nodes["left"], nodes["right"], nodes["feature_idx"],
                        nodes["num_threshold"].astype(np.float64), nodes["missing_go_to_left"],
                        nodes["is_categorical"], leaf=nodes["is_leaf"])  # fmt: skip
            parts["value"].append(nodes["value"].astype(np.float64))
            parts["bitset"].append(nodes["bitset_idx"].astype(np.intp) + bit_offset)
            bitsets.append(np.asarray(left_bits, dtype=np.uint32).reshape(-1, 8))
            offset += len(nodes)
            bit_offset += len(bitsets[-1])
            depth = max(depth, int(nodes["depth"].max()))
        f = {name: np.concatenate(p) for name, p in parts.items()}
        klass_ = np.asarray(klass, dtype=np.intp)
        self.columns = [np.flatnonzero(klass_ == k) for k in range(self.n_outputs)]
        table, table_row = self._category_table(f, np.concatenate(bitsets))
        f.pop("bitset")  # read into the table
        self.flat = FlatTrees(
            roots=np.asarray(roots, dtype=np.intp), depth=depth, table=table,
            table_row=table_row, strict=False, wrap=True, **f,
        )  # fmt: skip
        return self.flat

    def _category_table(self, f: dict[str, np.ndarray], left_bits: np.ndarray) -> tuple:
        """For each categorical node, the side each category code (0-255; 256 for a negative
        one) goes to, and each node's row in that table (None, None when there is none)."""
        nodes, rows = _category_rows(f["categorical"])
        if not len(nodes):
            return None, None
        known_bits = np.asarray(self.known, dtype=np.uint32).reshape(-1, 8)
        known_row = np.asarray(self.f_idx_map, dtype=np.intp)
        codes = np.arange(256)
        word, bit = codes >> 5, (codes & 31).astype(np.uint32)
        table = np.zeros((len(nodes), 257), dtype=bool)
        for i, j in enumerate(nodes):
            in_left = (left_bits[f["bitset"][j], word] >> bit) & 1
            known = (known_bits[known_row[f["feature"][j]], word] >> bit) & 1
            missing_side = f["missing_left"][j]
            table[i, :256] = np.where(in_left == 1, True, np.where(known == 1, False, missing_side))
            table[i, 256] = missing_side
        return table, rows


class Forest:
    """A fitted random forest or extra-trees model of scikit-learn, predicted without joblib for
    small batches.

    scikit-learn's forest predicts each tree in a joblib task: ~15 ms on one row for 150 trees
    with two workers, nearly all of it dispatch. Up to ``FEW_ROWS`` rows walk the trees from flat
    arrays (``FlatTrees``; a number goes left when ``<=`` its threshold, in float32 as the forest
    reads its input, a missing value the node's missing side); their leaf values are added tree
    after tree onto zeros and divided by the number of trees, as the forest does with one worker
    (with more, its order of addition varies from call to call). Up to ``SMALL_BATCH`` rows go
    through the forest with one worker, more through the forest as fitted. Forests whose flat
    form would take more than ``FLAT_BYTES`` keep the forest's own walk.
    """

    #: The most memory the flat form may take (~50 bytes a node plus its values): a bagged
    #: forest of 2,048-leaf trees has one per fold in the serving process.
    FLAT_BYTES = 16 * 2**20

    def __init__(self, est: Any) -> None:
        import copy

        # shallow copies share the fitted trees; without the fitted column names, which a
        # matrix does not carry (scikit-learn would warn on every call)
        self.est, self.single = copy.copy(est), copy.copy(est)
        self.single.n_jobs = 1
        for copied in (self.est, self.single):
            copied.__dict__.pop("feature_names_in_", None)
        self.classify = hasattr(est, "classes_")
        self.flat: FlatTrees | None = None
        self.values: np.ndarray | None = None  # (nodes, outputs): what each leaf adds
        self.flat_built = False

    def _flat(self) -> FlatTrees | None:
        """The trees in flat arrays, built on first use by a few rows; None when they would
        take more than ``FLAT_BYTES`` (or the forest has several outputs)."""
        if self.flat_built:
            return self.flat
        self.flat_built = True
        est = self.est
        trees = [e.tree_ for e in est.estimators_]
        n_nodes = sum(t.node_count for t in trees)
        width = int(est.n_classes_) if self.classify else 1
        if n_nodes * (50 + 8 * width) > self.FLAT_BYTES or int(est.n_outputs_) != 1:
            return None
        parts = _linked_parts()
        roots, values = [], []
        offset = depth = 0
        for t in trees:
            roots.append(offset)
            leaf = _add_linked(parts, offset, t.children_left, t.children_right, t.feature,
                               t.threshold.astype(np.float64), t.missing_go_to_left)  # fmt: skip
            values.append(t.value[:, 0, :width])  # what the tree's predict reads for a leaf
            depth = max(depth, int(t.max_depth))
            offset += len(leaf)
        f = {name: np.concatenate(p) for name, p in parts.items()}
        self.values = np.concatenate(values).astype(np.float64)
        self.flat = FlatTrees(
            roots=np.asarray(roots, dtype=np.intp), depth=depth, value=np.arange(offset),
            table=None, table_row=None, strict=False, wrap=False, **f,
        )  # fmt: skip
        return self.flat

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """Class probabilities (rows, classes) or regression values."""
        # what the forest's input check makes of it; compared with the float64 thresholds in
        # float64, as the forest's own walk compares
        X = M.astype(np.float32)
        flat = self._flat() if len(X) <= FEW_ROWS else None
        nodes = None if flat is None else flat.nodes(X)
        if nodes is None or self.values is None:
            est = self.single if small else self.est
            return est.predict_proba(X) if self.classify else est.predict(X)
        leaves = self.values[nodes]  # (rows, trees, outputs)
        running = np.concatenate([np.zeros_like(leaves[:, :1]), leaves], axis=1)
        out = np.cumsum(running, axis=1)[:, -1] / len(flat.roots)
        return out if self.classify else out[:, 0]


class XgbForest:
    """An XGBoost booster's trees in flat arrays, walked for a few rows all at once.

    XGBoost's own call costs ~0.4 ms on one row whatever the trees (its Python wrapper, and a
    walk over every node of every tree for their depth); ``FlatTrees`` walks them all in
    ~0.05 ms on one row. What XGBoost computes, in its precision and order: the row in float32;
    missing goes the node's default side; a category in the node's set goes right, any other
    (or a negative one) left; a number goes left when ``<`` the threshold; the leaves summed
    tree after tree in float32 onto the base margin; for ``binary:logistic``,
    ``1 / (expf(min(-x, 88.7)) + 1)`` in float32 with the C library's ``expf``. Built only for
    single-output models of those objectives (binary:logistic, reg:squarederror,
    reg:absoluteerror) with one tree per round; anything else, or a model whose description has
    something unexpected, keeps the booster.
    """

    def __init__(self, model: dict[str, Any], end: int, expf: Any, logf: Any) -> None:
        learner = model["learner"]
        self.objective = learner["objective"]["name"]
        trees = learner["gradient_booster"]["model"]["trees"][:end]
        f32 = np.float32
        score = f32(float(str(learner["learner_model_param"]["base_score"]).strip("[]")))
        if self.objective == "binary:logistic":  # XGBoost's ProbToMargin, in float32
            score = f32(-logf(float(f32(f32(1.0) / score) - f32(1.0))))
        self.base, self.expf = score, expf
        # no bitsets (categories come as sets) and no values (a leaf's is its split condition)
        parts = _linked_parts()
        roots, sets = [], {}
        offset = depth = 0
        for tree in trees:
            left = np.asarray(tree["left_children"], dtype=np.intp)
            right = np.asarray(tree["right_children"], dtype=np.intp)
            roots.append(offset)
            _add_linked(parts, offset, left, right, tree["split_indices"],
                        np.asarray(tree["split_conditions"], dtype=np.float32),
                        tree["default_left"], tree["split_type"])  # fmt: skip
            segments, sizes = tree["categories_segments"], tree["categories_sizes"]
            for k, node in enumerate(tree["categories_nodes"]):
                sets[offset + node] = tree["categories"][segments[k] : segments[k] + sizes[k]]
            depth = max(depth, _tree_depth(left, right))
            offset += len(left)
        f = {name: np.concatenate(p) for name, p in parts.items()}
        # each categorical node's side for every category code: in its set -> right; any other,
        # a negative one or one past the largest in any set -> left
        nodes, table_row = _category_rows(f["categorical"])
        if set(sets) != set(nodes.tolist()):
            raise ValueError("categorical nodes without categories")
        width = 1 + max((max(v) for v in sets.values() if v), default=0)
        table = np.ones((len(nodes), width + 1), dtype=bool)
        for i, node in enumerate(nodes):
            table[i, np.asarray(sets[node], dtype=np.intp)] = False
        self.flat = FlatTrees(
            roots=np.asarray(roots, dtype=np.intp), depth=depth, value=f["threshold"],
            table=table if len(nodes) else None, table_row=table_row if len(nodes) else None,
            strict=True, wrap=False, **f,
        )  # fmt: skip

    @classmethod
    def of(cls, booster: Any, iterations: tuple[int, int] | None) -> XgbForest | None:
        """The flat form of ``booster`` over ``iterations``, or None when it is not one this
        reproduces (then the booster predicts)."""
        import json

        try:
            libm = _libm()
            if libm is None:
                return None
            model = json.loads(booster.save_raw("json"))
            learner = model["learner"]
            gbm = learner["gradient_booster"]
            if gbm.get("name") != "gbtree" or learner["objective"]["name"] not in (
                "binary:logistic", "reg:squarederror", "reg:absoluteerror",
            ):  # fmt: skip
                return None
            params = gbm["model"]["gbtree_model_param"]
            if int(params.get("num_parallel_tree", 1)) != 1:
                return None
            if any(int(g) != 0 for g in gbm["model"]["tree_info"]):
                return None
            if int(learner["learner_model_param"].get("num_target", 1)) != 1:
                return None
            end = (iterations or (0, 0))[1] or len(gbm["model"]["trees"])
            if (iterations or (0, 0))[0] != 0:
                return None
            return cls(model, end, libm.expf, libm.logf)
        except (OSError, AttributeError, KeyError, TypeError, ValueError):
            return None

    def predict(self, M: np.ndarray) -> np.ndarray | None:
        """What the booster's ``inplace_predict`` gives for the rows of ``M`` (float32); None if
        a walk did not end at a leaf (the booster answers)."""
        values = self.flat.leaves(M.astype(np.float32))
        if values is None:
            return None
        start = np.full((len(M), 1), self.base, dtype=np.float32)
        margin = np.cumsum(np.hstack([start, values]), axis=1, dtype=np.float32)[:, -1]
        if self.objective != "binary:logistic":
            return margin
        f32, one = np.float32, np.float32(1.0)
        return np.array(
            [one / (f32(self.expf(float(min(-m, f32(88.7))))) + one + f32(1e-16)) for m in margin],
            dtype=np.float32,
        )


class LgbRow:
    """LightGBM's single-row prediction from a configuration prepared once.

    ``Booster.predict`` on one row costs ~28 us of wrapper and set-up around LightGBM's walk
    (a predictor object, parameter strings, a result-size query); LightGBM's C API can prepare
    that once (``LGBM_BoosterPredictForMatSingleRowFastInit``), after which a row costs ~9 us.
    Same predictor, same iterations (the best one when the booster has one, as ``predict``
    uses), same output. A prepared configuration serves one call at a time: a call that finds
    it busy returns None and the caller uses ``predict``. Freed with the object.
    """

    def __init__(self, booster: Any) -> None:
        from lightgbm.basic import (
            _C_API_DTYPE_FLOAT64,
            _C_API_PREDICT_NORMAL,
            _LIB,
            _c_str,
            _safe_call,
        )

        self.n_features = int(booster.num_feature())
        self.width = int(booster.num_model_per_iteration())
        best = int(getattr(booster, "best_iteration", 0) or 0)
        handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle, ctypes.c_int(_C_API_PREDICT_NORMAL), ctypes.c_int(0),
                ctypes.c_int(best if best > 0 else -1), ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(self.n_features), _c_str("num_threads=1"), ctypes.byref(handle),
            )
        )  # fmt: skip
        self.handle, self.lock = handle, threading.Lock()
        self.call, self.check = _LIB.LGBM_BoosterPredictForMatSingleRowFast, _safe_call
        self.out_len = ctypes.c_int64(0)
        self.double_p = ctypes.POINTER(ctypes.c_double)
        self.freed = weakref.finalize(
            self, _free_lgb_config, _LIB.LGBM_FastConfigFree, handle, booster
        )

    @classmethod
    def of(cls, booster: Any) -> LgbRow | None:
        """The prepared form, or None where this LightGBM does not offer it."""
        try:
            from lightgbm.basic import LightGBMError
        except ImportError:
            return None
        try:
            return cls(booster)
        except (ImportError, AttributeError, OSError, TypeError, ValueError, LightGBMError):
            return None

    def predict(self, row: np.ndarray) -> np.ndarray | None:
        """``Booster.predict`` of one row (float64, the booster's feature count), or None when
        another thread is using the configuration."""
        if len(row) != self.n_features or not self.lock.acquire(blocking=False):
            return None
        try:
            x = np.ascontiguousarray(row, dtype=np.float64)
            out = np.empty(self.width, dtype=np.float64)
            self.check(
                self.call(
                    self.handle, x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self.out_len),
                    out.ctypes.data_as(self.double_p),
                )
            )  # fmt: skip
        finally:
            self.lock.release()
        return out[None, :] if self.width > 1 else out


@functools.cache
def _libm() -> Any:
    """The C math library with ``expf`` and ``logf`` in float32 (None where it is not found);
    loaded once per process."""
    import ctypes.util

    library = ctypes.util.find_library("m")
    if library is None:
        return None
    libm = ctypes.CDLL(library)
    libm.expf.restype = libm.logf.restype = ctypes.c_float
    libm.expf.argtypes = libm.logf.argtypes = [ctypes.c_float]
    return libm


def _free_lgb_config(free: Any, handle: ctypes.c_void_p, booster: Any) -> None:
    """Free a prepared LightGBM configuration (its booster is held until then)."""
    free(handle)


def _tree_depth(left: np.ndarray, right: np.ndarray) -> int:
    """The longest path from node 0 to a leaf (children -1)."""
    depth, level = 0, [0]
    while True:
        inner = [i for i in level if left[i] != -1]
        if not inner:
            return depth
        level = [int(c) for i in inner for c in (left[i], right[i])]
        depth += 1


_NODE_FIELDS = (
    "feature", "threshold", "missing_left", "left", "right", "value", "categorical", "bitset", "leaf",
)  # fmt: skip


def _hist_gb_recode(
    stack: ColumnStack, est: Any
) -> tuple[dict[int, np.ndarray], np.ndarray] | None:
    """The lookups and column order standing in for a fitted HistGradientBoosting's input step,
    or None when that step is not the one this reproduces."""
    pre = getattr(est, "_preprocessor", None)
    names = list(getattr(stack, "feature_names_out_", []))
    if pre is None:  # no categorical columns: it takes the stack's columns as they are
        if getattr(est, "n_features_in_", None) != len(names):
            return None
        return {}, np.arange(len(names))
    parts = [(n, t, np.asarray(c)) for n, t, c in pre.transformers_ if n != "remainder"]
    if [n for n, _, _ in parts] != ["encoder", "numerical"] or len(names) != len(parts[0][2]):
        return None
    mask = parts[0][2].astype(bool)
    if not np.array_equal(~mask, parts[1][2].astype(bool)):
        return None
    encoder = parts[0][1]
    # which of our encoders made each output column, and its levels
    levels: dict[int, list[str]] = {}
    position = 0
    for _, fitted, columns in stack.parts_:
        if isinstance(fitted, CategoryEncoder):
            for c in columns:
                levels[position] = fitted.levels_[c]
                position += 1
        elif fitted is None:
            position += len(columns)
        else:
            position += len(fitted.get_feature_names_out(columns))
    categorical = np.flatnonzero(mask)
    if position != len(names) or set(categorical) != set(levels):
        return None
    luts = {}
    for j, known in zip(categorical, encoder.categories_, strict=True):
        index = {v: float(i) for i, v in enumerate(known) if isinstance(v, str)}
        luts[int(j)] = np.array([index.get(v, np.nan) for v in levels[j]] + [np.nan])
    order = np.concatenate([categorical, np.flatnonzero(~mask)])
    return luts, order


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
    if _linear_model(est) and all(
        fitted is None or hasattr(fitted, "steps") for _, fitted, _ in stack.parts_
    ):
        twin = _array_estimator(est)
        return CompiledPipeline(coercer, stack, twin, "dense", None, False, task=task)
    allowed = (type(None), CategoryEncoder, DatetimeFeatures)
    if not all(type(fitted) in allowed for _, fitted, _ in stack.parts_):
        return None
    binary = task == "binary"
    kind = type(est).__module__.split(".")[0]
    if type(est).__name__.startswith("HistGradientBoosting") and kind == "sklearn":
        # scikit-learn's private parts this relies on; a version without them keeps the pipeline
        needed = ("_predictors", "_baseline_prediction", "_loss", "_bin_mapper")
        if not all(hasattr(est, a) for a in needed) or getattr(est, "_in_fit", False):
            return None
        recode = _hist_gb_recode(stack, est)
        if recode is None:
            return None
        compiled = CompiledPipeline(coercer, stack, est, "hist_gb", None, False, recode, task)
        try:
            compiled._hist_gb_forest()
        except (ImportError, AttributeError, KeyError, ValueError):
            return None
        return compiled
    inner = getattr(est, "steps", None)
    from mlre.models.adapters import CategoryCodes

    if inner is not None and len(inner) == 2 and isinstance(inner[0][1], CategoryCodes):
        # a forest behind its category-codes step: the codes are the matrix's own
        forest = inner[1][1]
        names = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
                 "ExtraTreesRegressor")  # fmt: skip
        if type(forest).__name__ not in names:
            return None
        if type(forest).__module__.split(".")[0] != "sklearn":
            return None
        if binary and len(forest.classes_) != 2:
            return None
        try:
            return CompiledPipeline(coercer, stack, Forest(forest), "forest", None, False)
        except (AttributeError, TypeError, ValueError):
            return None
    if type(est).__name__ == "TabularMLP" and hasattr(est, "net_"):
        rows = MlpRows.of(est, stack)
        if rows is None:
            return None
        return CompiledPipeline(coercer, stack, rows, "mlp", None, False, task=task)
    if type(est).__name__ == "CatBoostModel" and hasattr(est, "model_"):
        rows = CatRows.of(est, stack, task)
        if rows is None:
            return None
        return CompiledPipeline(coercer, stack, rows, "catboost", None, False, task=task)
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


def _linear_model(est: Any) -> bool:
    """A fitted scikit-learn linear model (its prediction a product of the matrix and its
    coefficients)."""
    return type(est).__module__.startswith("sklearn.linear_model.") and hasattr(est, "coef_")


def _array_estimator(est: Any) -> Any:
    """A copy of a fitted estimator that predicts arrays without warning that it was fitted on a
    table with column names (the copy's values are the estimator's own)."""
    import copy

    twin = copy.deepcopy(est)
    twin.__dict__.pop("feature_names_in_", None)
    return twin
