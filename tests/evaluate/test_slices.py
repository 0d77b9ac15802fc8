"""Error slices: a planted weak subgroup is found; a model without one reports none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from helpers import dataset
from mlre.evaluate.groups import slice_groups as groups_of
from mlre.evaluate.slices import error_slices, row_losses

ADULT = "income-per-year"


@pytest.fixture(scope="module")
def adult():
    df = dataset("adult").sample(n=12_000, random_state=0).reset_index(drop=True)
    X = pd.get_dummies(df.drop(columns=[ADULT]), dtype=float).fillna(0.0)
    y = df[ADULT].astype("category").cat.codes.to_numpy()
    cut = 6_000
    model = LogisticRegression(max_iter=500).fit(X.iloc[:cut], y[:cut])
    raw = df.drop(columns=[ADULT]).iloc[cut:].reset_index(drop=True)
    return raw, y[cut:], model.predict_proba(X.iloc[cut:])


def test_a_planted_weak_subgroup_is_found(adult):
    raw, y, proba = adult
    # plant it: in one occupation the labels are scrambled, so the model cannot get them right
    group = raw["occupation"].value_counts().index[3]
    inside = (raw["occupation"] == group).to_numpy()
    rng = np.random.default_rng(0)
    planted = y.copy()
    planted[inside] = rng.permutation(1 - y[inside])
    d = error_slices(raw, planted, proba, "binary")
    (finding,) = d.findings
    assert finding.check == "error_slices" and finding.severity.value == "warning"
    top = d.data["slices"][0]
    assert (top["feature"], top["group"]) == ("occupation", group)
    assert top["rows"] == inside.sum() and top["ratio"] > 1.25 and top["p_adjusted"] < 0.05
    assert group in finding.message


def test_no_slice_is_reported_when_no_group_was_planted():
    rng = np.random.default_rng(0)
    n = 5000
    X = pd.DataFrame({"colour": rng.choice(list("abcd"), n), "size": rng.normal(size=n)})
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.uniform(size=n) < p).astype(int)  # the predicted probabilities are the truth
    d = error_slices(X, y, np.c_[1 - p, p], "binary")
    assert d.data["slices"] == [] and d.data["tested"] >= 8
    assert [f.severity.value for f in d.findings] == ["info"]


def test_regression_slices_use_squared_error():
    y = np.array([1.0, 2.0, 3.0])
    assert row_losses("regression", y, np.array([1.0, 2.0, 5.0])).tolist() == [0, 0, 4]
    proba = np.array([[0.9, 0.1], [0.5, 0.5]])
    assert row_losses("binary", np.array([0, 1]), proba) == pytest.approx(
        [-np.log(0.9), -np.log(0.5)]
    )


def test_groups_of_columns():
    numbers = pd.Series(np.arange(100, dtype=float))
    assert groups_of(numbers).nunique() == 4  # quartiles
    cats = pd.Series(["x"] * 50 + ["y"] * 50 + [None] * 5)
    assert set(groups_of(cats)) == {"x", "y", "(missing)"}
    assert groups_of(pd.Series(["same"] * 10)) is None
