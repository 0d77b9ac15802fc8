"""AutoModel, AutoClassifier and AutoRegressor behave like scikit-learn estimators."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import mlre
from helpers import dataset

#: each search gets a few seconds on the checks' small arrays; ``force`` because the checks feed
#: data the audit rightly refuses (a feature that copies the target, a class with one row)
QUICK = {"time_budget": 3, "families": ["linear"], "force": True}

#: the scikit-learn checks that cannot apply to a time-budgeted search, and why
SECOND_FIT = (
    "compares two fits: a time budget may cut the second search at another trial when the "
    "machine is busier (the estimators say so with the non_deterministic tag)"
)
CANNOT_APPLY = {"check_fit_idempotent": SECOND_FIT, "check_supervised_y_2d": SECOND_FIT}
CANNOT_APPLY_CLASSIFIER = {
    **CANNOT_APPLY,
    "check_fit2d_1feature": (
        "10 rows of 3 classes cannot keep the stratified outer holdout mlre scores on; the "
        "search refuses them rather than report a score from no data"
    ),
    "check_classifier_data_not_an_array": SECOND_FIT,
}


CANNOT_APPLY_REGRESSOR = {
    **CANNOT_APPLY,
    "check_regressors_int": SECOND_FIT,
    "check_regressor_data_not_an_array": SECOND_FIT,
}


def cannot_apply(estimator) -> dict[str, str]:
    return CANNOT_APPLY_CLASSIFIER if is_classifier(estimator) else CANNOT_APPLY_REGRESSOR


@parametrize_with_checks(
    [mlre.AutoClassifier(**QUICK), mlre.AutoRegressor(**QUICK)],
    expected_failed_checks=cannot_apply,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_the_kinds_and_their_scores():
    assert is_classifier(mlre.AutoClassifier()) and is_regressor(mlre.AutoRegressor())
    assert not is_classifier(mlre.AutoModel()) and not is_regressor(mlre.AutoModel())
    assert clone(mlre.AutoClassifier(time_budget=5)).get_params()["time_budget"] == 5


@pytest.mark.parametrize("kind", [mlre.AutoModel, mlre.AutoClassifier, mlre.AutoRegressor])
def test_predicting_before_fit_is_not_fitted_error(kind):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        kind().predict(np.zeros((2, 3)))


def test_a_classifier_on_real_data_keeps_labels_and_checks_columns():
    df = dataset("german_credit")
    X, y = df.drop(columns=["credit"]), df["credit"]
    model = mlre.AutoClassifier(time_budget=10, families=["linear", "lightgbm"]).fit(
        X.iloc[:800], y.iloc[:800]
    )
    assert list(model.classes_) == sorted(y.unique())
    assert list(model.feature_names_in_) == list(X.columns) and model.n_features_in_ == 20
    proba = model.predict_proba(X.iloc[800:])
    assert proba.shape == (200, 2) and np.allclose(proba.sum(axis=1), 1)
    labels = model.predict(X.iloc[800:])
    assert set(labels) <= set(y.unique()) and labels.dtype == y.to_numpy().dtype
    assert 0.6 < model.score(X.iloc[800:], y.iloc[800:]) <= 1
    with pytest.raises(ValueError, match="20 features"):
        model.predict(X.iloc[800:, :5].to_numpy())
    with pytest.raises(ValueError, match="feature names"):
        model.predict(X.iloc[800:].rename(columns={"age": "years"}))


def test_a_regressor_scores_r2_and_refuses_labels():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    y = 3 * X["a"] - X["b"] + rng.normal(scale=0.1, size=400)
    model = mlre.AutoRegressor(time_budget=5, families=["linear"]).fit(X, y)
    assert model.score(X, y) > 0.95 and not hasattr(model, "predict_proba")
    with pytest.raises(ValueError, match="must be numbers"):
        mlre.AutoRegressor(time_budget=5).fit(X, np.array(["low", "high"] * 200, dtype=object))
