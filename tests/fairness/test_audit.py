"""`mlre fairness`: group metrics, disparities and proxies of a real model on adult."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from typer.testing import CliRunner

import mlre
from helpers import data_file, dataset
from mlre.api.fairness import fairness
from mlre.cli import app
from mlre.errors import InputError
from mlre.fairness.audit import MIN_GROUP, audit_predictions, sensitive_frame


@pytest.fixture(scope="module")
def adult(tmp_path_factory):
    """A model trained on a sample of adult, and a labelled table it did not train on."""
    folder = tmp_path_factory.mktemp("fairness")
    df = dataset("adult", rows=6000, seed=1)
    train, holdout = df.iloc[:4000], df.iloc[4000:].reset_index(drop=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(folder)
        run = mlre.run(
            train,
            target="income-per-year",
            time_budget=15,
            families=["lightgbm"],
            report=False,
            project="adult_fair",
        )
        holdout.to_csv(folder / "holdout.csv", index=False)
        yield folder, run, holdout


def test_group_metrics_and_disparities_match_fairlearn(adult, monkeypatch):
    folder, run, holdout = adult
    monkeypatch.chdir(folder)
    audit = fairness(run.model_uri, holdout, sensitive=["sex", "race"])
    y = (holdout["income-per-year"].astype(str) == ">50K").to_numpy(dtype=float)
    from mlre.track.registry import load_model

    pred = (load_model(run.model_uri).model.predict(holdout).astype(str) == ">50K").astype(float)
    by = {(d.column, d.name): d for d in audit.disparities}
    sex = holdout["sex"].astype(str).to_numpy()
    assert by["sex", "demographic_parity_difference"].value == pytest.approx(
        demographic_parity_difference(y, pred, sensitive_features=sex)
    )
    assert by["sex", "equalized_odds_difference"].value == pytest.approx(
        equalized_odds_difference(y, pred, sensitive_features=sex)
    )
    women = next(g for g in audit.groups if g.column == "sex" and g.group == "Female")
    assert women.count == int((sex == "Female").sum())
    assert women.metrics["selection_rate"] == pytest.approx(pred[sex == "Female"].mean())
    for key, (low, high) in women.intervals.items():
        assert low <= women.metrics[key] <= high, key
    assert any(g.column == "sex × race" for g in audit.groups)
    # adult's models select men far more often: the four-fifths rule is broken
    assert by["sex", "demographic_parity_ratio"].breached
    assert audit.breached and any(
        f.check.startswith("fairness_demographic") for f in audit.findings
    )
    # relationship ("Husband", "Wife") gives sex away
    assert any(p.feature == "relationship" and p.sensitive == "sex" for p in audit.proxies)


def test_small_groups_are_shown_but_not_judged():
    rng = np.random.default_rng(0)
    n = 400
    groups = pd.DataFrame({"g": ["a"] * 200 + ["b"] * 190 + ["tiny"] * 10})
    y = rng.integers(0, 2, n).astype(float)
    pred = rng.integers(0, 2, n).astype(float)
    audit = audit_predictions(y, pred, groups, task="binary", samples=50)
    tiny = next(r for r in audit.groups if r.group == "tiny")
    assert tiny.small and tiny.count == 10 < MIN_GROUP
    assert all(d.judged_groups == 2 for d in audit.disparities)
    assert any(f.check == "fairness_small_group" for f in audit.findings)


def test_regression_is_audited_by_error_per_group():
    rng = np.random.default_rng(1)
    groups = pd.DataFrame({"g": ["a"] * 100 + ["b"] * 100})
    y = rng.normal(size=200)
    pred = y + np.r_[np.zeros(100), np.full(100, 0.5)]
    audit = audit_predictions(y, pred, groups, task="regression", samples=50)
    (gap,) = audit.disparities
    assert gap.name == "mae_difference" and gap.value == pytest.approx(0.5)


@pytest.mark.parametrize(
    "frame, columns, message",
    [
        (pd.DataFrame({"a": [1, 2]}), ["sex"], "is not in the data"),
        (pd.DataFrame({"sex": ["x", "x", "x"]}), ["sex"], "single group"),
    ],
)
def test_bad_sensitive_columns_are_clear_errors(frame, columns, message):
    with pytest.raises(InputError, match=message):
        sensitive_frame(frame, columns)


def test_multiclass_is_explained_not_audited():
    with pytest.raises(InputError, match="binary classification and regression"):
        audit_predictions(
            np.zeros(3), np.zeros(3), pd.DataFrame({"g": ["a", "b", "a"]}), task="multiclass"
        )


def test_the_command_prints_groups_and_gates_on_a_breach(adult, monkeypatch):
    folder, run, _ = adult
    monkeypatch.chdir(folder)
    runner = CliRunner()
    done = runner.invoke(
        app, ["fairness", run.model_uri, "holdout.csv", "--sensitive", "sex", "--no-proxies"]
    )
    assert done.exit_code == 0, done.output
    assert "by sex" in done.output and "Female" in done.output and "breached" in done.output
    gated = runner.invoke(
        app, ["fairness", run.model_uri, "holdout.csv", "--sensitive", "sex", "--gate", "--json"]
    )
    assert gated.exit_code == 1
    assert json.loads(gated.output)["breached"] is True
    missing = runner.invoke(
        app, ["fairness", run.model_uri, "holdout.csv", "--sensitive", "gender"]
    )
    assert missing.exit_code == 2 and "not in the data" in missing.output
    assert "Traceback" not in missing.output


def test_compas_is_audited_by_race(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    df = pd.read_csv(data_file("compas_recidivism"))
    run = mlre.run(
        df.iloc[:4000], target="two_year_recid", time_budget=10, families=["linear"], report=False
    )
    audit = fairness(run.model_uri, df.iloc[4000:], sensitive=["race"], proxies=False)
    assert {d.name for d in audit.disparities if d.column == "race"} >= {
        "demographic_parity_difference",
        "equalized_odds_difference",
    }
