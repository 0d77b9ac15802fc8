"""Column roles (numeric, categorical, boolean, datetime, free text, identifier) and task detection."""

from __future__ import annotations

import re
from enum import StrEnum

import numpy as np
import pandas as pd

from mlre.errors import InputError
from mlre.spec import Task


class Role(StrEnum):
    """What a column is for, which decides how it is checked and (later) featurised."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"
    DATETIME = "datetime"
    TEXT = "text"
    IDENTIFIER = "identifier"


BOOL_TOKENS = {"true", "false", "yes", "no", "y", "n", "t", "f"}
NUMBER_RE = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$")
DATE_RE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|\d{1,2}\s+[A-Za-z]{3,9}\.?\s+\d{2,4}|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{2,4})"
    r"([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([AaPp][Mm])?)?\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)
ID_NAME_RE = re.compile(r"(?:^|[_\-\s.])(?:id|uuid|guid|key|pk|index|rownames)$")
SAMPLE = 5000


def is_id_name(name: str) -> bool:
    """True for names like ``id``, ``customer_id``, ``customerID``, ``uuid``."""
    low = name.lower()
    return bool(
        ID_NAME_RE.search(low)
        or low in {"id", "pid", "uuid", "guid", "rownames", "unnamed: 0"}
        or re.search(r"[a-z](ID|Id)$", name)
    )


def is_text_dtype(dtype: object) -> bool:
    """True for string and object dtypes (the ones whose values are parsed to infer a role)."""
    return pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)


def value_sample(s: pd.Series, n: int = SAMPLE, seed: int = 0) -> pd.Series:
    """Up to ``n`` non-missing values, drawn at random so the sample is not just the file's head."""
    rng = np.random.default_rng(seed)
    values = s
    if len(s) > 4 * n:
        # draw positions first: cheaper than dropping missing values from millions of rows
        values = s.iloc[np.sort(rng.choice(len(s), 4 * n, replace=False))]
        if values.notna().sum() < n:
            values = s
    values = values.dropna()
    if len(values) > n:
        values = values.iloc[np.sort(rng.choice(len(values), n, replace=False))]
    return values


def kind_fractions(values: pd.Series) -> dict[str, float]:
    """Fractions of values that look like numbers, booleans, dates, or other text."""
    if len(values) == 0:
        return {}
    text = values.astype(str).str.strip()
    number = text.str.match(NUMBER_RE)
    boolean = text.str.lower().isin(BOOL_TOKENS)
    date = ~number & text.str.match(DATE_RE)
    other = ~(number | boolean | date)
    n = len(text)
    return {
        "number": float(number.sum()) / n,
        "boolean": float(boolean.sum()) / n,
        "date": float(date.sum()) / n,
        "text": float(other.sum()) / n,
    }


def infer_role(s: pd.Series, name: str, n_unique: int, declared_id: bool = False) -> Role:
    """The most likely role of one column."""
    n = int(s.notna().sum())
    unique_frac = n_unique / n if n else 0.0
    if declared_id:
        return Role.IDENTIFIER
    if pd.api.types.is_bool_dtype(s.dtype):
        return Role.BOOLEAN
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return Role.DATETIME
    if pd.api.types.is_numeric_dtype(s.dtype):
        if n_unique == 2 and set(pd.unique(s.dropna())) <= {0, 1}:
            return Role.BOOLEAN
        integer = pd.api.types.is_integer_dtype(s.dtype) and n >= 100
        if integer and (unique_frac == 1.0 or (is_id_name(name) and unique_frac > 0.5)):
            return Role.IDENTIFIER
        return Role.NUMERIC
    if not is_text_dtype(s.dtype):
        return Role.CATEGORICAL
    sample = value_sample(s)
    kinds = kind_fractions(sample)
    if not kinds:
        return Role.CATEGORICAL
    if n_unique <= 2 and kinds["boolean"] == 1.0:
        return Role.BOOLEAN
    if kinds["date"] >= 0.9:
        return Role.DATETIME
    if kinds["number"] >= 0.95:
        return Role.NUMERIC
    words = sample.astype(str).str.count(r"\s+").mean() + 1
    if n_unique > 50 and words >= 3:
        return Role.TEXT
    if n >= 100 and (unique_frac >= 0.95 or (is_id_name(name) and unique_frac > 0.5)):
        return Role.IDENTIFIER
    return Role.CATEGORICAL


def detect_task(y: pd.Series) -> Task:
    """'binary', 'multiclass' or 'regression' for a target column (missing values ignored)."""
    values = y.dropna()
    n_unique = values.nunique()
    if n_unique < 2:
        raise InputError(
            f"target {y.name!r} has a single value"
            + (f" ({values.iloc[0]!r})" if len(values) else ""),
            hint="there is nothing to learn; check the target column and the filter that made the file",
        )
    if n_unique == 2 or pd.api.types.is_bool_dtype(values.dtype):
        return "binary"
    if not pd.api.types.is_numeric_dtype(values.dtype):
        return "multiclass"
    as_float = values.to_numpy(dtype=float)
    integral = bool(np.all(np.isfinite(as_float)) and np.all(np.mod(as_float, 1) == 0))
    if integral and n_unique <= 20:
        return "multiclass"
    return "regression"
