"""The shadow worker: it leaves when its server is gone, and predicts batches in runs."""

from __future__ import annotations

import multiprocessing as mp
import os
import queue

from mlre.serve.shadow import _work


def test_a_worker_started_for_a_server_that_is_gone_leaves_without_loading(tmp_path):
    ctx = mp.get_context("spawn")
    inbox, outbox = ctx.Queue(), ctx.Queue()
    # the pid of a server killed while the worker process was starting: not its parent
    gone = os.getpid() + 1_000_000
    worker = ctx.Process(target=_work, args=("nope", "1", inbox, outbox, gone), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert worker.exitcode == 0
    # it left before it tried to load the model (which would have reported a failure)
    try:
        message = outbox.get(timeout=0.5)
    except queue.Empty:
        message = None
    assert message is None


def test_a_batch_of_mirrored_requests_is_predicted_in_runs_of_one_table_each():
    import numpy as np
    import pandas as pd

    from mlre.serve import shadow
    from mlre.serve.batching import predict_each
    from mlre.serve.shadow import Rows, _parts

    cols = ("a", "b")
    small = [(f"r{i}", Rows(cols, np.array([[i, "x"]], dtype=object))) for i in range(5)]
    table = ("t", pd.DataFrame({"a": [10, 11], "b": ["y", "z"]}))
    other = ("o", Rows(("b", "a"), np.array([["w", 20]], dtype=object)))
    batch = [*small, table, other]
    # one run while it fits in MAX_BATCH_ROWS rows; beyond, the next run
    assert [len(p) for p in _parts(batch)] == [7]
    limit = shadow.MAX_BATCH_ROWS
    try:
        shadow.MAX_BATCH_ROWS = 3
        assert [[i for i, _ in p] for p in _parts(batch)] == [
            ["r0", "r1", "r2"], ["r3", "r4"], ["t", "o"]
        ]  # fmt: skip
    finally:
        shadow.MAX_BATCH_ROWS = limit
    # small requests with the same columns are stacked into one table; others concatenated
    stacked = Rows.combined([p for _, p in small])
    assert isinstance(stacked, Rows) and len(stacked) == 5
    mixed = Rows.combined([p for _, p in batch])
    assert list(mixed["a"]) == [0, 1, 2, 3, 4, 10, 11, 20] and list(mixed.columns) == ["a", "b"]
    calls = []

    def predict(payload):
        X = Rows.table(payload)
        calls.append(len(X))
        if (X["a"] == 3).any():
            raise ValueError("bad row")
        return X["a"].to_numpy(dtype=float)

    results = predict_each(predict, [p for _, p in small], combine=Rows.combined)
    # one call for all five; it failed on one row, so each was predicted alone
    assert calls == [5, 1, 1, 1, 1, 1]
    assert [r[1] is None for r in results] == [True, True, True, False, True]
    assert [float(r[0][0]) for r in results if r[0] is not None] == [0.0, 1.0, 2.0, 4.0]


def test_a_shadow_run_is_timed_on_one_request_predicted_alone():
    # the rollback rule compares a challenger's latency with the champion's per request: the
    # time of a call that answered 40 requests at once must not stand for one request's
    import numpy as np

    from mlre.serve.shadow import Rows, _answer

    spent = [0.0]  # a clock that advances by the rows each call predicts

    def predict(payload):
        X = Rows.table(payload)
        spent[0] += len(X)
        if (X["a"] == 7).any():
            raise ValueError("bad row")
        return X["a"].to_numpy(dtype=float)

    part = [(f"r{i}", Rows(("a",), np.array([[i]], dtype=object))) for i in range(40)]
    answers = _answer(predict, part, clock=lambda: spent[0])
    assert [a[0] for a in answers] == [f"r{i}" for i in range(40)]
    timed = [a for a in answers if a[4]]
    assert len(timed) == 1 and timed[0][0] == "r0" and timed[0][3] == 1.0
    # every request has its own answer; the bad one fails alone
    assert [a[2] is None for a in answers] == [i != 7 for i in range(40)]
    assert "bad row" in answers[7][2]
    assert [float(a[1][0]) for a in answers if a[1] is not None] == [
        float(i) for i in range(40) if i != 7
    ]
