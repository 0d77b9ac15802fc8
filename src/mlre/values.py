"""Plain Python values from numpy and pandas ones, for JSON, MLflow tags and responses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np

_PRIMITIVE = (str, int, float, bool, type(None))


def plain(value: Any, *, other: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as a plain Python object: numpy scalars and arrays unwrapped, dates and
    timestamps as ISO text; anything else as it is, or through ``other`` when that is given and
    the value is not a JSON primitive (``json.dumps(default=...)`` passes ``str``)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dt.date):  # pandas' Timestamp is a datetime
        return value.isoformat()
    if other is not None and not isinstance(value, _PRIMITIVE):
        return other(value)
    return value


def json_default(value: Any) -> Any:
    """The ``default`` hook of ``json.dumps``: plain values, or the text of anything else."""
    return plain(value, other=str)
