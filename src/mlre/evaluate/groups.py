"""Rows grouped by one column's values, to look at a model's errors group by group (error
slices, residuals by feature)."""

from __future__ import annotations

import pandas as pd


def slice_groups(values: pd.Series, q: int = 4) -> pd.Series | None:
    """Groups of a column for slicing: categories as they are (the 20 most frequent, the rest as
    '(other)'), a number with few values by value, other numbers in ``q`` quantile ranges;
    None when the column cannot be grouped usefully (fewer than two groups)."""
    if (
        isinstance(values.dtype, pd.CategoricalDtype)
        or values.dtype == object
        or (pd.api.types.is_string_dtype(values.dtype))
        or pd.api.types.is_bool_dtype(values.dtype)
    ):
        labels = values.astype("string").fillna("(missing)")
        top = labels.value_counts().index[:20]
        if len(top) < 2:
            return None
        return labels.where(labels.isin(top), "(other)")
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = pd.to_numeric(values, errors="coerce").astype(float)
        if numbers.nunique() <= 6:
            return numbers.astype("string").fillna("(missing)")
        binned = pd.qcut(numbers, q=q, duplicates="drop")
        if len(binned.cat.categories) < 2:
            return None
        out = binned.astype("string").fillna("(missing)")
        return out
    return None
