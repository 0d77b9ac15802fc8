"""Shapley explanations of the served model: additive, for regression too, over mixed columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mlre
from helpers import dataset
from mlre.explain.shapley import BACKGROUND_ROWS, _Codec, explain_rows


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
