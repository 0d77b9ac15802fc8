"""Per-column profile: the statistics every audit check, report and contract reads."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from mlre.data.roles import Role, infer_role, is_text_dtype

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


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def profile_column(s: pd.Series, name: str, declared_id: bool = False) -> ColumnProfile:
    """Profile one column and infer its role."""
    n = len(s)
    n_missing = int(s.isna().sum())
    present = n - n_missing
    dtype = logical_dtype(s)
    try:
        n_unique = int(s.nunique(dropna=True))
    except TypeError:  # unhashable values (lists, dicts) from JSON
        n_unique = int(s.dropna().astype(str).nunique())
        dtype = "mixed"
    role = infer_role(s, name, n_unique, declared_id)
    prof: dict[str, Any] = {
        "name": name,
        "role": role,
        "dtype": dtype,
        "n_missing": n_missing,
        "missing_frac": n_missing / n if n else 0.0,
        "n_unique": n_unique,
        "unique_frac": n_unique / present if present else 0.0,
    }
    numeric = pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)
    if present and (not numeric or n_unique <= COUNTS_LIMIT) and dtype != "mixed":
        counts = s.value_counts(dropna=True)
        prof["top"] = [(_plain(k), int(v)) for k, v in counts.head(TOP_K).items()]
        prof["top_frac"] = float(counts.iloc[0]) / present
    if numeric and present:
        x = s.to_numpy(dtype=float, na_value=np.nan)
        finite = x[np.isfinite(x)]
        prof["n_inf"] = int(np.isinf(x).sum())
        if finite.size:
            q = np.quantile(finite, [0.25, 0.5, 0.75])
            prof.update(
                mean=float(finite.mean()),
                std=float(finite.std()),
                min=float(finite.min()),
                q1=float(q[0]),
                median=float(q[1]),
                q3=float(q[2]),
                max=float(finite.max()),
            )
            if prof.get("top_frac") is None:
                # a value held by over half the rows is the median: count it directly
                share = float((finite == q[1]).sum()) / present
                prof["top_frac"] = share if share >= 0.5 else None
    elif pd.api.types.is_datetime64_any_dtype(s.dtype) and present:
        prof.update(min=_plain(s.min()), max=_plain(s.max()))
    elif is_text_dtype(s.dtype) and present and dtype == "string":
        sample = s.dropna()
        if len(sample) > 20_000:
            sample = sample.sample(20_000, random_state=0)
        prof["mean_length"] = float(sample.str.len().mean())
    return ColumnProfile(**prof)


def profile_frame(
    df: pd.DataFrame, id_columns: tuple[str, ...] | list[str] = ()
) -> dict[str, ColumnProfile]:
    """Profile every column of a table."""
    ids = set(id_columns)
    return {c: profile_column(df[c], c, c in ids) for c in df.columns}
