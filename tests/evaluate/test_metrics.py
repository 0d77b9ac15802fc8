"""Metrics on real predictions agree with scikit-learn; losses point the right way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers import dataset
from mlre.evaluate.metrics import get_metric, naive_prediction
from mlre.spec import METRICS


def _fit_predict(name: str, target: str, model, rows: int | None = None):
    """Train on the first 70% of a data set (one-hot features) and predict the rest:
    class codes and probabilities for a classifier, values for a regressor."""
    df = dataset(name, rows=rows)
    X = pd.get_dummies(df.drop(columns=[target]), dtype=float)
    classify = hasattr(model, "predict_proba")
    y = df[target].astype("category").cat.codes.to_numpy() if classify else df[target].to_numpy()
    cut = int(len(df) * 0.7)
    pipe = make_pipeline(StandardScaler(), model).fit(X.iloc[:cut], y[:cut])
    rest = X.iloc[cut:]
    return y[cut:], pipe.predict_proba(rest) if classify else pipe.predict(rest)


@pytest.fixture(scope="module")
def binary() -> tuple[np.ndarray, np.ndarray]:
    return _fit_predict("german_credit", "credit", LogisticRegression(max_iter=1000))


@pytest.fixture(scope="module")
def multiclass() -> tuple[np.ndarray, np.ndarray]:
    return _fit_predict("hpc_jobs", "class", LogisticRegression(max_iter=1000))


@pytest.fixture(scope="module")
def regression() -> tuple[np.ndarray, np.ndarray]:
    return _fit_predict("diamonds", "price", LinearRegression(), rows=3000)


def _sklearn_binary(name: str, y: np.ndarray, proba: np.ndarray) -> float:
    labels = proba.argmax(axis=1)
    return {
        "roc_auc": lambda: skm.roc_auc_score(y, proba[:, 1]),
        "log_loss": lambda: skm.log_loss(y, proba),
        "accuracy": lambda: skm.accuracy_score(y, labels),
        "balanced_accuracy": lambda: skm.balanced_accuracy_score(y, labels),
        "f1": lambda: skm.f1_score(y, labels),
    }[name]()


def _sklearn_multiclass(name: str, y: np.ndarray, proba: np.ndarray) -> float:
    labels = proba.argmax(axis=1)
    return {
        "roc_auc": lambda: skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
        "log_loss": lambda: skm.log_loss(y, proba),
        "accuracy": lambda: skm.accuracy_score(y, labels),
        "balanced_accuracy": lambda: skm.balanced_accuracy_score(y, labels),
        "f1": lambda: skm.f1_score(y, labels, average="macro"),
    }[name]()


def _sklearn_regression(name: str, y: np.ndarray, pred: np.ndarray) -> float:
    return {
        "rmse": lambda: skm.root_mean_squared_error(y, pred),
        "mae": lambda: skm.mean_absolute_error(y, pred),
        "r2": lambda: skm.r2_score(y, pred),
        "mape": lambda: skm.mean_absolute_percentage_error(y, pred),
    }[name]()


CLASSIFICATION = [m for m, (tasks, _) in METRICS.items() if "binary" in tasks]
REGRESSION = [m for m, (tasks, _) in METRICS.items() if "regression" in tasks]


def test_every_metric_is_covered():
    assert set(CLASSIFICATION) | set(REGRESSION) == set(METRICS)
    assert set(CLASSIFICATION) == {"roc_auc", "log_loss", "accuracy", "balanced_accuracy", "f1"}


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_binary_metrics_match_sklearn(name: str, binary):
    y, proba = binary
    assert proba.shape == (len(y), 2)
    assert get_metric(name)(y, proba) == pytest.approx(_sklearn_binary(name, y, proba), rel=1e-9)


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_multiclass_metrics_match_sklearn(name: str, multiclass):
    y, proba = multiclass
    assert proba.shape == (len(y), 4) and set(np.unique(y)) == {0, 1, 2, 3}
    expected = _sklearn_multiclass(name, y, proba)
    assert get_metric(name)(y, proba) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_metrics_match_sklearn(name: str, regression):
    y, pred = regression
    assert pred.shape == y.shape
    expected = _sklearn_regression(name, y, pred)
    assert get_metric(name)(y, pred) == pytest.approx(expected, rel=1e-9)


def test_metric_values_are_plain_floats(binary, regression):
    assert type(get_metric("roc_auc")(*binary)) is float
    assert type(get_metric("mae")(*regression)) is float


@pytest.mark.parametrize("name", list(METRICS))
def test_loss_is_lower_for_better_and_to_score_inverts_it(name: str, binary, regression):
    metric = get_metric(name)
    assert metric.name == name and metric.greater_is_better is METRICS[name][1]
    y, pred = binary if name in CLASSIFICATION else regression
    score = metric(y, pred)
    loss = metric.loss(y, pred)
    assert loss == (-score if metric.greater_is_better else score)
    assert metric.to_score(loss) == pytest.approx(score)


@pytest.mark.parametrize("name", ["roc_auc", "log_loss", "balanced_accuracy"])
def test_a_real_model_has_a_lower_loss_than_the_naive_baseline_classification(name, binary):
    y, proba = binary
    naive = naive_prediction("binary", y, len(y), 2)
    metric = get_metric(name)
    assert metric.loss(y, proba) < metric.loss(y, naive)


@pytest.mark.parametrize("name", ["rmse", "mae", "r2"])
def test_a_real_model_has_a_lower_loss_than_the_naive_baseline_regression(name, regression):
    y, pred = regression
    naive = naive_prediction("regression", y, len(y))
    metric = get_metric(name)
    assert metric.loss(y, pred) < metric.loss(y, naive)


def test_multiclass_roc_auc_with_a_class_absent_from_y(multiclass):
    y, proba = multiclass
    metric = get_metric("roc_auc")
    # three of the four classes present: one-vs-rest over those, probabilities renormalised
    keep = y != 3
    value = metric(y[keep], proba[keep])
    sub = proba[keep][:, :3]
    sub = sub / sub.sum(axis=1, keepdims=True)
    assert value == pytest.approx(
        skm.roc_auc_score(y[keep], sub, multi_class="ovr", average="macro"), rel=1e-9
    )
    assert 0.5 < value <= 1.0
    # two classes present (0 and 2 of 0..3): a binary AUC between them
    keep = np.isin(y, [0, 2])
    value = metric(y[keep], proba[keep])
    pair = proba[keep][:, [0, 2]]
    expected = skm.roc_auc_score(y[keep] == 2, pair[:, 1] / pair.sum(axis=1))
    assert value == pytest.approx(expected, rel=1e-9)
    assert 0.5 < value <= 1.0


def test_log_loss_reads_the_probability_column_of_each_class_code(multiclass):
    y, proba = multiclass
    metric = get_metric("log_loss")
    # only classes 0 and 2 in y: the columns stay those of all four classes
    keep = np.isin(y, [0, 2])
    expected = skm.log_loss(y[keep], proba[keep], labels=[0, 1, 2, 3])
    assert metric(y[keep], proba[keep]) == pytest.approx(expected, rel=1e-9)
    # column j is class j: swapping two columns is a different (worse) prediction
    swapped = proba[:, [1, 0, 2, 3]]
    assert metric(y, swapped) > metric(y, proba)
    assert metric(y, swapped) == pytest.approx(skm.log_loss(y, swapped), rel=1e-9)


def test_log_loss_of_a_certain_wrong_answer_is_finite():
    y = np.array([0, 1])
    proba = np.array([[0.0, 1.0], [1.0, 0.0]])
    value = get_metric("log_loss")(y, proba)
    assert np.isfinite(value) and value > 30


def test_naive_prediction_for_classification():
    y = pd.Series(dataset("hpc_jobs")["class"]).astype("category").cat.codes.to_numpy()
    naive = naive_prediction("multiclass", y, 7, 4)
    assert naive.shape == (7, 4)
    assert np.allclose(naive.sum(axis=1), 1.0)
    assert np.allclose(naive[0], np.bincount(y) / len(y))
    assert (naive == naive[0]).all()
    # a class the training part never saw gets probability zero
    naive = naive_prediction("multiclass", y[y != 2], 3, 4)
    assert naive.shape == (3, 4) and (naive[:, 2] == 0).all()
    assert np.allclose(naive.sum(axis=1), 1.0)
    # its log loss on the training labels is their entropy; its AUC is chance
    freq = np.bincount(y) / len(y)
    entropy = float(-(freq * np.log(freq)).sum())
    naive = naive_prediction("multiclass", y, len(y), 4)
    assert get_metric("log_loss")(y, naive) == pytest.approx(entropy)
    assert get_metric("roc_auc")(y, naive) == pytest.approx(0.5)


def test_naive_prediction_for_regression():
    y = dataset("diamonds", rows=2000)["price"].to_numpy(dtype=float)
    naive = naive_prediction("regression", y, 5)
    assert naive.shape == (5,) and np.allclose(naive, y.mean())
    assert get_metric("r2")(y, naive_prediction("regression", y, len(y))) == pytest.approx(0.0)
    assert get_metric("rmse")(y, naive_prediction("regression", y, len(y))) == pytest.approx(
        y.std()
    )


def test_roc_auc_matches_scikit_learn_when_many_scores_tie(binary):
    y, proba = binary
    coarse = np.round(proba, 1)  # a handful of distinct scores: most rows tie with others
    assert len(np.unique(coarse[:, 1])) < 12
    ours = get_metric("roc_auc")(y, coarse)
    assert ours == pytest.approx(skm.roc_auc_score(y, coarse[:, 1]), rel=1e-12)
    # a constant score ranks nobody above anybody
    assert get_metric("roc_auc")(y, np.full_like(proba, 0.5)) == pytest.approx(0.5)


def test_roc_auc_of_a_single_class_is_an_error_not_a_number(binary):
    y, proba = binary
    keep = y == y[0]
    with pytest.raises(ValueError, match="both classes"):
        get_metric("roc_auc")(y[keep], proba[keep])
