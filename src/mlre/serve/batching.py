"""Opportunistic batching: requests that arrive while a model is busy are predicted together in
its next call.

An ensemble's prediction has a large fixed cost per call (each pipeline's pandas work) and a
small cost per row, so one call for 30 queued rows costs about as much as one for a single row.
Nothing waits for a batch to fill: an idle model takes a lone request at once (no added
latency at low load), and under load the queue that built up during one call is the next
batch. A batch that fails is retried request by request, so one bad request fails alone.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


class Batcher:
    """One worker thread in front of ``predict`` (a table in, one output row per input row)."""

    def __init__(
        self, predict: Callable[[pd.DataFrame], np.ndarray], *, max_rows: int = 512, name: str = ""
    ) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self._queue: queue.SimpleQueue[tuple[pd.DataFrame, Future] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name=f"mlre-batch-{name}", daemon=True)
        self._closed = False
        self._busy = False
        self._thread.start()

    def submit(self, frame: pd.DataFrame) -> Future:
        """Queue ``frame``; the future gives its predictions (or the error they raised)."""
        future: Future = Future()
        if self._closed:  # retired during a switch: a request that still holds it is answered
            _settle(future, self.predict, frame)
            return future
        self._queue.put((frame, future))
        return future

    @property
    def idle(self) -> bool:
        """True when nothing is queued or being predicted: a caller may predict directly."""
        return not self._busy and self._queue.empty() and not self._closed

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        """Predict ``frame`` through the batch queue, waiting for the answer."""
        return self.submit(frame).result()

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closed = True
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            self._busy = True
            batch, stop = take_batch(self._queue.get_nowait, first, self.max_rows, 0)
            results = predict_each(self.predict, [frame for frame, _ in batch])
            self._busy = False
            for (_, future), (out, error, _, _) in zip(batch, results, strict=True):
                if error is None:
                    future.set_result(out)
                else:
                    future.set_exception(error)
            if stop:
                return


def take_batch(
    get_nowait: Callable[[], Any], first: Any, max_rows: int, frame_at: int
) -> tuple[list[Any], bool]:
    """``first`` and whatever else is queued now, up to ``max_rows`` rows (each item holds its
    table at index ``frame_at``); and whether the stop mark (``None``) was met."""
    batch, rows = [first], len(first[frame_at])
    while rows < max_rows:
        try:
            item = get_nowait()
        except queue.Empty:
            return batch, False
        if item is None:
            return batch, True
        batch.append(item)
        rows += len(item[frame_at])
    return batch, False


#: One table's output (or None), its error (or None), its call's seconds, and whether it is the
#: first table of its call.
Outcome = tuple[np.ndarray | None, Exception | None, float, bool]


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True)


def predict_each(
    predict: Callable[[Any], np.ndarray],
    frames: list[Any],
    clock: Callable[[], float] = time.perf_counter,
    combine: Callable[[list[Any]], Any] = _concat,
) -> list[Outcome]:
    """Each table's output (or error), the seconds its call took by ``clock``, and whether it
    is the first table of that call: one call for them all (``combine`` makes one input of
    them), or, when that fails, one call each, so one bad request fails alone. A call's time
    counts once where calls are timed (the tables of one call share it; counted for each, one
    slow call would weigh as many)."""
    results: list[Outcome] = []
    if len(frames) > 1:
        t0 = clock()
        try:
            out = predict(combine(frames))
        except Exception:
            pass
        else:
            seconds, start = clock() - t0, 0
            for i, frame in enumerate(frames):
                results.append((out[start : start + len(frame)], None, seconds, i == 0))
                start += len(frame)
            return results
    for frame in frames:
        t0 = clock()
        try:
            results.append((predict(frame), None, clock() - t0, True))
        except Exception as err:
            results.append((None, err, clock() - t0, True))
    return results


def warm_up(model: Any) -> None:
    """Predict a training row the model keeps (its explanation background) once, as a typed
    table and as a served request's table of plain values, so that the first callers do not pay
    for what a model builds on first use. A model without such rows is left as it is."""
    rows = getattr(model, "background", None)
    if not isinstance(rows, pd.DataFrame) or rows.empty:
        return
    from mlre.serve.protocol import object_table

    row = rows.head(1)
    for table in (row, object_table(row.astype(object).to_numpy(), list(row.columns))):
        try:
            if model.task == "regression":
                model.predict(table)
            else:
                model.predict_proba(table)
        except Exception:  # a model that fails here fails on requests too, and says so there
            log.debug("warming up the model failed", exc_info=True)


def _settle(future: Future, predict: Callable[[pd.DataFrame], Any], frame: pd.DataFrame) -> None:
    try:
        future.set_result(predict(frame))
    except Exception as err:
        future.set_exception(err)


def freeze_heap() -> None:
    """Collect once, then leave every object alive now out of all later collections.

    A serving process holds ~340,000 objects from its imports (MLflow, pandas, scikit-learn,
    FastAPI) and a model adds a few thousand; Python's full collection walks them all (~190 ms
    on a small machine) whenever enough objects have outlived the young generations, which
    under load happened every few seconds and showed as the p99 of every request in flight.
    Frozen after start-up, a full collection walks what came later (about a millisecond)."""
    gc.collect()
    gc.freeze()
