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
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

#: Bytes a queue holds at most unless told (the spec's ``deploy.max_queue_mb``).
MAX_QUEUE_BYTES = 64 * 1024 * 1024
#: What one table cell is reckoned to take in a queue (a pointer and a small Python object).
CELL_BYTES = 64


class Overloaded(Exception):
    """A queue is full: the request is shed (a 503 with Retry-After), not held in memory."""

    def __init__(self, queue_name: str) -> None:
        super().__init__(f"the service is overloaded (its {queue_name} queue is full); retry soon")
        self.queue_name = queue_name


class TimedOut(Exception):
    """A model did not answer within the request timeout."""

    def __init__(self, version: str, seconds: float) -> None:
        super().__init__(f"version {version} did not answer within {seconds * 1000:.0f} ms")
        self.version, self.seconds = version, seconds


def table_bytes(frame: pd.DataFrame) -> int:
    """What a request's table is reckoned to hold in a queue."""
    return int(frame.size) * CELL_BYTES


class Batcher:
    """One worker thread in front of ``predict`` (a table in, one output row per input row),
    with a queue bounded in bytes (``Overloaded`` beyond ``max_bytes``)."""

    def __init__(
        self,
        predict: Callable[[pd.DataFrame], np.ndarray],
        *,
        max_rows: int = 512,
        name: str = "",
        max_bytes: int = MAX_QUEUE_BYTES,
    ) -> None:
        self.predict = predict
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._queue: queue.SimpleQueue[tuple[pd.DataFrame, Future, int] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._work, name=f"mlre-batch-{name}", daemon=True)
        self._closed = False
        self._queued = 0  # bytes waiting
        self._count = threading.Lock()
        self._thread.start()

    def submit(self, frame: pd.DataFrame) -> Future:
        """Queue ``frame``; the future gives its predictions (or the error they raised).
        Raises ``Overloaded`` when the queue holds ``max_bytes`` already. A future cancelled
        while it waits (its caller gave up) is not predicted."""
        future: Future = Future()
        if self._closed:  # retired during a switch: a request that still holds it is answered
            _settle(future, self.predict, frame)
            return future
        size = table_bytes(frame)
        with self._count:
            if self._queued and self._queued + size > self.max_bytes:
                raise Overloaded("batch")
            self._queued += size
        self._queue.put((frame, future, size))
        return future

    def predict_within(self, frame: pd.DataFrame, seconds: float, version: str = "") -> np.ndarray:
        """Predict ``frame`` through the queue, or ``TimedOut`` after ``seconds``."""
        future = self.submit(frame)
        try:
            return future.result(timeout=seconds)
        except FutureTimeout:
            future.cancel()
            raise TimedOut(version, seconds) from None

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        """Predict ``frame`` through the batch queue, waiting for the answer."""
        return self.submit(frame).result()

    @property
    def queued_bytes(self) -> int:
        """Bytes of the tables waiting or being predicted."""
        return self._queued

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._closed = True
        self._queue.put(None)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = take_batch(self._queue.get_nowait, first, self.max_rows, 0)
            # callers that gave up (timed out) are not predicted for
            live = [item for item in batch if item[1].set_running_or_notify_cancel()]
            results = predict_each(self.predict, [frame for frame, _, _ in live]) if live else []
            with self._count:
                self._queued -= sum(size for _, _, size in batch)
            for (_, future, _), (out, error, _, _) in zip(live, results, strict=True):
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
