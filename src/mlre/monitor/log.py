"""What the service logged, as a table to monitor: one row per predicted row (a request of many
rows gives many), its inputs, the model's answer and the true label when feedback came.

The JSON of the log is unpacked by SQLite's JSON functions and parsed by pyarrow's JSON reader,
not row by row in Python: a million logged predictions are read in seconds."""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlre.errors import InputError

_SPAN = re.compile(r"^last:(\d+(?:\.\d+)?)([mhdw])$")
_UNIT = {"m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def since_of(window: str, now: float | None = None) -> float:
    """Epoch seconds from ``last:7d`` (m, h, d, w), ``since:2026-11-01`` or ``all``."""
    now = time.time() if now is None else now
    if window == "all":
        return 0.0
    m = _SPAN.match(window)
    if m:
        return now - float(m.group(1)) * _UNIT[m.group(2)]
    if window.startswith("since:"):
        stamp = pd.Timestamp(window.split(":", 1)[1])
        if stamp.tzinfo is None:
            stamp = stamp.tz_localize("UTC")
        return stamp.timestamp()
    raise InputError(
        f"--current {window!r} is neither a file nor a span of the prediction log",
        hint="e.g. last:7d, last:24h, since:2026-11-01, all",
    )


@dataclass
class Logged:
    """The logged rows: inputs, the model's answers, labels (None where none came)."""

    inputs: pd.DataFrame
    predictions: pd.Series
    probabilities: pd.DataFrame | None  # one column per class, for classifiers
    labels: pd.Series
    times: pd.Series


def read_log(
    path: str | Path,
    model: str,
    *,
    since: float = 0.0,
    version: str | None = None,
    roles: tuple[str, ...] = ("champion",),
) -> Logged:
    """The predictions of ``model`` logged at ``path`` since ``since`` (epoch seconds) by
    ``roles`` (errors left out)."""
    from mlre.track.wal import connect

    p = Path(path)
    if not p.is_file():
        raise InputError(f"no prediction log at {p}", hint="--prediction-log PATH of the service")
    where = [
        "p.model = ?",
        "p.time >= ?",
        "p.error IS NULL",
        f"p.role IN ({', '.join('?' for _ in roles)})",
    ]
    args: list = [model, since, *roles]
    if version is not None:
        where.append("p.version = ?")
        args.append(str(version))
    # each request as one JSON line {"t": time, "r": [inputs...], "o": [outputs...]}, built by
    # string concatenation in SQLite and parsed by pyarrow; labels (rare) come separately
    query = f"""
        SELECT '{{"t":' || p.time || ',"r":' || p.inputs || ',"o":' || p.outputs || '}}',
               f.label
        FROM predictions p LEFT JOIN feedback f ON f.request_id = p.request_id
        WHERE {" AND ".join(where)}
        ORDER BY p.time"""
    with connect(p, "the prediction log") as db:
        rows = db.execute(query, args).fetchall()
    if not rows:
        raise InputError(
            f"the prediction log has no answered requests of {model!r} in that span",
            hint="widen it (--current last:30d) or check the model name",
        )
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    body = "\n".join(r[0] for r in rows).encode("utf-8")
    table = pj.read_json(io.BytesIO(body))
    sizes = pc.list_value_length(table["r"]).to_numpy(zero_copy_only=False)
    inputs = pa.Table.from_struct_array(pc.list_flatten(table["r"])).to_pandas()
    outputs = pa.Table.from_struct_array(pc.list_flatten(table["o"])).flatten().to_pandas()
    stamps = np.repeat(table["t"].to_numpy(), sizes)
    times = pd.Series(pd.to_datetime(stamps, unit="s", utc=True), name="time")
    labels = pd.Series(_labels([r[1] for r in rows], sizes), name="label", dtype=object)
    prefix = "probabilities."
    kept = [c for c in outputs.columns if c.startswith(prefix)]
    probabilities = None
    if kept:
        probabilities = outputs[kept].rename(columns=lambda c: c[len(prefix) :])
    predictions = outputs["prediction"] if "prediction" in outputs else pd.Series(np.nan)
    return Logged(inputs, predictions, probabilities, labels, times)


def _labels(texts: list[str | None], sizes: np.ndarray) -> list:
    """One label per logged row: a request's label, or its list of labels, spread over its
    rows (None where no feedback came)."""
    import json

    out: list = []
    for text, size in zip(texts, sizes, strict=True):
        value = None if text is None else json.loads(text)
        if isinstance(value, list) and len(value) == size:
            out.extend(value)
        else:
            out.extend([value] * int(size))
    return out
