"""Opportunistic batching: requests that arrive while a model is busy are predicted together in
its next call.

An ensemble's prediction has a large fixed cost per call (each pipeline's pandas work) and a
small cost per row, so one call for 30 queued rows costs about as much as one for a single row.
Nothing waits for a batch to fill: an idle model takes a lone request at once (no added
latency at low load), and under load the queue that built up during one call is the next
batch. A batch that fails is retried request by request, so one bad request fails alone.
"""

from __future__ import annotations

import logging
import queue
import threading
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
        self._thread.start()

    def submit(self, frame: pd.DataFrame) -> Future:
        """Queue ``frame``; the future gives its predictions (or the error they raised)."""
        future: Future = Future()
        if self._closed:  # retired during a switch: a request that still holds it is answered
            _settle(future, self.predict, frame)
            return future
        self._queue.put((frame, future))
        return future

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
            batch, rows, stop = [first], len(first[0]), False
            while rows < self.max_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                rows += len(item[0])
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[tuple[pd.DataFrame, Future]]) -> None:
        if len(batch) == 1:
            frame, future = batch[0]
            _settle(future, self.predict, frame)
            return
        try:
            out = self.predict(pd.concat([f for f, _ in batch], ignore_index=True))
        except Exception:
            for frame, future in batch:  # find the request that breaks it
                _settle(future, self.predict, frame)
            return
        start = 0
        for frame, future in batch:
            future.set_result(out[start : start + len(frame)])
            start += len(frame)


def _settle(future: Future, predict: Callable[[pd.DataFrame], Any], frame: pd.DataFrame) -> None:
    try:
        future.set_result(predict(frame))
    except Exception as err:
        future.set_exception(err)
