"""Shapley explanations of the served model: additive, for regression too, over mixed columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlre
from helpers import dataset
from mlre.explain.shapley import BACKGROUND_ROWS, _Codec, explain_rows, sampled_shapley


@pytest.fixture(scope="module")
def diamonds():
    df = dataset("diamonds", rows=1500)
    result = mlre.run(df, target="price", time_budget=10, families=["linear"], track=False)
    return df.drop(columns=["price"]), result.model


def test_a_regression_explanation_adds_up_to_the_predicted_value(diamonds):
    X, model = diamonds
    assert len(model.background) == BACKGROUND_ROWS
    rows = explain_rows(model, X.head(2))
    predicted = model.predict(X.head(2))
    for r, value in zip(rows, predicted, strict=True):
        assert r.output == "predicted value" and r.value == pytest.approx(value)
        total = r.base_value + sum(c["contribution"] for c in r.contributions)
        assert total == pytest.approx(value, rel=1e-6)
    # carat drives a diamond's price: it leads the explanation of most stones
    assert rows[0].contributions[0]["feature"] in {"carat", "x", "y", "z"}


def test_the_codec_round_trips_categories_missing_values_and_unseen_values():
    background = pd.DataFrame({"colour": ["red", "blue", None], "size": [1.0, np.nan, 3.0]})
    rows = pd.DataFrame({"colour": ["green", "red"], "size": [2.5, 1.0]})
    codec = _Codec(background)
    codec.extend(rows)
    back = codec.decode(codec.encode(rows))
    assert back["colour"].tolist() == ["green", "red"]
    assert back["size"].tolist() == [2.5, 1.0]
    again = codec.decode(codec.encode(background))
    assert again["colour"].tolist()[:2] == ["red", "blue"] and pd.isna(again["colour"][2])
    assert np.isnan(again["size"][1])


def test_a_model_without_background_rows_cannot_be_explained(diamonds):
    X, model = diamonds
    with pytest.raises(ValueError, match="background"):
        explain_rows(model, X.head(1), background=X.head(0))


@pytest.fixture(scope="module")
def additive():
    # a linear model of a target with no long tail (a stone's length; a price would also be
    # tried on the log scale, and exp of a sum is not additive)
    df = dataset("diamonds", rows=1500)
    result = mlre.run(df, target="x", time_budget=10, families=["linear"], track=False)
    assert not any(m.params.get("target_transform") == "log1p" for m in result.model.members)
    return df.drop(columns=["x"]), result.model


def test_batched_shapley_values_of_an_additive_model_are_exact_and_match_shap(additive):
    # a linear model is additive in its input columns, so every column order gives the same,
    # exact values: two seeds agree, and agree with shap's permutation explainer
    X, model = additive
    rows, bg = X.iloc[100:106], model.background.head(15)
    one = sampled_shapley(model, rows, bg, seed=0)
    two = sampled_shapley(model, rows, bg, permutations=4, seed=1)
    assert one.values.shape == (6, X.shape[1], 1) and one.outputs == ["predicted value"]
    np.testing.assert_allclose(one.values, two.values, rtol=1e-6, atol=1e-6)
    reference = explain_rows(model, rows, background=bg)
    for i, r in enumerate(reference):
        by_column = {c["feature"]: c["contribution"] for c in r.contributions}
        mine = dict(zip(one.columns, one.values[i, :, 0], strict=True))
        assert mine == pytest.approx(by_column, rel=1e-6, abs=1e-6)
        assert one.base[0] == pytest.approx(r.base_value, rel=1e-9)


def _interacting_table(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    shop = rng.choice(["north", "south", "east"], size=n)
    noise = rng.normal(size=n)
    logit = 1.5 * a * (shop == "north") + np.where(b > 0, 1.0, -1.0) + 0.2 * noise
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"a": a, "b": b, "shop": shop, "noise": noise, "bought": y})


def _exact_shapley(model, x: pd.DataFrame, bg: pd.DataFrame) -> np.ndarray:
    """The definition: every coalition of columns, weighted, against every background row."""
    from itertools import combinations
    from math import factorial

    cols = list(bg.columns)
    m = len(cols)

    cache: dict[frozenset, float] = {}

    def value(coalition: tuple[str, ...]) -> float:
        key = frozenset(coalition)
        if key not in cache:
            frame = bg.copy()
            for c in coalition:
                frame[c] = x[c].iloc[0]
            cache[key] = float(model.predict_proba(frame)[:, 1].mean())
        return cache[key]

    phi = np.zeros(m)
    for j, c in enumerate(cols):
        others = [o for o in cols if o != c]
        for size in range(m):
            weight = factorial(size) * factorial(m - size - 1) / factorial(m)
            for s in combinations(others, size):
                phi[j] += weight * (value((*s, c)) - value(s))
    return phi


def test_batched_shapley_values_add_up_and_converge_to_the_definition_with_interactions():
    df = _interacting_table()
    result = mlre.run(df, target="bought", time_budget=10, families=["lightgbm"], track=False)
    model, X = result.model, df.drop(columns=["bought"])
    bg = model.background.head(10)
    rows = X.iloc[:3]
    est = sampled_shapley(model, rows, bg, permutations=2, seed=0)
    # each sampled order already adds up: base + contributions = the predicted probability
    p = model.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(est.base[0] + est.values[:, :, 0].sum(axis=1), p, atol=1e-9)
    many = sampled_shapley(model, rows, bg, permutations=300, seed=0)
    for i in range(len(rows)):
        exact = _exact_shapley(model, rows.iloc[[i]], bg)
        np.testing.assert_allclose(many.values[i, :, 0], exact, atol=0.01)


def test_batched_shapley_values_of_a_multiclass_model_cover_every_class():
    df = dataset("fishing_mode", rows=600)
    result = mlre.run(df, target="mode", time_budget=10, families=["linear"], track=False)
    model, X = result.model, df.drop(columns=["mode"])
    est = sampled_shapley(model, X.head(4), model.background.head(8), seed=0)
    k = len(model.classes_)
    assert len(est.outputs) == k and est.values.shape == (4, X.shape[1], k)
    proba = model.predict_proba(X.head(4))
    np.testing.assert_allclose(est.base + est.values.sum(axis=1), proba, atol=1e-9)
