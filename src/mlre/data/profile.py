"""Per-column profile: the statistics every audit check, report and contract reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from mlre.data.roles import Role, infer_role, is_text_dtype, value_sample
from mlre.values import plain

TOP_K = 5
#: Above this many distinct values, the full value counts of a numeric column are not computed.
COUNTS_LIMIT = 1000


class ColumnProfile(BaseModel):
    """What one column holds."""

    name: str
    role: Role
    dtype: str
    n_missing: int
    missing_frac: float
    n_unique: int
    unique_frac: float
    top: list[tuple[Any, int]] = []
    top_frac: float | None = None
    mean: float | None = None
    std: float | None = None
    min: Any = None
    q1: float | None = None
    median: float | None = None
    q3: float | None = None
    max: Any = None
    n_inf: int = 0
    mean_length: float | None = None


def logical_dtype(s: pd.Series) -> str:
    """integer, float, boolean, datetime, string or mixed: the storage type in plain words."""
    dt = s.dtype
    if pd.api.types.is_bool_dtype(dt):
        return "boolean"
    if pd.api.types.is_integer_dtype(dt):
        return "integer"
    if pd.api.types.is_float_dtype(dt):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dt):
        return "datetime"
    if pd.api.types.is_string_dtype(dt) and not pd.api.types.is_object_dtype(dt):
        return "string"
    if isinstance(dt, pd.CategoricalDtype):
        return "string"
    kinds = {type(v).__name__ for v in s.dropna().head(1000)}
    return "string" if kinds <= {"str"} else "mixed"


def _numeric_stats(s: pd.Series, present: int) -> dict[str, Any]:
    """Stats of a numeric column from one sort: distinct count, quartiles, most frequent values."""
    integral = pd.api.types.is_integer_dtype(s.dtype) and present == len(s)
    x = s.to_numpy() if integral else s.to_numpy(dtype=float, na_value=np.nan)
    if integral:
        v, n_inf = np.sort(x), 0
    else:
        finite = np.isfinite(x)
        v = np.sort(x[finite])
        n_inf = int((~finite).sum()) - int(np.isnan(x).sum())
    out: dict[str, Any] = {"n_inf": n_inf}
    if not v.size:
        out["n_unique"] = len(np.unique(x[np.isinf(x)])) if n_inf else 0
        return out
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]])
    runs = np.diff(np.r_[starts, v.size])
    n_unique = len(starts) + (len(np.unique(x[np.isinf(x)])) if n_inf else 0)
    top = np.argsort(-runs, kind="stable")[:TOP_K]
    q = np.quantile(v, [0.25, 0.5, 0.75])
    out.update(
        n_unique=n_unique,
        top=[(plain(v[starts[i]]), int(runs[i])) for i in top],
        top_frac=float(runs[top[0]]) / present,
        mean=float(v.mean()),
        std=float(v.std()),
        min=plain(v[0]),
        q1=float(q[0]),
        median=float(q[1]),
        q3=float(q[2]),
        max=plain(v[-1]),
    )
    if n_unique > COUNTS_LIMIT:
        out["top"] = []  # the most frequent of many distinct numbers says little
    return out


def profile_column(s: pd.Series, name: str, declared_id: bool = False) -> ColumnProfile:
    """Profile one column and infer its role."""
    n = len(s)
    n_missing = int(s.isna().sum())
    present = n - n_missing
    dtype = logical_dtype(s)
    prof: dict[str, Any] = {"name": name, "dtype": dtype, "n_missing": n_missing}
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    if numeric and present:
        prof.update(_numeric_stats(s, present))
    else:
        try:
            counts = s.value_counts(dropna=True)
        except TypeError:  # unhashable values (lists, dicts) from JSON
            counts = s.dropna().astype(str).value_counts()
            prof["dtype"] = "mixed"
        prof["n_unique"] = len(counts)
        if present and prof["dtype"] != "mixed":
            prof["top"] = [(plain(k), int(v)) for k, v in counts.head(TOP_K).items()]
            prof["top_frac"] = float(counts.iloc[0]) / present
    prof["n_unique"] = prof.get("n_unique", 0)
    prof["missing_frac"] = n_missing / n if n else 0.0
    prof["unique_frac"] = prof["n_unique"] / present if present else 0.0
    prof["role"] = infer_role(s, name, prof["n_unique"], declared_id)
    if pd.api.types.is_datetime64_any_dtype(s.dtype) and present:
        prof.update(min=plain(s.min()), max=plain(s.max()))
    elif is_text_dtype(s.dtype) and present and prof["dtype"] == "string":
        prof["mean_length"] = float(value_sample(s, 20_000).str.len().mean())
    return ColumnProfile(**prof)


#: The roles a spec's ``roles:`` may give a column, and what each means.
DECLARED_ROLES = {"text": Role.TEXT, "category": Role.CATEGORICAL, "id": Role.IDENTIFIER}


def profile_frame(
    df: pd.DataFrame,
    id_columns: tuple[str, ...] | list[str] = (),
    roles: Mapping[str, str] | None = None,
) -> dict[str, ColumnProfile]:
    """Profile every column of a table; ``roles`` (column -> text, category or id) overrides
    the inferred role of the columns it names."""
    ids = set(id_columns)
    out = {c: profile_column(df[c], c, c in ids) for c in df.columns}
    for column, role in (roles or {}).items():
        if column in out and role in DECLARED_ROLES:
            out[column] = out[column].model_copy(update={"role": DECLARED_ROLES[role]})
    return out
