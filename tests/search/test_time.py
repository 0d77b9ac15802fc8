"""Rows that are events in time: every split goes forward, dates become calendar features, and
a run reports what shuffled folds would have claimed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mlre
from helpers import dataset
from mlre.cli import app
from mlre.data.split import outer_holdout, parse_times, time_folds
from mlre.errors import InputError
from mlre.features.transformers import DatetimeFeatures

runner = CliRunner()


def ridership(rows: int | None = None) -> pd.DataFrame:
    """chicago_ridership (daily, 2001-2016) in time order, optionally its first ``rows`` days."""
    df = dataset("chicago_ridership").sort_values("date").reset_index(drop=True)
    return df if rows is None else df.iloc[:rows].reset_index(drop=True)


# --------------------------------------------------------------------------- folds


def test_expanding_window_folds_always_validate_after_what_they_train_on():
    days = pd.date_range("2020-01-01", periods=300, freq="D").repeat(2).to_numpy()  # ties
    y = np.arange(len(days), dtype=float)
    folds = time_folds(days, y, task="regression", k=4, gap=5)
    assert len(folds) == 4
    starts = []
    for train, valid in folds:
        assert train.max() < valid.min() - 5  # five rows skipped between them
        assert days[train].max() < days[valid].min()  # one day is never on both sides
        assert np.array_equal(train, np.arange(len(train)))  # expanding: from the first row
        starts.append(valid.min())
    assert starts == sorted(starts)
    # the validation blocks cover the latest rows without overlap
    covered = np.concatenate([v for _, v in folds])
    assert len(np.unique(covered)) == len(covered) and covered.max() == len(days) - 1


def test_a_gap_larger_than_the_data_is_refused():
    days = pd.date_range("2020-01-01", periods=50, freq="D").to_numpy()
    with pytest.raises(InputError, match="no forward fold"):
        time_folds(days, np.zeros(50), task="regression", k=4, gap=100)
    df = pd.DataFrame({"t": days, "y": np.arange(50.0)})
    with pytest.raises(InputError, match="leaves 0 row"):
        outer_holdout(df, df.y.to_numpy(), task="regression", fraction=0.2, seed=0,
                      time_column="t", gap=45)  # fmt: skip


def test_a_binary_fold_of_one_class_is_left_out():
    days = pd.date_range("2020-01-01", periods=100, freq="D").to_numpy()
    y = np.r_[np.tile([0, 1], 30), np.zeros(40, dtype=int)]  # the latest 40 days: one class
    folds = time_folds(days, y, task="binary", k=4)
    assert folds and all(len(np.unique(y[v])) == 2 for _, v in folds)
    assert len(folds) < 4


def test_the_time_holdout_leaves_the_gap_out_of_both_parts():
    df = ridership(1000)
    y = df["ridership"].to_numpy()
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    split = outer_holdout(shuffled, shuffled["ridership"].to_numpy(), task="regression",
                          fraction=0.2, seed=0, time_column="date", gap=14)  # fmt: skip
    when = parse_times(shuffled["date"])
    assert len(split.skipped) == 14 and len(split.test) == 200 and len(split.train) == 786
    assert when.iloc[split.train].max() < when.iloc[split.skipped].min()
    assert when.iloc[split.skipped].max() < when.iloc[split.test].min()
    assert len(y) == len(split.train) + len(split.skipped) + len(split.test)


# --------------------------------------------------------------------------- features


def test_dates_become_calendar_parts_and_holidays():
    X = pd.DataFrame({"d": pd.to_datetime(["2016-07-04", "2016-07-05", "2016-12-24", None])})
    out = DatetimeFeatures(country="US").fit(X).transform(X)
    first = out.iloc[0]
    assert first["d__days"] == 0  # days since the earliest training date, not since 1970
    assert first["d__quarter"] == 3 and first["d__week_of_year"] == 27
    assert first["d__day_of_week"] == 0 and first["d__weekend"] == 0
    assert out["d__weekend"].iloc[2] == 1  # a Saturday
    assert out["d__holiday"].tolist()[:3] == [1, 0, 0]  # Independence Day
    assert out["d__to_holiday"].iloc[2] == 1  # Christmas is the next day
    assert out["d__from_holiday"].iloc[1] == 1
    assert out.iloc[3].isna().all()  # a missing date stays missing
    plain = DatetimeFeatures().fit(X).transform(X)
    assert not any("holiday" in c for c in plain.columns)
    assert "d__year" in plain.columns and "d" not in plain.columns


# --------------------------------------------------------------------------- a run


@pytest.fixture(scope="module")
def forward_run():
    df = ridership(2500)
    return mlre.run(
        df.iloc[:2000], target="ridership", time_column="date", calendar={"country": "US"},
        time_budget=25, track=False, report=False, families=["lightgbm", "linear"],
    ), df.iloc[2000:]  # fmt: skip


def test_a_time_run_validates_forward_and_says_what_shuffling_would_claim(forward_run):
    result, later = forward_run
    assert result.scheme["holdout"] == "time-ordered"
    assert "expanding-window folds in time order" in result.scheme["search"]
    shuffled = result.scheme["shuffled"]
    # shuffled folds let each model learn from days on both sides of those it is judged on:
    # on this table they claim a smaller error than forward validation gives
    assert shuffled["shuffled"] < shuffled["forward"]
    if shuffled["beyond_noise"]:
        [note] = result.findings.by_check("shuffled_estimate")
        assert "random folds would flatter the rmse" in note.message
    # calendar and holiday features from the time column, not the raw timestamp
    model = result.model
    names = list(model.members[0].pipelines[0].named_steps["prep"].get_feature_names_out())
    assert any(n.endswith("date__day_of_week") for n in names)
    assert any(n.endswith("date__holiday") for n in names)
    # the score it reports is close to what the following days give
    pred = model.predict(later.drop(columns=["ridership"]))
    later_rmse = float(np.sqrt(np.mean((pred - later["ridership"].to_numpy()) ** 2)))
    assert later_rmse < 2 * result.holdout_score


def test_the_estimator_takes_the_time_column_and_a_whole_spec():
    df = ridership(1200)
    X, y = df.drop(columns=["ridership"]), df["ridership"]
    model = mlre.AutoRegressor(
        time_budget=12, time_column="date", gap=7, families=["lightgbm"],
        spec={"calendar": {"country": "US"}, "holdout": 0.5},
    ).fit(X, y)  # fmt: skip
    scheme = model.result_.scheme
    assert scheme["holdout"] == "time-ordered, 7 row(s) skipped before it"
    assert "7 row(s) skipped before each" in scheme["search"]
    assert scheme["holdout_rows"] == 240  # the estimator's holdout (0.2) wins over the spec's
    assert np.isfinite(model.score(X.iloc[-100:], y.iloc[-100:]))


# --------------------------------------------------------------------------- bad inputs


def _write(folder: Path, df: pd.DataFrame) -> Path:
    path = folder / "days.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "options", "words"),
    [
        (None, ["--time-column", "when"], ["time column 'when' is not a column"]),
        (None, ["--time-column", "Austin"], ["holds numbers, not dates"]),
        ("unparsable", ["--time-column", "date"], ["is not a date column", "30%"]),
        (None, ["--time-column", "date", "--gap", "5000"], ["gap of 5,000 row(s)"]),
    ],
)
def test_a_time_column_that_cannot_order_the_rows_is_refused(store, change, options, words):
    df = ridership(600)
    if change == "unparsable":
        df["date"] = df["date"].astype(str)
        df.loc[df.sample(frac=0.3, random_state=0).index, "date"] = "someday"
    path = _write(store, df)
    done = runner.invoke(app, ["run", str(path), "--target", "ridership", "--time-budget", "5",
                               *options])  # fmt: skip
    assert done.exit_code == 2, done.output
    text = " ".join(done.output.split())
    for word in words:
        assert word in text
    assert "Traceback" not in done.output
    assert not (store / "mlruns.db").exists()


def test_rows_without_a_time_stop_the_run_unless_forced(store):
    df = ridership(600)
    df["date"] = df["date"].astype(str)
    df.loc[[10, 20, 30], "date"] = ["", "not a day", "??"]
    path = _write(store, df)
    args = ["run", str(path), "--target", "ridership", "--time-column", "date",
            "--time-budget", "8", "--no-report", "--family", "linear"]  # fmt: skip
    done = runner.invoke(app, args)
    assert done.exit_code == 1, done.output
    assert "time_unplaceable" in done.output or "no readable time" in done.output
    assert "Traceback" not in done.output
    forced = runner.invoke(app, [*args, "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    summary = __import__("json").loads(forced.stdout)["summary"]
    # the three rows without a time are left out: 597 rows, a fifth of them held out
    assert summary["scheme"]["holdout_rows"] == round(0.2 * 597)
