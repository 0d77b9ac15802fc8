"""The prediction log's writer: every queued record lands, in one connection it keeps, and a
batch that cannot be written is reported without stopping the writer."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from mlre.serve.predlog import LoggedPrediction, PredictionLog


def _record(i: int) -> LoggedPrediction:
    return LoggedPrediction(f"r-{i}", "m", "1", "champion", {"x": i}, {"y": i % 2}, 1.5)


def test_records_from_many_threads_all_land(tmp_path):
    log = PredictionLog(tmp_path / "p.db", flush_seconds=0.02).start()
    threads = [
        threading.Thread(target=lambda k=k: [log.add(_record(k * 100 + i)) for i in range(100)])
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.flush()
    assert log.count("m") == 400
    log.close()
    assert PredictionLog(tmp_path / "p.db").count("m") == 400


def _until(predicate, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_database_that_fails_for_a_moment_loses_nothing(tmp_path):
    path = tmp_path / "p.db"
    log = PredictionLog(path, flush_seconds=0.02).start()
    log.add(_record(0))
    log.flush()
    with sqlite3.connect(path) as db:  # the table goes away under the writer's connection
        db.execute("ALTER TABLE predictions RENAME TO kept")
    log.add(_record(1))
    time.sleep(0.3)  # a try or two fail meanwhile
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE kept RENAME TO predictions")
    assert _until(lambda: log.count("m") == 2), "written on a later try"
    assert log.dropped == 0
    log.close()


def test_a_batch_that_cannot_be_written_is_counted_lost_and_the_writer_goes_on(tmp_path, caplog):
    path = tmp_path / "p.db"
    lost: list[int] = []
    log = PredictionLog(path, flush_seconds=0.02, on_drop=lost.append).start()
    log.add(_record(0))
    log.flush()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE predictions RENAME TO kept")
    with caplog.at_level(logging.ERROR, logger="mlre.serve.predlog"):
        log.add(_record(1))
        assert _until(lambda: log.dropped == 1), "counted once every try failed"
    assert lost == [1]
    assert any("lost 1 predictions" in r.getMessage() for r in caplog.records)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE kept RENAME TO predictions")
    log.add(_record(2))
    log.flush()
    assert _until(lambda: log.count("m") == 2)
    log.close()
    with sqlite3.connect(path) as db:
        ids = [r[0] for r in db.execute("SELECT request_id FROM predictions ORDER BY time")]
    assert ids == ["r-0", "r-2"]  # the failed batch is the only loss


def test_a_queue_full_of_bytes_drops_and_counts(tmp_path):
    import pandas as pd

    lost: list[int] = []
    log = PredictionLog(tmp_path / "p.db", max_queue_bytes=100_000, on_drop=lost.append)
    wide = pd.DataFrame({f"c{i}": range(100) for i in range(20)})  # ~128 KB reckoned
    record = _record(0)
    record.inputs = wide
    log.add(record)  # the writer is not started: nothing leaves the queue
    assert log.dropped == 1 and lost == [1]
    log.add(_record(1))  # a small one still fits
    assert log.dropped == 1
