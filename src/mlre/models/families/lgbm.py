"""LightGBM: gradient-boosted trees, the portfolio's first and most tried family."""

from __future__ import annotations

import time
from typing import Any

from mlre.models.families.base import EARLY_STOP, MAX_ROUNDS, Family, Params, n_threads, slowed
from mlre.spec import Task


def _build(task: Task, p: Params, seed: int) -> Any:
    import lightgbm as lgb

    cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    params: Params = {
        "n_estimators": MAX_ROUNDS,
        "subsample_freq": 1,
        "verbose": -1,
        "n_jobs": n_threads(),
        "random_state": seed,
        "max_cat_to_onehot": 8,
    }
    return cls(**(params | p))


def _fit(est, X, y, X_val, y_val, deadline):
    import lightgbm as lgb

    def stop_at_deadline(env):
        if time.monotonic() > deadline:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    return est.fit(
        X,
        y,
        eval_X=(X_val,),
        eval_y=(y_val,),
        callbacks=[lgb.early_stopping(EARLY_STOP, verbose=False), stop_at_deadline],
    )


def _rounds(est: Any) -> int | None:
    best = getattr(est, "best_iteration_", None)
    return int(best) if best else int(getattr(est, "n_estimators_", 0)) or None


def _space(trial, task: Task) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "extra_trees": trial.suggest_categorical("extra_trees", [False, True]),
    }


LIGHTGBM = Family(
    name="lightgbm",
    style="trees",
    requires="lightgbm",
    build=_build,
    space=_space,
    fit_early=_fit,
    rounds=_rounds,
    with_rounds=lambda p, n: p | {"n_estimators": n},
    slower=slowed("n_estimators"),
    # the default, a large-leaf one, extremely randomised trees, then a slow regularised one
    portfolio=[
        {
            "learning_rate": 0.05,
            "num_leaves": 31,
            "min_child_samples": 20,
            "colsample_bytree": 0.9,
            "subsample": 0.8,
        },
        {
            "learning_rate": 0.03,
            "num_leaves": 128,
            "min_child_samples": 3,
            "colsample_bytree": 0.9,
            "subsample": 1.0,
        },
        {
            "learning_rate": 0.05,
            "num_leaves": 32,
            "min_child_samples": 20,
            "colsample_bytree": 0.7,
            "subsample": 1.0,
            "extra_trees": True,
        },
        {
            "learning_rate": 0.02,
            "num_leaves": 15,
            "min_child_samples": 50,
            "colsample_bytree": 0.5,
            "subsample": 0.7,
            "reg_lambda": 5.0,
        },
    ],
)
