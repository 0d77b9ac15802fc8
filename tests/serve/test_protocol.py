"""Request bodies become tables: a few rows keep the values as JSON gave them (the model types
them), larger ones go through pandas; both read the same records the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlre.serve.protocol import SMALL_ROWS, BadRequest, mlflow_frame, records_frame


def test_a_few_records_keep_their_json_values_and_missing_keys_are_missing():
    frame = records_frame([{"a": 1, "b": "x"}, {"b": None, "c": 2.5}])
    assert list(frame.columns) == ["a", "b", "c"]
    assert set(frame.dtypes) == {np.dtype(object)}
    assert frame.loc[0, "a"] == 1 and type(frame.loc[0, "a"]) is int
    assert pd.isna(frame.loc[1, "a"]) and frame.loc[1, "b"] is None and pd.isna(frame.loc[0, "c"])
    # the same records as pandas reads them: equal values
    pandas = pd.DataFrame([{"a": 1, "b": "x"}, {"b": None, "c": 2.5}])
    for col in frame.columns:
        assert [None if pd.isna(v) else v for v in frame[col]] == [
            None if pd.isna(v) else v for v in pandas[col]
        ]


def test_a_nested_value_stays_one_cell_for_the_service_to_refuse():
    frame = records_frame([{"a": [1, 2], "b": {"k": 1}}])
    assert frame.shape == (1, 2)
    assert frame.loc[0, "a"] == [1, 2] and frame.loc[0, "b"] == {"k": 1}


def test_dataframe_split_rows_must_match_the_columns():
    frame = mlflow_frame({"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}})
    assert frame.shape == (2, 2) and list(frame["b"]) == ["x", "y"]
    with pytest.raises(BadRequest, match="not a table"):
        mlflow_frame({"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x", 3]]}})


def test_many_rows_are_typed_by_pandas():
    rows = [{"a": i, "b": str(i)} for i in range(SMALL_ROWS + 1)]
    frame = records_frame(rows)
    assert frame["a"].dtype == np.int64
