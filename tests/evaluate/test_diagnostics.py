"""Diagnostics on real data where the answer is known: intervals, calibration, curves, residuals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers import dataset
from mlre.evaluate.diagnostics import (
    bootstrap_ci,
    calibration,
    classification_curves,
    expected_range,
    holdout_intervals,
    residuals,
)
from mlre.evaluate.metrics import get_metric

ADULT = "income-per-year"


def split_fit(name: str, target: str, model, rows: int | None = None, seed: int = 0):
    """Fit on a random 70% (one-hot features), predict the rest: (X_test, y_test, prediction)."""
    df = dataset(name, rows=rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    X = pd.get_dummies(df.drop(columns=[target]), dtype=float).fillna(0.0)
    classify = hasattr(model, "predict_proba")
    y = df[target].astype("category").cat.codes.to_numpy() if classify else df[target].to_numpy()
    cut = int(len(df) * 0.7)
    pipe = make_pipeline(StandardScaler(), model).fit(X.iloc[:cut], y[:cut])
    rest = X.iloc[cut:]
    pred = pipe.predict_proba(rest) if classify else pipe.predict(rest)
    return df.drop(columns=[target]).iloc[cut:].reset_index(drop=True), y[cut:], pred


@pytest.fixture(scope="module")
def adult():
    return split_fit("adult", ADULT, LogisticRegression(max_iter=500), rows=8000)


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_rows(adult):
    _, y, proba = adult
    auc = get_metric("roc_auc")
    low, high = bootstrap_ci(auc, y, proba, seed=1)
    assert low < auc(y, proba) < high
    small_low, small_high = bootstrap_ci(auc, y[:300], proba[:300], seed=1)
    assert (small_high - small_low) > 1.5 * (high - low)
    table = holdout_intervals([auc, get_metric("accuracy")], y, proba).data["rows"]
    assert [r["metric"] for r in table] == ["roc_auc", "accuracy"]
    assert all(r["low"] <= r["value"] <= r["high"] for r in table)


def test_logistic_regression_is_calibrated_and_a_distorted_model_is_not(adult):
    _, y, proba = adult
    good = calibration(y, proba)
    assert good.data["ece"] < 0.05 and [f.check for f in good.findings] == ["calibration"]
    assert good.data["brier"] == pytest.approx(np.mean(np.sum((proba - np.eye(2)[y]) ** 2, axis=1)))
    assert sum(b["rows"] for b in good.data["bins"]) == len(y)
    # pushing every probability towards the extremes keeps the ranking but breaks calibration
    p = proba[:, 1] ** 3 / (proba[:, 1] ** 3 + proba[:, 0] ** 3)
    bad = calibration(y, np.c_[1 - p, p])
    assert bad.data["ece"] > 0.05
    assert [f.check for f in bad.findings] == ["miscalibrated"]


def test_curves_agree_with_scikit_learn(adult):
    _, y, proba = adult
    d = classification_curves(y, proba, ["<=50K", ">50K"])
    (curve,) = d.data["curves"]
    assert curve["auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert curve["average_precision"] == pytest.approx(
        skm.average_precision_score(y, proba[:, 1]), rel=1e-6
    )
    assert np.array(d.data["confusion"]).sum() == len(y)
    assert np.array_equal(d.data["confusion"], skm.confusion_matrix(y, proba.argmax(axis=1)))
    roc = curve["roc"]
    assert roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0 and len(roc["fpr"]) <= 200
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)


def test_multiclass_curves_one_per_class():
    _, y, proba = split_fit("hpc_jobs", "class", LogisticRegression(max_iter=1000))
    classes = sorted(dataset("hpc_jobs")["class"].astype(str).unique())
    d = classification_curves(y, proba, classes)
    assert len(d.data["curves"]) == len(classes)
    assert [r["class"] for r in d.data["per_class"]] == classes
    assert d.data["accuracy"] == pytest.approx((proba.argmax(axis=1) == y).mean())


def test_a_linear_model_of_diamond_prices_is_biased_at_the_extremes():
    X, y, pred = split_fit("diamonds", "price", LinearRegression(), rows=6000)
    d = residuals(y, pred, X)
    assert d.data["rmse"] == pytest.approx(np.sqrt(np.mean((y - pred) ** 2)))
    assert len(d.data["points"]["predicted"]) == min(len(y), 2000)
    # prices are skewed: a straight line misses the cheapest and the dearest stones
    assert [f.check for f in d.findings] == ["residual_bias"]
    assert d.data["by_feature"], "the residuals by feature show where the model errs most"


def test_the_expected_range_holds_the_holdout_score_as_often_as_it_says():
    # a model whose predictions are as good on every sample of rows: the holdout score differs
    # from the out-of-fold estimate by sampling noise alone, and should fall in the 95% range
    # about 95 times in 100
    auc = get_metric("roc_auc")
    rng = np.random.default_rng(0)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 2, n)
        score = y + rng.normal(0, 1.2, n)
        return y, np.column_stack([1 - score, score])

    inside, widths = 0, []
    for seed in range(60):
        searched, held = sample(800), sample(200)
        low, high = expected_range(auc, auc(*searched), searched, held, seed=seed)
        inside += low <= auc(*held) <= high
        widths.append(high - low)
    assert 51 <= inside <= 60
    # twice the rows on both sides: a range about 1/sqrt(2) as wide
    low, high = expected_range(auc, 0.8, sample(1600), sample(400), seed=0)
    assert 0.6 < (high - low) / np.mean(widths) < 0.85
