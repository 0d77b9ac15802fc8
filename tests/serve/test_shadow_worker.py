"""A shadow worker whose server is gone by the time it starts leaves at once."""

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
