"""Over- and underfitting and learning curves, on data where the answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from helpers import dataset
from mlre.evaluate.fit import fit_diagnosis, learning_curve
from mlre.evaluate.metrics import get_metric, naive_prediction

ADULT = "income-per-year"
AUC = get_metric("roc_auc")


@pytest.fixture(scope="module")
def adult():
    df = dataset("adult").sample(n=12_000, random_state=0).reset_index(drop=True)
    X = pd.get_dummies(df.drop(columns=[ADULT]), dtype=float).fillna(0.0).to_numpy()
    y = df[ADULT].astype("category").cat.codes.to_numpy()
    cut = 8_000
    return X[:cut], y[:cut], X[cut:], y[cut:]


def _fit(model, adult):
    X, y, X_hold, y_hold = adult
    model.fit(X, y)
    baseline = AUC(y_hold, naive_prediction("binary", y, len(y_hold), 2))
    return fit_diagnosis(
        AUC,
        train_score=AUC(y, model.predict_proba(X)),
        holdout_score=AUC(y_hold, model.predict_proba(X_hold)),
        baseline_score=baseline,
    )


def test_an_unconstrained_deep_tree_is_flagged_as_overfitting(adult):
    d = _fit(DecisionTreeClassifier(random_state=0), adult)
    assert d.data["verdict"] == "overfitting"
    assert d.data["train"] > 0.99 and d.data["holdout"] < 0.85
    assert [f.check for f in d.findings] == ["overfitting"]


def test_a_regularised_linear_model_fits_well(adult):
    d = _fit(LogisticRegression(max_iter=300), adult)
    assert d.data["verdict"] == "good fit"
    assert [f.severity.value for f in d.findings] == ["info"]


def test_a_model_of_noise_is_flagged_as_underfitting():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 5))
    y = rng.integers(0, 2, 4000)  # labels unrelated to the features
    model = LogisticRegression().fit(X[:3000], y[:3000])
    d = fit_diagnosis(
        AUC,
        train_score=AUC(y[:3000], model.predict_proba(X[:3000])),
        holdout_score=AUC(y[3000:], model.predict_proba(X[3000:])),
        baseline_score=0.5,
    )
    assert d.data["verdict"] == "underfitting"


def _curve(X, y, X_hold, y_hold, model_factory):
    def fit_predict(rows: np.ndarray) -> np.ndarray:
        return model_factory().fit(X[rows], y[rows]).predict_proba(X_hold)

    return learning_curve(fit_predict, len(y), y_hold, AUC, seed=0)


def test_a_model_trained_on_five_percent_of_a_data_set_would_gain_from_more_data():
    df = dataset("adult")
    X = pd.get_dummies(df.drop(columns=[ADULT]), dtype=float).fillna(0.0).to_numpy()
    y = df[ADULT].astype("category").cat.codes.to_numpy()
    order = np.random.default_rng(0).permutation(len(y))
    train, hold = order[: len(y) // 20], order[len(y) // 2 :]
    d = _curve(
        X[train], y[train], X[hold], y[hold], lambda: HistGradientBoostingClassifier(random_state=0)
    )
    assert d.data["sizes"] == sorted(d.data["sizes"]) and d.data["sizes"][-1] == len(train)
    assert d.data["verdict"] == "more data would help"
    assert [f.check for f in d.findings] == ["more_data_would_help"]


def test_a_simple_model_on_plenty_of_rows_has_levelled_off(adult):
    X, y, X_hold, y_hold = adult
    d = _curve(X, y, X_hold, y_hold, lambda: LogisticRegression(max_iter=300))
    assert len(d.data["sizes"]) == 4
    assert d.data["verdict"] == "plateau"


def test_a_learning_curve_fits_nothing_it_cannot_finish():
    import time

    def never(rows: np.ndarray) -> np.ndarray:
        raise AssertionError("a fit that cannot finish in time must not start")

    # known cost: one second per row; 1 second left is not enough for even the smallest part
    d = learning_curve(
        never,
        1000,
        np.zeros(10, dtype=int),
        AUC,
        deadline=time.monotonic() + 1,
        seconds_per_row=1.0,
    )
    assert d.data["sizes"] == [] and d.data["verdict"] == "unknown" and d.findings == []


def test_a_learning_curve_in_time_order_grows_back_from_the_holdout():
    seen: list[np.ndarray] = []

    def fit_predict(rows: np.ndarray) -> np.ndarray:
        seen.append(np.sort(rows))
        p = np.linspace(0, 1, 10)
        return np.column_stack([1 - p, p])

    y = np.array([0, 1] * 5)
    learning_curve(fit_predict, 800, y, AUC, latest_first=True)
    # each part is the latest rows before the holdout: it ends at the last training row
    assert [len(r) for r in seen] == [100, 200, 400, 800]
    for rows in seen:
        assert rows[-1] == 799 and np.array_equal(rows, np.arange(800 - len(rows), 800))
