"""scikit-learn transformers mlre needs and no library provides in this form."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

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

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c in self.numeric:
            out[c] = pd.to_numeric(X[c], errors="coerce").astype("float64")
        for c in self.boolean:
            out[c] = _to_flag(X[c])
        for c in self.datetime:
            s = X[c]
            if not pd.api.types.is_datetime64_any_dtype(s.dtype):
                s = pd.to_datetime(s, errors="coerce", format="mixed", utc=True)
            if getattr(s.dt, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            out[c] = s.astype("datetime64[ns]")
        for c in self.categorical:
            s = X[c]
            out[c] = s.astype("string").astype(object).where(s.notna(), np.nan)
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(self.columns_, dtype=object)


def _to_flag(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        return s.astype("float64")
    text = s.astype("string").str.strip().str.lower()
    return pd.Series(
        np.where(text.isin(TRUE_TOKENS), 1.0, np.where(text.isin(FALSE_TOKENS), 0.0, np.nan)),
        index=s.index,
    )


class DatetimeFeatures(TransformerMixin, BaseEstimator):
    """Expand each date column into calendar parts and a day count the models can use."""

    PARTS = ("year", "month", "day", "day_of_week", "day_of_year", "hour")

    def fit(self, X: pd.DataFrame, y=None) -> DatetimeFeatures:
        self.columns_ = list(X.columns)
        self.with_time_ = {
            c: bool((pd.to_datetime(X[c]).dt.hour.fillna(0) != 0).any()) for c in X.columns
        }
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c in self.columns_:
            s = pd.to_datetime(X[c])
            out[f"{c}__days"] = (s - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0
            for part in self.PARTS:
                if part == "hour" and not self.with_time_[c]:
                    continue
                out[f"{c}__{part}"] = getattr(s.dt, part).astype("float64")
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = []
        for c in self.columns_:
            names.append(f"{c}__days")
            names += [f"{c}__{p}" for p in self.PARTS if p != "hour" or self.with_time_[c]]
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

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for c, levels in self.levels_.items():
            s = X[c]
            text = s.astype(str).where(s.notna(), None)
            known = text.isin(levels[:-1])
            text = text.where(known | text.isna(), self.OTHER)
            out[c] = pd.Categorical(text, categories=levels)
        return pd.DataFrame(out, index=X.index)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(list(self.levels_), dtype=object)
