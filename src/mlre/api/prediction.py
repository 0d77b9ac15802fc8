"""``mlre predict``: a registered model's predictions for a table, after checking the model's
hash and the table against the model's data contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlre.api.inputs import as_table
from mlre.errors import InputError
from mlre.spec import Spec


@dataclass
class Prediction:
    """Predictions for a table, and what was noticed about its columns."""

    frame: pd.DataFrame | None  # None when the predictions were streamed to a file
    warnings: list[str]
    model_uri: str
    model_version: str | None
    rows: int = 0


def predict(
    model_uri: str,
    data: str | Path | pd.DataFrame,
    *,
    output: str | Path | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    batch_rows: int | None = None,
) -> Prediction:
    """Predict with a registered model after checking its hash and the input against its contract.

    With an ``output`` file, a Parquet or CSV input larger than memory allows (or any, when
    ``batch_rows`` is given) is predicted in batches of rows, memory bounded by the batch."""
    from mlre.api.stream import BATCH_ROWS, predict_streamed, streamable
    from mlre.track.registry import load_model, predict_frame

    loaded = load_model(model_uri)
    model = loaded.model
    if output is not None and (batch_rows is not None or streamable(data, output)):
        rows, warnings = predict_streamed(model, data, output, rows=batch_rows or BATCH_ROWS)
        return Prediction(None, warnings, model_uri, loaded.version, rows)
    features, warnings = checked_input(model, data, encoding=encoding, delimiter=delimiter)
    frame = predict_frame(model, features)
    if output is not None:
        out = Path(output)
        if out.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(out, index=False)
        else:
            frame.to_csv(out, index=False)
    return Prediction(frame, warnings, model_uri, loaded.version, len(frame))


def checked_input(
    model: Any,
    data: str | Path | pd.DataFrame,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The model's input columns of ``data``, checked against its data contract, and warnings.

    A missing column or an impossible type is an InputError naming the column; extra columns
    and unseen categories are warnings.
    """
    table = as_table(data, spec=Spec(), encoding=encoding, delimiter=delimiter)
    violations = model.contract.validate_frame(table.frame)
    blocking = [v for v in violations if v.blocking]
    if blocking:
        first = blocking[0]
        more = f" (and {len(blocking) - 1} more problem(s))" if len(blocking) > 1 else ""
        raise InputError(
            f"{first.message}{more}",
            hint="the table must have the columns and types the model was trained on",
        )
    features = [c.name for c in model.contract.features]
    return table.frame[features], [v.message for v in violations]
