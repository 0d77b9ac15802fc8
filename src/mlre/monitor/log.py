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


def _ndjson(texts: list[str | None]) -> pd.DataFrame:
    import pyarrow.json as pj

    body = "\n".join(t if t is not None else "{}" for t in texts).encode("utf-8")
    if not body:
        return pd.DataFrame()
    table = pj.read_json(io.BytesIO(body))
    return table.flatten().to_pandas()


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
    query = f"""
        SELECT p.time AS time, r.value AS record,
               json_extract(p.outputs, '$[' || r.key || ']') AS output,
               CASE WHEN f.label IS NULL THEN NULL
                    WHEN json_type(f.label) = 'array'
                        THEN json_extract(f.label, '$[' || r.key || ']')
                    ELSE json_extract(f.label, '$') END AS label
        FROM predictions p JOIN json_each(p.inputs) r
        LEFT JOIN feedback f ON f.request_id = p.request_id
        WHERE {" AND ".join(where)}
        ORDER BY p.time"""
    with connect(p, "the prediction log") as db:
        rows = db.execute(query, args).fetchall()
    if not rows:
        raise InputError(
            f"the prediction log has no answered requests of {model!r} in that span",
            hint="widen it (--current last:30d) or check the model name",
        )
    times = pd.Series(pd.to_datetime([r[0] for r in rows], unit="s", utc=True), name="time")
    inputs = _ndjson([r[1] for r in rows])
    outputs = _ndjson([r[2] for r in rows])
    prefix = "probabilities."
    kept = [c for c in outputs.columns if c.startswith(prefix)]
    probabilities = None
    if kept:
        probabilities = outputs[kept].rename(columns=lambda c: c[len(prefix) :])
    predictions = outputs["prediction"] if "prediction" in outputs else pd.Series(np.nan)
    labels = pd.Series([r[3] for r in rows], name="label", dtype=object)
    return Logged(inputs, predictions, probabilities, labels, times)
