"""scikit-learn transformers mlre needs and no library provides in this form."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlre.data.contract import SMALL_ROWS

TRUE_TOKENS = {"true", "yes", "y", "t", "1", "1.0"}
FALSE_TOKENS = {"false", "no", "n", "f", "0", "0.0"}


class ColumnCoercer(TransformerMixin, BaseEstimator):
    """Select the model's columns and give each its contract type (numbers, flags, dates, text).

    Serving sends JSON, files arrive with numbers as text: coercing here keeps the fitted pipeline
    the single definition of what the model accepts.
    """

    def __init__(self, numeric=(), boolean=(), datetime=(), categorical=()):
        self.numeric = numeric
        self.boolean = boolean
        self.datetime = datetime
        self.categorical = categorical

    def fit(self, X: pd.DataFrame, y=None) -> ColumnCoercer:
        self.columns_ = [*self.numeric, *self.boolean, *self.datetime, *self.categorical]
        return self

    def arrays(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each model column as a numpy array of its contract type: float64 for numbers and
        flags (missing NaN), datetime64[ns] for dates, object for categories (text, NaN)."""
        out: dict[str, np.ndarray] = {}
        cells = _few_cells(X)  # a served request's values as JSON gave them, or None
        for c in self.numeric:
            if cells is not None and (numbers := _plain_numbers(cells[c])) is not None:
                out[c] = numbers
                continue
            s = X[c]
            if isinstance(s.dtype, np.dtype) and s.dtype.kind in "iufb":
                out[c] = s.to_numpy().astype(np.float64, copy=False)
            elif pd.api.types.is_numeric_dtype(s.dtype):
                out[c] = s.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out[c] = pd.to_numeric(s, errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
        for c in self.boolean:
            out[c] = _to_flag(X[c]).to_numpy(dtype=np.float64, na_value=np.nan)
        for c in self.datetime:
            s = X[c]
            if not pd.api.types.is_datetime64_any_dtype(s.dtype):
                s = pd.to_datetime(s, errors="coerce", format="mixed", utc=True)
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            out[c] = s.astype("datetime64[ns]").to_numpy()
        for c in self.categorical:
            if cells is not None and all(type(v) is str for v in cells[c]):
                out[c] = cells[c]
                continue
            s = X[c]
            if isinstance(s.dtype, pd.StringDtype):  # text already (what JSON and most files give)
                out[c] = s.to_numpy(dtype=object, na_value=np.nan)
                continue
            values = s.to_numpy()
            if values.dtype == object and all(type(v) is str for v in values):
                out[c] = values
            else:
                text = s.astype("string").astype(object).where(s.notna(), np.nan)
                out[c] = text.to_numpy(dtype=object)
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        # object columns stay object: a plain array would be inferred as pandas' string type
        return pd.DataFrame(
            {
                c: pd.Series(v, index=X.index, dtype=v.dtype, copy=False)
                for c, v in self.arrays(X).items()
            },
            index=X.index,
            copy=False,
        )

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.columns_, dtype=object)


def _few_cells(X: pd.DataFrame) -> dict[Any, np.ndarray] | None:
    """Each column's values of a short table whose columns are all objects (a served request,
    see ``mlre.serve.protocol``), taken out in one call; None for any other table."""
    if len(X) > SMALL_ROWS or not all(dtype == np.dtype(object) for dtype in X.dtypes):
        return None
    values = X.to_numpy(dtype=object)
    return {c: values[:, j] for j, c in enumerate(X.columns)}


def _plain_numbers(values: np.ndarray) -> np.ndarray | None:
    """The float64 values of an object array holding only ints, floats and missing values
    (None, NaN), as ``pd.to_numeric`` reads them; None for anything else."""
    if not all(v is None or type(v) is int or type(v) is float for v in values):
        return None
    try:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    except OverflowError:
        return None


def _to_flag(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype("float64")
    text = s.astype("string").str.strip().str.lower()
    return pd.Series(
        np.where(text.isin(TRUE_TOKENS), 1.0, np.where(text.isin(FALSE_TOKENS), 0.0, np.nan)),
        index=s.index,
    )


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Expand each date column into what an engineer would make of it: calendar parts (year,
    quarter, month, week of year, day of month, of week and of year, weekend, hour when the
    column has times), the days since the earliest training date and, for a ``country``, its
    public holidays (the day itself, and the days to the next and since the last one).

    The raw timestamp never enters as a number of its own: days since the start carry the
    trend, the parts carry the seasons."""

    PARTS = (
        "year", "quarter", "month", "week_of_year", "day", "day_of_week", "day_of_year",
        "weekend", "hour",
    )  # fmt: skip
    #: The parts of models fitted before weeks, quarters and weekends were made.
    FIRST_PARTS = ("year", "month", "day", "day_of_week", "day_of_year", "hour")
    #: Days to or from a holiday further than this read as this.
    HOLIDAY_HORIZON = 30

    def __init__(self, country: str | None = None, subdivision: str | None = None):
        self.country = country
        self.subdivision = subdivision

    def fit(self, X: pd.DataFrame, y=None) -> DatetimeFeatures:
        self.columns_ = list(X.columns)
        self.with_time_ = {
            c: bool((pd.to_datetime(X[c]).dt.hour.fillna(0) != 0).any()) for c in X.columns
        }
        self.parts_ = self.PARTS
        starts = {c: pd.to_datetime(X[c]).min() for c in X.columns}
        self.start_ = {
            c: (v if pd.notna(v) else pd.Timestamp("1970-01-01")) for c, v in starts.items()
        }
        return self

    def _parts(self) -> tuple[str, ...]:
        return self.__dict__.get("parts_", self.FIRST_PARTS)

    def _holiday_days(self, years: range) -> np.ndarray:
        """The holidays of ``years`` as sorted day numbers (days since 1970), looked up once per
        span of years (a served row must not wait for the calendar)."""
        cache = self.__dict__.setdefault("holiday_cache_", {})
        key = (years.start, years.stop)
        if key not in cache:
            import holidays

            assert self.country is not None
            found = holidays.country_holidays(
                self.country, subdiv=self.subdivision, years=list(years)
            )
            days = [np.datetime64(d, "D").astype(np.int64) for d in found]
            cache[key] = np.asarray(sorted(days), dtype=np.int64)
        return cache[key]

    def _holidays(self, s: pd.Series) -> dict[str, np.ndarray]:
        """Whether each date is a holiday, and the days to the next and since the last one."""
        day = s.dt.floor("D").to_numpy().astype("datetime64[D]").astype(np.int64).astype(float)
        day[s.isna().to_numpy()] = np.nan
        years = s.dt.year.dropna()
        horizon = float(self.HOLIDAY_HORIZON)
        if years.empty:
            nan = np.full(len(s), np.nan)
            return {"holiday": nan, "to_holiday": nan, "from_holiday": nan}
        marks = self._holiday_days(range(int(years.min()) - 1, int(years.max()) + 2))
        finite = np.isfinite(day)
        out = {k: np.full(len(s), np.nan) for k in ("holiday", "to_holiday", "from_holiday")}
        if len(marks) == 0:
            for k in out:
                out[k][finite] = 0.0 if k == "holiday" else horizon
            return out
        d = day[finite].astype(np.int64)
        nxt = np.searchsorted(marks, d, side="left")
        prev = np.searchsorted(marks, d, side="right") - 1
        to_next = np.where(nxt < len(marks), marks[np.minimum(nxt, len(marks) - 1)] - d, horizon)
        since = np.where(prev >= 0, d - marks[np.maximum(prev, 0)], horizon)
        out["holiday"][finite] = (to_next == 0).astype(float)
        out["to_holiday"][finite] = np.minimum(to_next, horizon)
        out["from_holiday"][finite] = np.minimum(since, horizon)
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {}
        starts = self.__dict__.get("start_", {})
        for c in self.columns_:
            s = pd.to_datetime(X[c])
            start = starts.get(c, pd.Timestamp("1970-01-01"))
            out[f"{c}__days"] = (s - start).dt.total_seconds() / 86400.0
            for part in self._parts():
                if part == "hour" and not self.with_time_[c]:
                    continue
                out[f"{c}__{part}"] = self._part(s, part)
            if self.__dict__.get("country"):
                for name, values in self._holidays(s).items():
                    out[f"{c}__{name}"] = values
        return pd.DataFrame(out, index=X.index)

    @staticmethod
    def _part(s: pd.Series, part: str) -> pd.Series:
        if part == "week_of_year":
            return s.dt.isocalendar().week.astype("float64")
        if part == "weekend":
            return (s.dt.day_of_week >= 5).astype("float64").where(s.notna())
        return getattr(s.dt, part).astype("float64")

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = []
        holiday = ("holiday", "to_holiday", "from_holiday") if self.__dict__.get("country") else ()
        for c in self.columns_:
            names.append(f"{c}__days")
            names += [f"{c}__{p}" for p in self._parts() if p != "hour" or self.with_time_[c]]
            names += [f"{c}__{h}" for h in holiday]
        return np.asarray(names, dtype=object)


class CategoryEncoder(TransformerMixin, BaseEstimator):
    """Categorical columns as pandas categoricals with the training levels (rare ones pooled).

    Unseen and pooled levels become one ``__other__`` level; missing stays missing. Tree libraries
    (LightGBM, XGBoost, CatBoost, HistGradientBoosting) take the result natively.
    """

    OTHER = "__other__"

    def __init__(self, max_levels: int = 250, min_count: int = 5):
        self.max_levels = max_levels
        self.min_count = min_count

    def fit(self, X: pd.DataFrame, y=None) -> CategoryEncoder:
        self.levels_ = {}
        for c in X.columns:
            counts = X[c].dropna().astype(str).value_counts()
            keep = counts[counts >= self.min_count].index[: self.max_levels].tolist()
            self.levels_[c] = [*keep, self.OTHER]
        return self

    def _level_lookups(self) -> dict[str, tuple[dict[str, int], pd.CategoricalDtype]]:
        lookups = self.__dict__.get("lookups_")
        if lookups is None:
            lookups = self.lookups_ = {
                c: ({v: i for i, v in enumerate(levels[:-1])}, pd.CategoricalDtype(levels))
                for c, levels in self.levels_.items()
            }
        return lookups

    def codes(self, X: pd.DataFrame | dict[str, np.ndarray]) -> np.ndarray:
        """The level codes of every column, one column each (-1 for missing)."""
        # by dictionary lookup, not string operations on a Series: a served model pays this on
        # every request, and pandas' fixed cost per operation dominates small requests
        lookups = self._level_lookups()
        columns = [np.asarray(X[c], dtype=object) for c in lookups]
        n = len(columns[0]) if columns else len(X)
        out = np.empty((n, len(lookups)), dtype=np.int64)
        for j, ((lookup, _), values) in enumerate(zip(lookups.values(), columns, strict=True)):
            other = len(lookup)
            out[:, j] = np.fromiter(
                (-1 if v is None or v != v else lookup.get(v if isinstance(v, str) else str(v), other)
                 for v in values),
                dtype=np.int64,
                count=n,
            )  # fmt: skip
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        codes = self.codes(X)
        out = {
            c: pd.Categorical.from_codes(codes[:, j], dtype=dtype, validate=False)
            for j, (c, (_, dtype)) in enumerate(self._level_lookups().items())
        }
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(list(self.levels_), dtype=object)


#: scikit-learn steps a stack part may be made of for a few rows to go through it as numpy
#: arrays (``ColumnStack.array_parts``): each reads its input column by column and keeps no
#: per-call state.
ARRAY_STEPS = ("SimpleImputer", "StandardScaler", "OneHotEncoder")


def _array_step(step: Any) -> bool:
    return type(step).__name__ in ARRAY_STEPS and type(step).__module__.startswith("sklearn.")


def array_copy(fitted: Any) -> Any:
    """A copy of a fitted pipeline of ``ARRAY_STEPS`` that takes and gives numpy arrays (its
    steps deep-copied, numpy output, without the fitted column names an array does not carry);
    None for anything else."""
    import copy

    steps = getattr(fitted, "steps", None)
    if not steps or not all(_array_step(step) for _, step in steps):
        return None
    twin = copy.deepcopy(fitted)
    for _, step in twin.steps:
        step.__dict__.pop("feature_names_in_", None)
    return twin.set_output(transform="default")


# scikit-learn ships no types, so mypy checks this class keyword against object's
# __init_subclass__ rather than the one of scikit-learn's set_output mixin, which takes it
class ColumnStack(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):  # type: ignore[call-arg]
    """Each part's transformer on its own columns, the outputs side by side (pandas).

    What scikit-learn's ColumnTransformer does for mlre's pipelines, without its fixed cost per
    call (input checks and a joblib dispatch, about 6 ms): an ensemble of a dozen bagged pipelines
    paid it a dozen times for every one-row prediction it served. ``parts`` are
    ``(name, transformer or "passthrough", columns)``; every transformer gives pandas out.
    """

    def __init__(self, parts=()):
        self.parts = parts

    def fit(self, X: pd.DataFrame, y=None) -> ColumnStack:
        self._fit(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y=None, **_: Any) -> pd.DataFrame:
        """Fit, and the training rows' output: a part whose training output differs from its
        output on new rows (``OWN_TRAINING_OUTPUT``: out-of-fold predictions of a text model)
        gives that one."""
        return self._stack(X, self._fit(X, y))

    def _fit(self, X: pd.DataFrame, y: Any) -> dict[str, pd.DataFrame]:
        from sklearn.base import clone

        self.parts_ = []
        names: list[str] = []
        training: dict[str, pd.DataFrame] = {}
        for name, transformer, columns in self.parts:
            columns = list(columns)
            if isinstance(transformer, str) and transformer == "passthrough":
                self.parts_.append((name, None, columns))
                names += columns
                continue
            fitted = clone(transformer).set_output(transform="pandas")
            if getattr(fitted, "OWN_TRAINING_OUTPUT", False):
                training[name] = fitted.fit_transform(X[columns], y)
            else:
                fitted.fit(X[columns], y)
            self.parts_.append((name, fitted, columns))
            names += [str(n) for n in fitted.get_feature_names_out(columns)]
        self.feature_names_out_ = np.asarray(names, dtype=object)
        return training

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return self._stack(X, {})

    def _stack(self, X: pd.DataFrame, given: dict[str, pd.DataFrame]) -> pd.DataFrame:
        twins = self.array_parts() if len(X) <= SMALL_ROWS else [None] * len(self.parts_)
        frames = []
        for (name, fitted, columns), twin in zip(self.parts_, twins, strict=True):
            if name in given:
                part = given[name]
            elif twin is not None:  # a few rows: the part's own steps, on numpy arrays
                part = pd.DataFrame(twin.transform(X[columns].to_numpy()), index=X.index)
            else:
                part = X[columns] if fitted is None else fitted.transform(X[columns])
            if not isinstance(part, pd.DataFrame):
                part = pd.DataFrame(part, index=X.index)
            frames.append(part)
        if not frames:
            return pd.DataFrame(index=X.index)
        out = frames[0] if len(frames) == 1 else pd.concat(frames, axis=1)
        out.columns = self.feature_names_out_
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return self.feature_names_out_

    def array_parts(self) -> list[Any]:
        """For each part, a copy of its fitted pipeline that takes and gives numpy arrays, when
        its steps are all of ``ARRAY_STEPS``; else None (the part keeps pandas). Built on first
        use, not pickled.

        scikit-learn's pandas output costs more than these steps on a few rows: a served row
        spent 1.7 ms in the numeric imputer and scaler and 5.1 ms in the categorical imputer
        and one-hot encoder of a linear model's stack, against 0.3 and 1.7 ms on arrays. The
        copies are the fitted steps themselves (a deep copy, with numpy output and without the
        fitted column names an array does not carry), so the values are the same to the bit.
        """
        twins = self.__dict__.get("array_parts_")
        if twins is None:
            twins = self.array_parts_ = [array_copy(fitted) for _, fitted, _ in self.parts_]
        return twins

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("array_parts_", None)  # rebuilt on first use
        return state

    def set_output(self, *, transform=None) -> ColumnStack:
        """Pandas out always (its parts are set when they are fitted)."""
        return self
