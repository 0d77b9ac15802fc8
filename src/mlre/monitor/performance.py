"""A model's performance on labelled rows, over time windows, with 95% bootstrap intervals,
judged against its performance on the reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlre.findings import Finding, Severity

#: Resamples for each window's interval.
SAMPLES = 200

#: Fewest labelled rows a window is scored on.
MIN_ROWS = 30


def _score(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    """``metric`` of encoded targets ``y`` and probabilities (one column per class) or values."""
    from mlre.evaluate.metrics import get_metric

    return get_metric(metric)(y, pred)


@dataclass
class Window:
    """The score of one window of labelled rows."""

    label: str
    rows: int
    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


def score_with_interval(
    metric: str, y: np.ndarray, pred: np.ndarray, seed: int = 0
) -> tuple[float, float, float]:
    """The metric and its 95% percentile-bootstrap interval."""
    value = _score(metric, y, pred)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(SAMPLES):
        rows = rng.integers(0, len(y), len(y))
        try:
            draws.append(_score(metric, y[rows], pred[rows]))
        except ValueError:  # a resample with one class for a ranking metric
            continue
    finite = np.asarray([d for d in draws if np.isfinite(d)])
    if not len(finite):
        return value, float("nan"), float("nan")
    low, high = np.quantile(finite, [0.025, 0.975])
    return value, float(low), float(high)


def windows(
    metric: str,
    y: np.ndarray,
    pred: np.ndarray,
    times: pd.Series | None,
    every: str | int | None,
) -> list[Window]:
    """Scores per window: by time (``every`` a pandas frequency such as '1D' or '7D', with
    ``times``), or by consecutive blocks of ``every`` rows; the whole table when neither."""
    n = len(y)
    if every is None:
        groups = [("all", np.arange(n))]
    elif isinstance(every, int) or str(every).isdigit():
        size = int(every)
        groups = [
            (f"rows {i + 1}-{min(i + size, n)}", np.arange(i, min(i + size, n)))
            for i in range(0, n, size)
        ]
    else:
        if times is None:
            from mlre.errors import InputError

            raise InputError(
                f"windows of {every} need a time column", hint="--time-column, or a row count"
            )
        stamps = pd.to_datetime(times, errors="coerce", utc=True).reset_index(drop=True)
        keys = stamps.dt.floor(every)
        groups = [
            (str(k.date() if hasattr(k, "date") else k), np.flatnonzero((keys == k).to_numpy()))
            for k in sorted(keys.dropna().unique())
        ]
    out = []
    for label, rows in groups:
        if len(rows) < MIN_ROWS:
            continue
        value, low, high = score_with_interval(metric, y[rows], pred[rows])
        out.append(Window(label, len(rows), value, low, high))
    return out


def clearly_worse(
    reference: Window, value: float, low: float, high: float, greater_is_better: bool
) -> bool:
    """True when a score is worse than the reference's by more than both intervals allow
    (the difference beyond 1.96 of its standard error, each error read off its 95% interval)."""
    se = np.hypot((reference.high - reference.low) / 3.92, (high - low) / 3.92)
    gap = reference.value - value if greater_is_better else value - reference.value
    return bool(np.isfinite(se) and gap > 1.96 * se)


def performance_findings(
    metric: str, reference: Window, found: list[Window], greater_is_better: bool
) -> list[Finding]:
    """A window clearly worse than the reference is an alert; the rest are recorded."""
    out = []
    for w in found:
        worse = clearly_worse(reference, w.value, w.low, w.high, greater_is_better)
        out.append(
            Finding(
                severity=Severity.ERROR if worse else Severity.INFO,
                check="performance_window",
                message=f"{metric} over {w.label} ({w.rows:,} labelled rows): {w.value:.4g} "
                f"[{w.low:.4g}, {w.high:.4g}] against {reference.value:.4g} on the reference"
                + (": worse, beyond both intervals" if worse else ""),
                evidence=w.to_dict() | {"reference": reference.value},
                fix="retrain on recent labelled data (mlre retrain)" if worse else None,
            )
        )
    return out
