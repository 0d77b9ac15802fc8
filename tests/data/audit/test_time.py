"""The audit notices time: rows in date order or a target drifting with a date (suggesting a
time column), and rows a declared time column cannot place."""

from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import audit, dataset, findings


def test_rows_in_date_order_suggest_a_time_column():
    df = dataset("chicago_ridership").sort_values("date").reset_index(drop=True)
    report = audit(df, "ridership")
    [note] = findings(report, "rows_in_time_order", "date")
    assert "time_column: date" in note.fix
    # the same rows shuffled are not in order, but the target still drifts with the date
    shuffled = df.sample(frac=1.0, random_state=0).reset_index(drop=True)
    report = audit(shuffled, "ridership")
    assert not findings(report, "rows_in_time_order")
    [drift] = findings(report, "target_drifts_with_time", "date")
    assert "drifts with 'date'" in drift.message


def test_no_time_warning_for_dates_the_target_ignores():
    rng = np.random.default_rng(0)
    days = pd.date_range("2020-01-01", periods=2000, freq="D")
    df = pd.DataFrame({
        "signup": rng.permutation(days).astype(str),
        "x": rng.normal(size=2000),
    })  # fmt: skip
    df["y"] = (df["x"] + rng.normal(size=2000) > 0).astype(int)
    report = audit(df, "y")
    assert not findings(report, "rows_in_time_order")
    assert not findings(report, "target_drifts_with_time")


def test_a_declared_time_column_is_not_second_guessed_and_its_gaps_are_errors():
    df = dataset("chicago_ridership").sort_values("date").reset_index(drop=True)
    df["date"] = df["date"].astype(str)
    df.loc[[5, 6], "date"] = [None, "the day after"]
    report = audit(df, "ridership", time_column="date")
    assert not findings(report, "rows_in_time_order")
    [bad] = findings(report, "time_unplaceable", "date")
    assert bad.severity == "error" and bad.evidence["rows"] == 2
    assert "the day after" in bad.message
