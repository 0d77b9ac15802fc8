"""Interpretable runs: glass-box models only, the best one alone, shown whole in the report."""

from __future__ import annotations

import time

import numpy as np
import pytest
from typer.testing import CliRunner

import mlre
from helpers import audit, dataset
from mlre.cli import app
from mlre.data.split import cv_folds
from mlre.evaluate.metrics import get_metric
from mlre.features import FeaturePlan
from mlre.models import FAMILIES
from mlre.models.families.glassbox import GLASS_BOX
from mlre.models.glassbox import describe
from mlre.search.trial import TrialData, fit_pipeline
from mlre.spec import build_spec

GLASS = {f.name for f in GLASS_BOX}


@pytest.fixture(scope="module")
def credit():
    df = dataset("german_credit")
    contract = audit(df, "credit").contract
    plan = FeaturePlan.from_contract(contract)
    y = (df["credit"] == 2).astype(int).to_numpy()
    data = TrialData(
        df[plan.columns],
        y,
        cv_folds(y, task="binary", k=4, seed=0),
        "binary",
        2,
        plan,
        get_metric("roc_auc"),
        0,
    )
    return data


def _fit(family: str, params: dict, data: TrialData):
    train, valid = data.folds[0]
    pipe, _ = fit_pipeline(family, params, data, train, valid, 0, time.monotonic() + 120)
    return pipe


def test_a_sparse_linear_model_reads_as_its_non_zero_coefficients(credit):
    view = describe(_fit("sparse_linear", {"C": 0.05}, credit), "binary", ["1", "2"])
    assert view["kind"] == "linear" and view["zeroed"] > 0, "the L1 penalty drops columns"
    weights = [abs(c["coefficient"]) for c in view["coefficients"]]
    assert weights == sorted(weights, reverse=True) and all(w > 0 for w in weights)
    assert {c["class"] for c in view["coefficients"]} == {"2"}


def test_a_shallow_tree_reads_as_its_rules_in_the_columns_own_units(credit):
    pipe = _fit("shallow_tree", {"max_depth": 3, "min_samples_leaf": 20}, credit)
    view = describe(pipe, "binary", ["1", "2"])
    assert view["kind"] == "tree" and view["depth"] <= 3 and view["leaves"] <= 8
    # thresholds on raw amounts and months, not standardised ones
    assert "month" in view["text"] or "credit_amount" in view["text"]
    assert "|---" in view["text"]


def test_an_explainable_boosting_machine_reads_as_shape_functions(credit):
    if not FAMILIES["ebm"].available():
        pytest.skip("the interpret package is not installed")
    view = describe(_fit("ebm", {"interactions": 0}, credit), "binary", ["1", "2"])
    assert view["kind"] == "ebm" and len(view["terms"]) == len(credit.plan.columns)
    importances = [t["importance"] for t in view["terms"]]
    assert importances == sorted(importances, reverse=True)
    month = next(t for t in view["terms"] if t["term"] == "month")
    assert len(month["names"]) == len(month["scores"]) + 1  # bin edges around each score


def test_an_interpretable_run_keeps_one_readable_model_and_reports_it_whole(tmp_path):
    result = mlre.run(
        dataset("german_credit"),
        target="credit",
        time_budget=25,
        track=False,
        interpretable=True,
        report=tmp_path / "report.html",
    )
    assert {row["family"] for row in result.leaderboard} <= GLASS
    (member,) = result.model.members
    assert member.family in GLASS and len(member.pipelines) == 1 and member.weight == 1
    assert "refitted on all training rows" in result.scheme["search"]
    whole = result.report["whole_model"]
    assert whole["family"] == member.family and whole["kind"] in {"linear", "tree", "ebm"}
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="whole-model"' in html and "The whole model" in html
    proba = result.model.predict_proba(dataset("german_credit").drop(columns=["credit"]).head(5))
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)


def test_interpretable_in_the_spec_and_on_the_command_line(tmp_path, monkeypatch):
    assert build_spec({"interpretable": True}).constraints.interpretable is True
    spec = build_spec({"interpretable": True, "constraints": {"fairness": {"max_difference": 0.2}}})
    assert spec.constraints.interpretable and spec.constraints.fairness.max_difference == 0.2
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "credit.csv"
    dataset("german_credit").to_csv(path, index=False)
    done = CliRunner().invoke(
        app,
        [
            "run",
            str(path),
            "--target",
            "credit",
            "--time-budget",
            "15",
            "--interpretable",
            "--no-track",
            "--json",
            "--no-report",
        ],
    )
    assert done.exit_code == 0, done.output
    assert "sparse_linear" in done.stdout or "shallow_tree" in done.stdout


def test_interpretable_with_only_black_box_families_is_a_clear_error():
    with pytest.raises(mlre.InputError, match="interpretable"):
        mlre.run(
            dataset("german_credit"),
            target="credit",
            time_budget=10,
            track=False,
            interpretable=True,
            families=["lightgbm"],
        )


def test_an_ordinary_search_leaves_the_glass_box_families_out_unless_named(credit):
    from mlre.search.engine import Search

    later = time.monotonic() + 60
    assert not {f.name for f in Search(credit, later).families} & GLASS
    assert {f.name for f in Search(credit, later, interpretable=True).families} == GLASS
    named = Search(credit, later, families=["lightgbm", "ebm"]).families
    assert [f.name for f in named] == ["lightgbm", "ebm"]
