"""Predicting requests together: one call for a batch, one call each when the batch fails, and
a call's time counted once."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlre.serve.batching import predict_each


def _double(frame: pd.DataFrame) -> np.ndarray:
    if (frame["x"] < 0).any():
        raise ValueError("negative")
    return frame["x"].to_numpy() * 2.0


def test_a_batch_is_one_call_whose_time_the_first_table_carries():
    ticks = iter(range(100))
    frames = [pd.DataFrame({"x": [1.0, 2.0]}), pd.DataFrame({"x": [3.0]})]
    results = predict_each(_double, frames, clock=lambda: float(next(ticks)))
    assert [list(out) for out, _, _, _ in results] == [[2.0, 4.0], [6.0]]
    assert [seconds for _, _, seconds, _ in results] == [1.0, 1.0]  # the one call's time
    assert [timed for _, _, _, timed in results] == [True, False]


def test_a_failing_batch_is_retried_table_by_table_so_one_bad_table_fails_alone():
    frames = [pd.DataFrame({"x": [1.0]}), pd.DataFrame({"x": [-1.0]}), pd.DataFrame({"x": [2.0]})]
    results = predict_each(_double, frames)
    assert [None if out is None else list(out) for out, _, _, _ in results] == [[2.0], None, [4.0]]
    assert isinstance(results[1][1], ValueError)
    assert all(timed for _, _, _, timed in results)  # each table its own call
