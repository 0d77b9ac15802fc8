"""Label-free performance estimation checked against the labels it did not see."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from helpers import dataset
from mlre.monitor.estimate import Calibrator, estimate_binary, expected_auc


def test_expected_auc_is_the_average_over_label_draws():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(8), 1)  # ties on purpose
    p = rng.random(8)
    brute = num = 0.0
    for labels in itertools.product([0, 1], repeat=8):
        y = np.array(labels)
        w = np.prod(np.where(y == 1, p, 1 - p))
        if 0 < y.sum() < 8:
            pairs = y.sum() * (8 - y.sum())
            brute += w * roc_auc_score(y, scores) * pairs
            num += w * pairs
    assert expected_auc(scores, p) == pytest.approx(brute / num)


@pytest.fixture(scope="module")
def income_model():
    """A boosted model of income on every column, calibrated on a labelled reference."""
    import lightgbm as lgb

    df = dataset("adult")
    y = (df.pop("income-per-year").astype(str).str.strip() == ">50K").astype(int).to_numpy()
    X = df.astype(
        {
            c: "category"
            for c in df.columns
            if df[c].dtype == object or str(df[c].dtype).startswith("str")
        }
    )
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    train, ref, rest = order[:12000], order[12000:20000], order[20000:]
    model = lgb.LGBMClassifier(n_estimators=200, learning_rate=0.05, verbose=-1)
    model.fit(X.iloc[train], y[train])
    calibrator = Calibrator().fit(model.predict_proba(X.iloc[ref])[:, 1], y[ref])
    return model, calibrator, X.iloc[rest], y[rest]


@pytest.mark.parametrize("shift", ["none", "older", "more educated"])
def test_the_estimate_covers_the_true_score_under_covariate_shift(income_model, shift):
    model, calibrator, X, y = income_model
    if shift == "older":
        keep = (X["age"] >= 45).to_numpy()
    elif shift == "more educated":
        keep = (X["education-num"] >= 12).to_numpy()
    else:
        keep = np.ones(len(y), dtype=bool)
    Xc, yc = X[keep].iloc[:3000], y[keep][:3000]
    proba = model.predict_proba(Xc)[:, 1]
    est = estimate_binary(proba, calibrator)
    true_acc = accuracy_score(yc, proba >= 0.5)
    true_auc = roc_auc_score(yc, proba)
    assert est["accuracy"].low <= true_acc <= est["accuracy"].high, (est, true_acc)
    assert est["roc_auc"].low <= true_auc <= est["roc_auc"].high, (est, true_auc)
    assert abs(est["accuracy"].value - true_acc) < 0.03
    assert abs(est["roc_auc"].value - true_auc) < 0.03
