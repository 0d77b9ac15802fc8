"""The prediction log: every answered request (and every shadow prediction) with the model
version and role that made it, its inputs, outputs and latency; true labels join later by
request id (``POST /feedback``).

An embedded SQLite file in WAL mode by default. Writes leave the request path: callers enqueue a
record and a writer thread commits them in batches, so logging adds microseconds to a request. A
killed server loses at most the records of its last batch (under a second), never the file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlre.errors import InputError
from mlre.track.wal import connect
from mlre.values import json_default

log = logging.getLogger(__name__)

#: Where predictions are logged unless ``MLRE_PREDICTION_LOG`` or the caller says otherwise.
DEFAULT_PATH = "mlre-predictions.db"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS predictions (
        request_id TEXT NOT NULL,
        time REAL NOT NULL,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        role TEXT NOT NULL,
        inputs TEXT,
        outputs TEXT,
        latency_ms REAL,
        error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS predictions_request ON predictions (request_id)",
    "CREATE INDEX IF NOT EXISTS predictions_model ON predictions (model, version, role, time)",
    """CREATE TABLE IF NOT EXISTS feedback (
        request_id TEXT PRIMARY KEY,
        time REAL NOT NULL,
        label TEXT NOT NULL
    )""",
)


#: Tries to write a batch before its records are counted as lost; the first wait between them.
WRITE_ATTEMPTS = 4
RETRY_SECONDS = 0.25
#: Seconds between prunes of old records (with a retention).
PRUNE_SECONDS = 600


def _size(record: LoggedPrediction) -> int:
    """What a record's inputs are reckoned to hold while it waits to be written."""
    inputs = record.inputs
    return 256 + (int(inputs.size) * 64 if hasattr(inputs, "size") else 0)


def default_path() -> Path:
    """The prediction log file: ``MLRE_PREDICTION_LOG`` or ``./mlre-predictions.db``."""
    return Path(os.environ.get("MLRE_PREDICTION_LOG") or DEFAULT_PATH)


@dataclass
class LoggedPrediction:
    """One prediction as it is written."""

    request_id: str
    model: str
    version: str
    role: str  # champion | challenger | shadow
    inputs: Any  # JSON-ready, or a table (written as one object per row)
    outputs: Any
    latency_ms: float | None
    error: str | None = None
    time: float = 0.0


class PredictionLog:
    """Append predictions from many threads; read, count, export and prune them."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        sample: float = 1.0,
        retention_days: float | None = None,
        flush_seconds: float = 0.2,
        max_queue: int = 100_000,
        max_queue_bytes: int = 64 * 1024 * 1024,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise InputError(f"the prediction log's sample rate must be in [0, 1], not {sample}")
        self.path = Path(path) if path is not None else default_path()
        self.sample = sample
        self.retention_days = retention_days
        self.flush_seconds = flush_seconds
        self.dropped = 0  # records lost (a full queue, or a database that kept failing)
        self.on_drop = on_drop  # told how many each time records are lost
        self.max_queue_bytes = max_queue_bytes
        self._queued = 0  # bytes of the inputs waiting to be written
        self._count = threading.Lock()
        self._queue: queue.Queue[LoggedPrediction | None] = queue.Queue(maxsize=max_queue)
        self._writer: threading.Thread | None = None
        self._stop = threading.Event()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    def _connect(self) -> Any:
        return connect(self.path, "the prediction log")

    # ----------------------------------------------------------------- writing

    def start(self) -> PredictionLog:
        """Start the writer thread (idempotent)."""
        if self._writer is None or not self._writer.is_alive():
            self._stop.clear()
            self._writer = threading.Thread(target=self._drain, name="mlre-predlog", daemon=True)
            self._writer.start()
        return self

    def close(self) -> None:
        """Write what is queued and stop the writer."""
        if self._writer is not None and self._writer.is_alive():
            self._stop.set()
            self._queue.put(None)
            self._writer.join(timeout=30)
        self._writer = None

    def wants(self, request_id: str) -> bool:
        """Whether this request is in the sample (decided once per request, for every role)."""
        if self.sample >= 1.0:
            return True
        return random.Random(request_id).random() < self.sample

    def add(self, record: LoggedPrediction) -> None:
        """Queue a record for writing; never blocks the caller (a queue full of records or of
        bytes drops it, and counts)."""
        record.time = record.time or time.time()
        size = _size(record)
        with self._count:
            if self._queued + size > self.max_queue_bytes:
                self._lost(1)
                return
            self._queued += size
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._count:
                self._queued -= size
            self._lost(1)

    def _lost(self, n: int) -> None:
        self.dropped += n
        if self.on_drop is not None:
            self.on_drop(n)

    def _drain(self) -> None:
        # one connection for the writer's life: opening and closing one per batch (five a
        # second under load) made SQLite checkpoint and remove the WAL file each time, ~4 ms of
        # the serving process's time per batch
        with contextlib.ExitStack() as held:
            db: sqlite3.Connection | None = None
            last_prune = 0.0
            while True:
                batch, done = self._next_batch()
                for attempt in range(WRITE_ATTEMPTS if batch else 0):
                    try:
                        if db is None:
                            db = held.enter_context(self._connect())
                        self._insert(db, batch)
                        break
                    except Exception as err:  # locked, full, gone: the service keeps answering
                        held.close()  # a fresh connection for the next try
                        db = None
                        if attempt + 1 < WRITE_ATTEMPTS:
                            time.sleep(RETRY_SECONDS * 2**attempt)
                        else:
                            log.error("lost %d predictions: %s could not be written (%s)",
                                      len(batch), self.path, err)  # fmt: skip
                            self._lost(len(batch))
                with self._count:
                    self._queued -= sum(_size(r) for r in batch)
                if self.retention_days and time.monotonic() - last_prune > PRUNE_SECONDS:
                    try:
                        self.prune()
                        last_prune = time.monotonic()
                    except Exception as err:  # tried again a minute later
                        log.warning("could not prune %s (%s); trying again", self.path, err)
                        last_prune = time.monotonic() - PRUNE_SECONDS + 60
                if done or (self._stop.is_set() and self._queue.empty()):
                    return

    def _next_batch(self) -> tuple[list[LoggedPrediction], bool]:
        """What arrives within ``flush_seconds`` of the first record (up to 5,000), and whether
        the stop mark came."""
        batch: list[LoggedPrediction] = []
        item = self._queue.get()
        done = item is None
        if item is not None:
            batch.append(item)
        deadline = time.monotonic() + self.flush_seconds
        while not done and len(batch) < 5_000:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                break
            if item is None:
                done = True
            else:
                batch.append(item)
        return batch, done

    def write(self, records: list[LoggedPrediction]) -> None:
        """Write records now, in one transaction."""
        with self._connect() as db:
            self._insert(db, records)

    @staticmethod
    def _insert(db: sqlite3.Connection, records: list[LoggedPrediction]) -> None:
        rows = [
            (
                r.request_id,
                r.time or time.time(),
                r.model,
                str(r.version),
                r.role,
                _json(r.inputs),
                _json(r.outputs),
                r.latency_ms,
                r.error,
            )
            for r in records
        ]
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def add_feedback(self, request_id: str, label: Any) -> bool:
        """Attach the true label to a logged request; ``False`` if no such request was logged."""
        return not self.add_feedback_many([(request_id, label)])

    def add_feedback_many(self, labels: list[tuple[str, Any]]) -> list[str]:
        """Attach true labels to logged requests in one transaction (after the queue is
        written); the ids of those no request was logged with, which get none."""
        self.flush()
        unknown: list[str] = []
        now = time.time()
        with self._connect() as db:
            for request_id, label in labels:
                known = db.execute(
                    "SELECT 1 FROM predictions WHERE request_id = ? LIMIT 1", (request_id,)
                ).fetchone()
                if not known:
                    unknown.append(request_id)
                    continue
                db.execute(
                    "INSERT OR REPLACE INTO feedback VALUES (?, ?, ?)",
                    (request_id, now, _json(label)),
                )
        return unknown

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued record is written (for tests and exports)."""
        end = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < end:
            time.sleep(0.01)
        if self._writer is not None and self._writer.is_alive():
            time.sleep(min(self.flush_seconds * 2, max(0.0, end - time.monotonic())))

    def prune(self) -> int:
        """Delete predictions (and their feedback) older than the retention; how many went."""
        if not self.retention_days:
            return 0
        cutoff = time.time() - self.retention_days * 86_400
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            gone = db.execute("DELETE FROM predictions WHERE time < ?", (cutoff,)).rowcount
            db.execute(
                "DELETE FROM feedback WHERE request_id NOT IN (SELECT request_id FROM predictions)"
            )
            db.execute("COMMIT")
        return gone

    # ----------------------------------------------------------------- reading

    def count(
        self,
        model: str,
        *,
        version: str | None = None,
        roles: tuple[str, ...] | None = None,
        since: float | None = None,
        errors: bool | None = None,
    ) -> int:
        """How many predictions match."""
        where, args = _where("", model, version, roles, since, errors)
        with self._connect() as db:
            return int(db.execute(f"SELECT COUNT(*) FROM predictions {where}", args).fetchone()[0])

    def frame(
        self,
        model: str | None = None,
        *,
        version: str | None = None,
        roles: tuple[str, ...] | None = None,
        since: float | None = None,
        with_feedback: bool = True,
    ) -> Any:
        """The predictions as a pandas table (inputs and outputs as parsed JSON)."""
        import pandas as pd

        where, args = _where("p.", model, version, roles, since, None)
        join = "LEFT JOIN feedback f ON f.request_id = p.request_id" if with_feedback else ""
        label = ", f.label AS label" if with_feedback else ""
        query = f"SELECT p.*{label} FROM predictions p {join} {where} ORDER BY p.time"
        with self._connect() as db:
            frame = pd.read_sql_query(query, db, params=args)
        for col in ("inputs", "outputs", "label"):
            if col in frame:
                frame[col] = [json.loads(v) if isinstance(v, str) else None for v in frame[col]]
        return frame

    def export_parquet(self, output: str | Path, **filters: Any) -> Path:
        """Write the log (inputs and outputs as JSON text) to a Parquet file."""
        frame = self.frame(**filters)
        for col in ("inputs", "outputs", "label"):
            if col in frame:
                frame[col] = [None if v is None else json.dumps(v) for v in frame[col]]
        out = Path(output)
        frame.to_parquet(out, index=False)
        return out


def _where(
    prefix: str,
    model: str | None,
    version: str | None,
    roles: tuple[str, ...] | None,
    since: float | None,
    errors: bool | None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if model is not None:
        clauses.append(f"{prefix}model = ?")
        args.append(model)
    if version is not None:
        clauses.append(f"{prefix}version = ?")
        args.append(str(version))
    if roles:
        clauses.append(f"{prefix}role IN ({', '.join('?' for _ in roles)})")
        args.extend(roles)
    if since is not None:
        clauses.append(f"{prefix}time >= ?")
        args.append(since)
    if errors is not None:
        clauses.append(f"{prefix}error IS {'NOT ' if errors else ''}NULL")
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), args


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # a table: one object per row
        value = _records(value)
    return json.dumps(value, default=json_default, separators=(",", ":"))


def _records(frame: Any) -> list[dict[str, Any]]:
    # one conversion of the whole table, not one per column: this runs for every request, on
    # a thread that holds the interpreter lock while the next request waits for it
    columns = [str(c) for c in frame.columns]
    rows = frame.to_numpy(dtype=object, na_value=None).tolist()
    return [dict(zip(columns, row, strict=True)) for row in rows]
