"""XGBoost: gradient-boosted trees grown level by level on histograms."""

from __future__ import annotations

import time
from typing import Any

from mlre.models.families.base import EARLY_STOP, MAX_ROUNDS, Family, Params, n_threads, slowed
from mlre.spec import Task


def _build(task: Task, p: Params, seed: int) -> Any:
    import xgboost as xgb

    cls = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
    params = {
        "n_estimators": MAX_ROUNDS,
        "tree_method": "hist",
        "enable_categorical": True,
        "max_cat_to_onehot": 8,
        "n_jobs": n_threads(),
        "random_state": seed,
        "early_stopping_rounds": EARLY_STOP,
    }
    return cls(**(params | p))


def _fit(est, X, y, X_val, y_val, deadline):
    import xgboost as xgb

    class StopAtDeadline(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            return time.monotonic() > deadline

    est.set_params(callbacks=[StopAtDeadline()])
    est.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
    est.set_params(callbacks=None)  # callbacks hold a closure that cannot be pickled
    return est


def _rounds(est: Any) -> int | None:
    try:
        return int(est.best_iteration) + 1
    except AttributeError:  # fitted with no early stopping
        return int(est.get_booster().num_boosted_rounds()) or None


def _space(trial, task: Task) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


XGBOOST = Family(
    name="xgboost",
    style="trees",
    requires="xgboost",
    build=_build,
    space=_space,
    fit_early=_fit,
    rounds=_rounds,
    with_rounds=lambda p, n: p | {"n_estimators": n, "early_stopping_rounds": None},
    slower=slowed("n_estimators"),
    portfolio=[
        {"learning_rate": 0.1, "max_depth": 6, "min_child_weight": 1.0},
        {
            "learning_rate": 0.05,
            "max_depth": 8,
            "min_child_weight": 3.0,
            "colsample_bytree": 0.7,
            "subsample": 0.8,
        },
    ],
    cost=1.2,
)
