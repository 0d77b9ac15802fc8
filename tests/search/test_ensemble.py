"""Greedy ensemble selection (Caruana) on predictions of real targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from helpers import dataset
from mlre.evaluate.metrics import get_metric
from mlre.search.ensemble import caruana, cheapest_within, validated_caruana


@pytest.fixture(scope="module")
def prices() -> np.ndarray:
    return dataset("diamonds", rows=3000)["price"].to_numpy(dtype=float)


@pytest.fixture(scope="module")
def credit() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """German credit: out-of-fold probabilities of a model on the numbers only and of one on the
    categories only, two views of the applicant that complement each other."""
    df = dataset("german_credit")
    y = (df["credit"] == 2).astype(int).to_numpy()
    features = df.drop(columns=["credit"])
    numbers = features.select_dtypes("number")
    categories = pd.get_dummies(features.drop(columns=numbers.columns), dtype=float)

    def oof(X: pd.DataFrame) -> np.ndarray:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        return cross_val_predict(model, X, y, cv=5, method="predict_proba")

    return y, oof(numbers), oof(categories)


def noisy(y: np.ndarray, scale: float, seed: int) -> np.ndarray:
    return y + np.random.default_rng(seed).normal(0, scale, len(y))


def weighted(predictions: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    return sum(w * p for w, p in zip(weights, predictions, strict=True))


def test_two_complementary_noisy_predictors_share_the_weight(prices):
    rmse = get_metric("rmse")
    sd = prices.std() / 2
    preds = [noisy(prices, sd, 1), noisy(prices, sd, 2)]
    weights, loss = caruana(preds, prices, rmse)
    assert weights.sum() == pytest.approx(1.0)
    assert (weights > 0).all()
    assert weights == pytest.approx([0.5, 0.5], abs=0.15)
    singles = [rmse.loss(prices, p) for p in preds]
    assert loss < min(singles)
    # independent errors of equal size: averaging cuts the error by about sqrt(2)
    assert loss == pytest.approx(min(singles) / np.sqrt(2), rel=0.05)
    assert loss == pytest.approx(rmse.loss(prices, weighted(preds, weights)))


def test_a_random_predictor_gets_no_weight(prices):
    rmse = get_metric("rmse")
    rng = np.random.default_rng(3)
    # (with the target's mean, a random predictor can still earn a little weight as shrinkage
    # when the others are very noisy; with predictors this good, it earns none)
    sd = prices.std() / 4
    useless = rng.normal(prices.mean(), prices.std(), len(prices))
    preds = [noisy(prices, sd, 1), useless, noisy(prices, sd, 2)]
    weights, loss = caruana(preds, prices, rmse)
    assert weights[1] == 0.0
    assert weights[0] > 0 and weights[2] > 0
    assert weights.sum() == pytest.approx(1.0)
    assert loss < min(rmse.loss(prices, p) for p in preds)


def test_a_single_predictor_gets_all_the_weight(prices):
    rmse = get_metric("rmse")
    pred = noisy(prices, 500, 4)
    weights, loss = caruana([pred], prices, rmse)
    assert weights.tolist() == [1.0]
    assert loss == pytest.approx(rmse.loss(prices, pred))


def test_no_rounds_keeps_the_best_single_predictor(prices):
    rmse = get_metric("rmse")
    preds = [noisy(prices, 900, 5), noisy(prices, 300, 6), noisy(prices, 600, 7)]
    weights, loss = caruana(preds, prices, rmse, rounds=0)
    assert weights.tolist() == [0.0, 1.0, 0.0]
    assert loss == pytest.approx(rmse.loss(prices, preds[1]))


def test_a_much_better_predictor_is_not_diluted_by_a_worse_one(prices):
    rmse = get_metric("rmse")
    good, bad = noisy(prices, 100, 8), noisy(prices, 3000, 9)
    weights, loss = caruana([bad, good], prices, rmse)
    assert weights[1] > 0.9 and weights.sum() == pytest.approx(1.0)
    assert loss <= rmse.loss(prices, good)


def test_complementary_classifiers_on_credit_lower_the_log_loss(credit):
    y, numbers, categories = credit
    log_loss = get_metric("log_loss")
    preds = [numbers, categories]
    weights, loss = caruana(preds, y, log_loss)
    assert (weights > 0).all() and weights.sum() == pytest.approx(1.0)
    assert loss < min(log_loss.loss(y, p) for p in preds)
    blend = weighted(preds, weights)
    assert np.allclose(blend.sum(axis=1), 1.0)
    assert loss == pytest.approx(log_loss.loss(y, blend))


def test_greater_is_better_metrics_work_through_their_loss(credit):
    y, numbers, categories = credit
    auc = get_metric("roc_auc")
    rng = np.random.default_rng(10)
    coin = rng.random(len(y))
    useless = np.column_stack([1 - coin, coin])
    preds = [numbers, useless, categories]
    weights, loss = caruana(preds, y, auc)
    assert weights[1] == 0.0 and weights.sum() == pytest.approx(1.0)
    # the loss of a greater-is-better metric is negative; its score is the ensemble's AUC
    best_single = max(auc(y, p) for p in preds)
    assert auc.to_score(loss) >= best_single
    assert auc.to_score(loss) == pytest.approx(auc(y, weighted(preds, weights)))


# ------------------------------------------------------------ the ensemble, validated


def test_an_ensemble_that_pays_on_unseen_rows_is_kept(prices):
    rmse = get_metric("rmse")
    sd = prices.std() / 2
    preds = [noisy(prices, sd, 1), noisy(prices, sd, 2), noisy(prices, sd, 3)]
    weights, loss, paid = validated_caruana(preds, prices, rmse, seed=0)
    assert paid and np.count_nonzero(weights) >= 2
    fitted, fitted_loss = caruana(preds, prices, rmse)
    assert np.allclose(weights, fitted) and loss == pytest.approx(fitted_loss)


@pytest.mark.parametrize("seed", range(5))
def test_an_ensemble_fitted_to_the_noise_of_its_rows_gives_way_to_one_model(prices, seed):
    # one good model and copies of it with extra noise of their own: any blend is worse in
    # truth, yet on 200 rows the greedy selection always finds one that looks better; on rows
    # it was not chosen on it does worse, so the good model is kept alone
    y = prices[:200]
    rng = np.random.default_rng(seed)
    good = y + rng.normal(0, y.std() / 3, len(y))
    preds = [good] + [good + rng.normal(0, y.std() / 3, len(y)) for _ in range(8)]
    fitted, fitted_loss = caruana(preds, y, get_metric("rmse"))
    assert np.count_nonzero(fitted) > 1 and fitted_loss < get_metric("rmse").loss(y, good)
    weights, loss, paid = validated_caruana(preds, y, get_metric("rmse"), seed=0)
    assert not paid and weights[0] == 1.0 and np.count_nonzero(weights) == 1
    assert loss == pytest.approx(get_metric("rmse").loss(y, good))


def test_one_model_is_the_cheapest_among_those_within_the_folds_noise():
    losses = [0.300, 0.302, 0.299, 0.350]
    costs = [10.0, 1.0, 30.0, 0.1]
    # 0.302 is within 0.005 of the best (0.299), and ten times cheaper than the next
    assert cheapest_within(losses, 0.005, costs) == 1
    # with no noise to allow for, the best; the much cheaper but clearly worse never
    assert cheapest_within(losses, 0.0, costs) == 2
    assert cheapest_within(losses, 0.02, costs) == 1
    # equal costs: the lower loss
    assert cheapest_within(losses, 0.005, [1.0] * 4) == 2
