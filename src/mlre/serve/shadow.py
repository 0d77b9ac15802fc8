"""A challenger in shadow runs in a process of its own.

Mirrored requests must not slow the answers callers wait for. In the serving process a shadow
prediction competes with the champion's for the interpreter lock (pandas work in every pipeline
holds it), which on a small machine doubled the champion's latency; in its own process it runs on
another core. Mirrored requests are sent to it in batches (every ``BATCH_SECONDS``), not one
by one: each hand-over pickles, writes a pipe and wakes the worker, and one per request cost the
requests in flight ~10% of their latency on two cores. The worker loads the version hash-checked
from the registry, predicts each batch in one call, and sends each request's output (or error)
back; a reader thread in the serving process hands them to ``on_result``. A worker that dies
takes its pending requests with it as errors, so the rollback rule sees them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlre.serve.batching import predict_each
from mlre.serve.protocol import SMALL_ROWS
from mlre.spec import Task
from mlre.values import plain

log = logging.getLogger(__name__)

#: How much lower the worker's scheduling priority is than the server's (Unix nice levels).
SHADOW_NICENESS = 10

#: Most rows predicted in one call by the worker.
MAX_BATCH_ROWS = 512

#: How long mirrored requests gather in the serving process before they go to the worker, to be
#: predicted in one call. An ensemble's call costs about the same for one row or fifty, so at a
#: hundred requests a second this cuts the shadow's CPU time (which competes with the champion's
#: on a small machine) about fiftyfold (at 0.1 s, a shadow still added 10-30% to the champion's
#: latency on two cores); its answers only feed the logs and the rollback rule, which can wait
#: this long.
BATCH_SECONDS = 0.5


class ShadowWorker:
    """The challenger ``version`` of model ``name`` in a child process."""

    def __init__(
        self,
        name: str,
        version: str,
        on_result: Callable[[str, np.ndarray | None, str | None, float, bool], None],
        on_failure: Callable[[str], None],
    ) -> None:
        self.name, self.version = name, version
        self.task: Task = "binary"
        self.classes: list[Any] | None = None
        self.features: list[str] = []
        self.failed: str | None = None
        self.ready = threading.Event()
        self._on_result, self._on_failure = on_result, on_failure
        ctx = mp.get_context("spawn")  # a fork of a threaded server is not safe
        self._in: Any = ctx.Queue()
        self._out: Any = ctx.Queue()
        self._process = ctx.Process(
            target=_work, args=(name, version, self._in, self._out, os.getpid()), daemon=True,
            name=f"mlre-shadow-{name}-{version}",
        )  # fmt: skip
        self._process.start()
        self._sent: set[str] = set()
        self._outgoing: list[tuple[str, Any]] = []  # mirrored, not yet sent
        self._lock = threading.Lock()
        self._closed = False
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, name="mlre-shadow-reader", daemon=True)
        self._reader.start()
        self._sender = threading.Thread(target=self._send, name="mlre-shadow-sender", daemon=True)
        self._sender.start()

    @property
    def alive(self) -> bool:
        return self.failed is None and not self._closed

    def submit(self, request_id: str, frame: Any) -> bool:
        """Queue a copy of a request for the next batch; ``False`` if the worker cannot take
        it."""
        if not self.alive:
            return False
        small = len(frame) <= SMALL_ROWS
        payload = Rows(tuple(frame.columns), frame.to_numpy(dtype=object)) if small else frame
        with self._lock:
            if not self.alive:
                return False
            self._sent.add(request_id)
            self._outgoing.append((request_id, payload))
        return True

    def _send(self) -> None:
        """Every ``BATCH_SECONDS``, what was mirrored since goes to the worker in one message
        (pickled by the queue's feeder thread); on closing, the rest, then the stop mark."""
        while not self._closing.wait(BATCH_SECONDS):
            self._flush()
        self._flush()
        with contextlib.suppress(OSError, ValueError):
            self._in.put(None)

    def _flush(self) -> None:
        with self._lock:
            batch, self._outgoing = self._outgoing, []
        if not batch or self.failed is not None:
            return
        try:
            self._in.put(batch)
        except (OSError, ValueError) as err:
            self._fail(f"the shadow worker of version {self.version} cannot be reached: {err}")

    def answers(self, out: np.ndarray) -> list[Any]:
        """The label or value of each row."""
        if self.task == "regression":
            return [float(v) for v in out]
        classes = self.classes or []
        return [plain(classes[int(k)]) for k in out.argmax(axis=1)]

    def close(self) -> None:
        """Stop the worker (what it has not answered is dropped)."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()  # the sender sends what is queued, then the stop mark
        threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self) -> None:
        self._sender.join(timeout=10)
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.terminate()

    def _read(self) -> None:
        while True:
            try:
                message = self._out.get(timeout=0.5)
            except queue.Empty:
                if self._closed:
                    return
                if not self._process.is_alive():
                    self._fail(f"the shadow worker of version {self.version} exited "
                               f"(code {self._process.exitcode})")  # fmt: skip
                    return
                continue
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "ready":
                _, self.task, self.classes, self.features = message
                self.ready.set()
            elif kind == "failed":
                self._fail(message[1])
                return
            elif kind == "results":
                for request_id, out, error, seconds, timed in message[1]:
                    with self._lock:
                        self._sent.discard(request_id)
                    try:
                        self._on_result(request_id, out, error, seconds, timed)
                    except Exception:
                        log.exception("the shadow result of %s could not be recorded", request_id)

    def _fail(self, reason: str) -> None:
        with self._lock:
            if self.failed is not None:
                return
            self.failed = reason
            lost, self._sent, self._outgoing = list(self._sent), set(), []
        self.ready.set()
        for request_id in lost:
            self._on_result(request_id, None, reason, 0.0, False)
        self._on_failure(reason)


def _work(name: str, version: str, inbox: Any, outbox: Any, parent: int) -> None:
    """The worker process: load, then predict batches until told to stop. ``parent`` is the
    server's pid as it started the worker: a server killed while this process was still
    starting up has been replaced as its parent by the time this runs."""
    from mlre.serve.batching import freeze_heap, warm_up

    logging.basicConfig(level=logging.WARNING)

    def watch_parent() -> None:
        # the server died (even by SIGKILL): leave at once, without flushing answers nobody
        # will read (a queue's feeder would wait for a reader forever)
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    try:
        from mlre.track.registry import load_model

        model = load_model(f"models:/{name}/{version}").model
    except Exception as err:
        outbox.put(("failed", f"version {version} cannot be loaded: {err}"))
        return
    task = model.task
    classes = None if task == "regression" else [plain(c) for c in model.classes_]
    features = [c.name for c in model.contract.features]
    # its first predictions would pay for what the model builds on first use, and a shadow's
    # first latencies feed the rollback rule
    warm_up(model)
    # its predictions are timed for the rollback rule: a full collection of the imports' objects
    # (~190 ms) must not land in them
    freeze_heap()
    outbox.put(("ready", task, classes, features))
    # mirrored predictions are background work: when cores are short, the answers callers wait
    # for go first (lowered once loaded, so that a promotion takes effect promptly)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(SHADOW_NICENESS)

    def predict(payload: Any) -> np.ndarray:
        X = Rows.table(payload)[features]
        if task == "regression":
            return np.asarray(model.predict(X), dtype=float)
        return np.asarray(model.predict_proba(X), dtype=float)

    while True:
        batch = inbox.get()
        if batch is None:
            return
        for part in _parts(batch):
            outbox.put(("results", _answer(predict, part)))


def _answer(
    predict: Callable[[Any], np.ndarray],
    part: list[tuple[str, Any]],
    clock: Callable[[], float] = time.process_time,
) -> list[tuple[str, np.ndarray | None, str | None, float, bool]]:
    """Each request's output or error message, the seconds of the call that answered it, and
    whether that time counts for the rollback rule.

    The rule compares the challenger's latency with the champion's per request, so the first
    request of a run is predicted alone and timed (a run of 300 requests in one call took
    130 ms, which read as a challenger fifteen times slower than a champion answering in
    9 ms), the rest in one call, untimed. The worker runs at a lower priority, so its wall time
    would measure how long it waited for a core; the rule judges what the model costs: its CPU
    time (``clock``)."""
    payloads = [p for _, p in part]
    results = predict_each(predict, payloads[:1], clock=clock)
    if len(payloads) > 1:
        rest = predict_each(predict, payloads[1:], clock=clock, combine=Rows.combined)
        results += [(out, error, seconds, False) for out, error, seconds, _ in rest]
    answers = []
    for (request_id, _), (out, error, seconds, timed) in zip(part, results, strict=True):
        message = None if error is None else f"{type(error).__name__}: {error}"[:500]
        answers.append((request_id, out, message, seconds, timed))
    return answers


def _parts(batch: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    """A batch in runs of up to ``MAX_BATCH_ROWS`` rows, each predicted in one call."""
    parts: list[list[tuple[str, Any]]] = [[]]
    rows = 0
    for item in batch:
        n = len(item[1])
        if parts[-1] and rows + n > MAX_BATCH_ROWS:
            parts.append([])
            rows = 0
        parts[-1].append(item)
        rows += n
    return parts


@dataclass
class Rows:
    """A small mirrored request as plain values (cheaper to pickle than a pandas table; the
    worker makes one table of a batch's)."""

    columns: tuple[str, ...]
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    @staticmethod
    def table(payload: Any) -> Any:
        """A request's table, whether sent as ``Rows`` or as a table."""
        if not isinstance(payload, Rows):
            return payload
        from mlre.serve.protocol import object_table

        return object_table(payload.values, list(payload.columns))

    @staticmethod
    def combined(payloads: list[Any]) -> Any:
        """One payload for a run of requests: small ones with the same columns stacked."""
        first = payloads[0]
        if isinstance(first, Rows) and all(
            isinstance(p, Rows) and p.columns == first.columns for p in payloads
        ):
            return Rows(first.columns, np.concatenate([p.values for p in payloads]))
        import pandas as pd

        return pd.concat([Rows.table(p) for p in payloads], ignore_index=True)
