"""Stacking: a second layer on the table's columns and the first layer's out-of-fold blend, kept
only when the validated selection finds it pays, and carried through storage, refit and replay."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from helpers import audit
from mlre.data.split import cv_folds
from mlre.evaluate.metrics import get_metric
from mlre.features.pipeline import FeaturePlan
from mlre.models import FAMILIES
from mlre.models.final import MlreModel, member_predict, with_level_one
from mlre.search.engine import Search
from mlre.search.job import prepare
from mlre.search.refit import StoredModel, plan_refit, refit
from mlre.search.replay import rebuild, rebuild_refit
from mlre.search.stack import can_stack
from mlre.search.trial import TrialData
from mlre.spec import Spec


def curved(rows: int, seed: int) -> pd.DataFrame:
    """A regression table a linear model gets only partly right: a linear part, a wave and an
    interaction."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(rows, 4))
    y = 3 * X[:, 0] + 2 * np.sin(4 * X[:, 1]) + 3 * X[:, 2] * X[:, 3] + rng.normal(0, 0.2, rows)
    return pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y)


def rmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - pred) ** 2)))


@pytest.fixture(scope="module")
def stacked():
    df = curved(600, 0)
    contract = audit(df, "y").contract
    plan = FeaturePlan.from_contract(contract)
    y = df["y"].to_numpy()
    folds = cv_folds(y, task="regression", k=4, seed=0)
    data = TrialData(df[plan.columns], y, folds, "regression", 0, plan, get_metric("rmse"), 0)
    # the first layer: a linear model alone; the second may be a LightGBM that reads it
    search = Search(data, time.monotonic() + 300, families=["linear", "lightgbm"])
    try:
        search.run_one(FAMILIES["linear"], dict(FAMILIES["linear"].portfolio[0]), "portfolio")
        search.stack()
    finally:
        search.close()
    result = search.ensemble()
    model = MlreModel("regression", result.members, None, contract, "rmse", result.level_one)
    model.level_one_oof = result.level_one_oof
    return data, contract, result, model


def test_a_second_layer_that_pays_is_kept_with_the_first_layer_it_reads(stacked):
    data, _, result, model = stacked
    assert can_stack(data)
    phases = [t.phase for t in result.trials]
    assert phases[0] == "portfolio" and "stacking" in phases[1:]
    linear = result.trials[0]
    # the linear model is kept for the column it gives the second layer, whatever its own weight
    assert result.level_one is not None and linear.id in result.ensemble
    members = {m.family + ("/stacked" if m.stacked else ""): m for m in model.members}
    assert "linear" in members and members["lightgbm/stacked"].weight > 0
    assert result.level_one[list(result.ensemble).index(linear.id)] == pytest.approx(1.0)
    # out of fold the stack is far better than the first layer alone (the wave and the product)
    assert result.loss < 0.6 * linear.loss
    fresh = curved(400, 1)
    X = fresh[data.plan.columns]
    stacked_rmse = rmse(fresh["y"].to_numpy(), model.predict(X))
    alone = np.mean([member_predict(p, X, "regression", 0) for p in members["linear"].pipelines],
                    axis=0)  # fmt: skip
    assert stacked_rmse < 0.6 * rmse(fresh["y"].to_numpy(), alone)


def test_the_stacked_prediction_is_the_second_layer_on_the_first_layers_blend(stacked):
    data, _, _, model = stacked
    X = curved(50, 2)[data.plan.columns]
    blend = model.level_one_blend(X)
    wide = with_level_one(X, blend, "regression")
    expected = sum(
        m.weight
        * np.mean(
            [member_predict(p, wide if m.stacked else X, "regression", 0) for p in m.pipelines],
            axis=0,
        )
        for m in model.members
    )
    assert np.allclose(model.predict(X), expected)
    # one row at a time (the served path) gives the same numbers
    assert np.allclose([model.predict(X.iloc[[i]])[0] for i in range(5)], expected[:5])
    described = model.describe()
    assert {d["stacked"] for d in described} == {True, False}
    assert sum(d["level_one"] for d in described) == pytest.approx(1.0)


def test_a_stacked_model_is_stored_and_refitted_on_every_row(stacked):
    data, _, _, model = stacked
    X = curved(100, 3)[data.plan.columns]
    before = model.predict(X)
    back = StoredModel(model).load()
    assert back.level_one == model.level_one and np.array_equal(back.predict(X), before)
    rows = float(np.mean([len(tr) for tr, _ in data.folds]))
    members = plan_refit(
        model, len(data.y), [rows] * len(model.members), [0.1] * len(model.members)
    )
    assert [m.stacked for m in members] == [m.stacked for m in model.members]
    with pytest.raises(ValueError, match="first layer"):
        refit(model, members, data.X, data.y, plan=data.plan, task="regression", seed=0,
              deadline=time.monotonic() + 120)  # fmt: skip
    served = refit(model, members, data.X, data.y, plan=data.plan, task="regression", seed=0,
                   deadline=time.monotonic() + 120, level_one=model.level_one_oof)  # fmt: skip
    assert served.level_one == model.level_one
    assert all(len(m.pipelines) == 1 for m in served.members)
    # refitted on the same rows, the stack predicts about what the bagged one does
    fresh = curved(400, 4)
    y, Xf = fresh["y"].to_numpy(), fresh[data.plan.columns]
    assert rmse(y, served.predict(Xf)) < 1.2 * rmse(y, model.predict(Xf))


def test_a_stacked_recipe_is_replayed_first_layer_then_second():
    df = curved(500, 5)
    contract = audit(df, "y").contract
    spec = Spec(target="y", metric="rmse", seed=0)
    prepared = prepare(df, spec, "regression", contract, None)
    k = len(prepared.data.folds)
    recipe = {
        "members": [
            {"family": "linear", "params": dict(FAMILIES["linear"].portfolio[0]), "weight": 0.25,
             "bagged_models": k, "stacked": False, "level_one": 1.0},
            {"family": "lightgbm", "params": dict(FAMILIES["lightgbm"].portfolio[0]),
             "weight": 0.75, "bagged_models": k, "stacked": True, "level_one": 0.0},
        ]
    }  # fmt: skip
    first = rebuild(recipe, prepared, contract, "rmse")
    again = rebuild(recipe, prepared, contract, "rmse")
    X_hold = prepared.hold[prepared.plan.columns]
    assert first.level_one == [1.0, 0.0]
    assert np.array_equal(first.predict(X_hold), again.predict(X_hold))
    assert np.array_equal(first.level_one_oof, again.level_one_oof)
    assert rmse(prepared.y_hold, first.predict(X_hold)) < 0.6 * rmse(
        prepared.y_hold, first.members[0].pipelines[0].predict(X_hold)
    )
    # the refit on every labelled row reads the first layer out of fold on the training part
    # and the scored model's own prediction on the holdout
    inputs = prepared.level_one(first)
    assert len(inputs) == prepared.every_row_count
    assert np.allclose(inputs[len(prepared.train) :], first.level_one_blend(X_hold))
    members = [
        m | {"rounds": None} for m in recipe["members"]
    ]  # the refit's own record of its members
    served = rebuild_refit({"members": members}, first, prepared)
    served_again = rebuild_refit({"members": members}, again, prepared)
    assert [m.stacked for m in served.members] == [False, True]
    assert np.array_equal(served.predict(X_hold), served_again.predict(X_hold))
