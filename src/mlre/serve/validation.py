"""A request's table checked against the served version's data contract, before it predicts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mlre.serve.protocol import SMALL_ROWS, BadRequest
from mlre.serve.slots import Slot


def validated(slot: Slot, frame: pd.DataFrame, max_rows: int) -> tuple[pd.DataFrame, list[str]]:
    """The request as ``slot``'s model reads it, or BadRequest (413 over ``max_rows`` rows, 422
    naming the column and reason), with the warnings of the contract's non-blocking checks.

    Columns the model does not read are dropped; values keep their JSON types (the model's
    own first step turns numbers sent as text into numbers, as it did in training)."""
    if len(frame) > max_rows:
        raise BadRequest(
            f"{len(frame):,} rows in one request; the limit is {max_rows:,}",
            status=413,
        )
    # a small request's values are taken out of the table once, for both checks
    values = frame.to_numpy(dtype=object) if len(frame) <= SMALL_ROWS else None
    bad = bad_cell(frame, values)
    if bad is not None:
        column, reason = bad
        raise BadRequest(f"column {column!r} holds {reason}", status=422, column=str(column))
    violations = slot.model.contract.validate_frame(frame, values=values)
    blocking = [v for v in violations if v.blocking]
    if blocking:
        first = blocking[0]
        more = f" (and {len(blocking) - 1} more problem(s))" if len(blocking) > 1 else ""
        raise BadRequest(f"{first.message}{more}", status=422, column=first.column)
    features = slot.features
    X = frame if list(frame.columns) == features else frame[features]
    return X, [v.message for v in violations]


#: The largest magnitude of an integer cell (a 64-bit integer's).
INT64_MAX = 2**63 - 1


def bad_cell(frame: pd.DataFrame, values: np.ndarray | None = None) -> tuple[Any, str] | None:
    """The first column holding a value no model column can: a JSON object or list, an
    infinite number, an integer beyond 64 bits; with what it holds (None when all are cells).
    ``values``: all of the table's values as objects when the caller has them (a small
    request), else the object columns are read cell by cell and the float columns at once."""
    if values is not None:
        objects = list(range(frame.shape[1]))
    else:
        for j, dtype in enumerate(frame.dtypes):
            if dtype.kind == "f" and np.isinf(frame.iloc[:, j].to_numpy()).any():
                return frame.columns[j], "an infinite number"
        objects = [j for j, dtype in enumerate(frame.dtypes) if dtype == np.dtype(object)]
        if not objects:
            return None
        values = frame.iloc[:, objects].to_numpy(dtype=object)
    for j in range(values.shape[1]):
        for v in values[:, j]:
            if isinstance(v, (dict, list)):
                return frame.columns[
                    objects[j]
                ], "a nested value (an object or a list), not a cell value"
            if isinstance(v, float) and (v == np.inf or v == -np.inf):
                return frame.columns[objects[j]], "an infinite number"
            if isinstance(v, int) and not -INT64_MAX <= v <= INT64_MAX:
                return frame.columns[objects[j]], "an integer beyond the range of 64 bits"
    return None
