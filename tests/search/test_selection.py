"""How the search chooses on tables nobody tuned it for: repeated folds on small data, tuning that
stops once its gains are inside the folds' noise, a log-scale target tried where the target is
long-tailed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers import trial_data
from mlre.models import FAMILIES
from mlre.models.families.base import MAX_ROUNDS
from mlre.models.target import LogTarget, skewed_positive
from mlre.search.engine import CONVERGING, PATIENCE, SLOWER, run_search
from mlre.search.folds import folds_for
from mlre.search.schedule import out_of_fold, run_trial, validated_rows
from mlre.search.trial import TrialData


def test_out_of_fold_predictions_average_the_rounds_of_repeated_folds():
    data, _, _, _ = trial_data("diamonds", "price", "regression", "rmse", rows=400)
    folds, scheme = folds_for(data.y, "regression", 0, None, workers=2)
    assert scheme == "2x4-fold cross-validation"
    repeated = TrialData(data.X, data.y, folds, "regression", 0, data.plan, data.metric, 0)
    # fold k predicts k for its rows: each row's average is the mean of its two folds' numbers
    preds = {k: np.full(len(va), float(k)) for k, (_, va) in enumerate(folds)}
    oof = out_of_fold(repeated, preds)
    for row in (0, 17, 399):
        ks = [k for k, (_, va) in enumerate(folds) if row in va]
        assert len(ks) == 2 and oof[row] == pytest.approx(np.mean(ks))
    assert validated_rows(repeated).all()


def test_a_trial_on_repeated_folds_scores_like_one_model_per_row():
    data, _, _, _ = trial_data("german_credit", "credit", "binary", "roc_auc")
    folds, _ = folds_for(data.y, "binary", 0, None, workers=2)
    repeated = TrialData(data.X, data.y, folds, "binary", 2, data.plan, data.metric, 0)
    result = run_trial(0, FAMILIES["linear"], {}, repeated, phase="portfolio",
                       deadline=time.monotonic() + 120)  # fmt: skip
    assert result.status == "ok" and len(result.fold_losses) == 8 and len(result.pipelines) == 8
    assert result.oof.shape == (1000, 2) and np.allclose(result.oof.sum(axis=1), 1)
    # the trial's loss is its averaged out-of-fold predictions' (ROC AUC about 0.78)
    assert result.loss == pytest.approx(data.metric.loss(data.y, result.oof))
    assert 0.7 < data.metric.to_score(result.loss) < 0.85


def test_tuning_stops_once_its_gains_are_inside_the_folds_noise():
    data, _, classes, contract = trial_data("german_credit", "credit", "binary", "roc_auc")
    budget = 90.0
    search, _ = run_search(data, budget, families=["linear"], classes=classes, contract=contract)
    tuned = [t for t in search.trials if t.phase == "tuning" and t.status != "cut"]
    assert len(tuned) >= PATIENCE
    # the search ended well inside its budget, and the reason is in its trials: the last
    # PATIENCE tuning trials did not beat the best before them by a quarter of a standard error
    assert search.seconds < budget / 2
    # (a second layer may follow the tuning: it reads the first layer, and is not tuning's)
    ok = [t for t in search.trials if t.status == "ok" and t.phase != "stacking"]
    best = min(ok, key=lambda t: t.loss)
    earlier = min(t.loss for t in ok if t.id < tuned[-PATIENCE].id)
    noise = np.std(best.fold_losses) / np.sqrt(len(best.fold_losses))
    assert earlier - best.loss < 0.25 * noise


def test_a_long_tailed_positive_target_is_also_tried_on_the_log_scale():
    data, df, _, contract = trial_data("diamonds", "price", "regression", "rmse", rows=3000)
    assert skewed_positive(data.y) and not skewed_positive(np.log(data.y))
    assert not skewed_positive(data.y - data.y.mean())  # negative values: never on the log scale
    search, model = run_search(data, 25, families=["lightgbm", "linear"], contract=contract)
    logged = [t for t in search.trials if t.params.get("target_transform") == "log1p"]
    assert {t.family for t in logged if t.phase == "portfolio"} == {"lightgbm", "linear"}
    # scored on the original scale like every other trial (predicting logarithms would miss
    # by about the prices themselves, an RMSE near 5,000): which scale wins is for the scores
    by = {(t.family, t.params.get("target_transform", "none")): t.loss
          for t in search.trials if t.phase == "portfolio" and t.status == "ok"}  # fmt: skip
    assert by[("lightgbm", "log1p")] < 1.5 * by[("lightgbm", "none")] < 1500
    # a member fitted on the log scale predicts prices, not their logarithms
    for member in model.members:
        for pipe in member.pipelines:
            if isinstance(pipe.named_steps["model"], LogTarget):
                assert np.median(pipe.predict(df[data.plan.columns].head(200))) > 100


def test_the_leading_boosted_configuration_is_given_time_to_converge():
    # a budget where the slower fit (three times a trial) is well inside a quarter of it
    data, _, classes, contract = trial_data("german_credit", "credit", "binary", "roc_auc",
                                            rows=700)  # fmt: skip
    search, _ = run_search(data, 60, families=["lightgbm"], classes=classes,
                           contract=contract)  # fmt: skip
    (slow,) = [t for t in search.trials if t.phase == CONVERGING]
    # the configuration that led when tuning ended, at a third of its learning rate, with room
    # for three times the rounds
    before = [t for t in search.trials if t.status == "ok" and t.id < slow.id
              and t.phase != "stacking"]  # fmt: skip
    lead = min(before, key=lambda t: t.loss)
    assert slow.status == "ok"
    assert slow.params["learning_rate"] == pytest.approx(lead.params["learning_rate"] / SLOWER)
    assert slow.params["n_estimators"] == SLOWER * MAX_ROUNDS
    assert {k: v for k, v in slow.params.items() if k not in ("learning_rate", "n_estimators")} == {
        k: v for k, v in lead.params.items() if k not in ("learning_rate", "n_estimators")
    }
    # a candidate like any other: the selection weighs it by its out-of-fold predictions
    assert np.isfinite(slow.loss) and len(slow.fold_losses) == len(data.folds)
    assert search.seconds <= 60 * 1.1
