"""Model families: how to build each estimator, its proven starting configurations and its
search space. Every estimator is scikit-learn compatible and takes the family's preprocessing.

The starting configurations follow the published defaults and zero-shot portfolios of AutoGluon
and FLAML and the TabRepo study (boosted trees first, a large-leaf LightGBM, extremely
randomised trees, then the rest); the code is ours.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.features.pipeline import Style

Params = dict[str, Any]
MAX_ROUNDS = 3000
EARLY_STOP = 50


def n_threads() -> int:
    """Threads per model: ``MLRE_THREADS``, else one.

    OpenMP libraries spin-wait for busy cores: with another process on a 2-core machine a
    2-thread LightGBM fit ran 4x slower than a 1-thread one, so one thread is the robust default.
    """
    return max(1, int(os.environ.get("MLRE_THREADS", "1")))


def n_workers() -> int:
    """Folds fitted at once: ``MLRE_WORKERS``, else one per core."""
    return max(1, int(os.environ.get("MLRE_WORKERS", os.cpu_count() or 1)))


@dataclass(frozen=True)
class Family:
    """One kind of model: construction, fitting with early stopping, defaults and search space."""

    name: str
    style: Style
    requires: str
    build: Callable[[str, Params, int], Any]
    space: Callable[[Any, str], Params]
    portfolio: list[Params] = field(default_factory=list)
    early_stopping: bool = False
    max_rows: int | None = None  # above this the family is too slow to be worth trying
    cost: float = 1.0  # time of a first trial relative to LightGBM's, before its own is known
    # False: the folds are fitted one after another, each model with every worker's threads
    fold_parallel: bool = True
    interpretable: bool = False  # a glass-box model a person can read whole

    def available(self) -> bool:
        """True when the library the family needs is installed."""
        return importlib.util.find_spec(self.requires) is not None

    def fit(
        self,
        est: Any,
        X: pd.DataFrame,
        y: np.ndarray,
        X_val: pd.DataFrame | None,
        y_val: np.ndarray | None,
        deadline: float,
    ) -> Any:
        """Fit ``est``; boosted trees stop early on the validation part and at the deadline."""
        from threadpoolctl import threadpool_limits

        # scikit-learn's OpenMP estimators (HistGradientBoosting) take no thread count: cap them
        # at n_threads() like the others, or they spin-wait for busy cores (80x slower seen)
        with threadpool_limits(limits=n_threads(), user_api="openmp"):
            if not self.early_stopping or X_val is None:
                return est.fit(X, y)
            return _FITTERS[self.name](est, X, y, X_val, y_val, deadline)


# --------------------------------------------------------------------------- LightGBM


def _lgbm_build(task: str, p: Params, seed: int) -> Any:
    import lightgbm as lgb

    cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    params = {
        "n_estimators": MAX_ROUNDS,
        "subsample_freq": 1,
        "verbose": -1,
        "n_jobs": n_threads(),
        "random_state": seed,
        "max_cat_to_onehot": 8,
    }
    return cls(**(params | p))


def _lgbm_fit(est, X, y, X_val, y_val, deadline):
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


def _lgbm_space(trial, task: str) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "extra_trees": trial.suggest_categorical("extra_trees", [False, True]),
    }


# --------------------------------------------------------------------------- XGBoost


def _xgb_build(task: str, p: Params, seed: int) -> Any:
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


def _xgb_fit(est, X, y, X_val, y_val, deadline):
    import xgboost as xgb

    class StopAtDeadline(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            return time.monotonic() > deadline

    est.set_params(callbacks=[StopAtDeadline()])
    est.fit(X, y, eval_set=[(X_val, y_val)], verbose=False)
    est.set_params(callbacks=None)  # callbacks hold a closure that cannot be pickled
    return est


def _xgb_space(trial, task: str) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


# --------------------------------------------------------------------------- CatBoost


def _cat_build(task: str, p: Params, seed: int) -> Any:
    from mlre.models.adapters import CatBoostModel

    # one fold at a time on all the search's threads: as fast as parallel folds of one thread
    # each, and CatBoost keeps working memory per thread that it never returns (on Adult,
    # 630 MB after two trials this way against 850 MB with two folds at once)
    threads = n_threads() * n_workers()
    return CatBoostModel(
        task=task, params={"iterations": MAX_ROUNDS, "thread_count": threads} | p, seed=seed
    )


def _cat_fit(est, X, y, X_val, y_val, deadline):
    class StopAtDeadline:
        def after_iteration(self, info) -> bool:  # CatBoost: return False to stop
            return time.monotonic() < deadline

    return est.fit(X, y, eval_set=(X_val, y_val), callbacks=[StopAtDeadline()])


def _cat_space(trial, task: str) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "depth": trial.suggest_int("depth", 4, 8),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 10.0, log=True),
        "max_ctr_complexity": trial.suggest_int("max_ctr_complexity", 1, 2),
    }


# --------------------------------------------------------------------------- scikit-learn


def _hgb_build(task: str, p: Params, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    params = {
        "max_iter": 1000,
        "early_stopping": True,
        "validation_fraction": 0.1,
        "n_iter_no_change": 30,
        "categorical_features": "from_dtype",
        "random_state": seed,
    }
    return cls(**(params | p))


def _hgb_space(trial, task: str) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-4, 10.0, log=True),
    }


def _forest_build(kind: str) -> Callable[[str, Params, int], Any]:
    def build(task: str, p: Params, seed: int) -> Any:
        from sklearn import ensemble
        from sklearn.pipeline import make_pipeline

        from mlre.models.adapters import CategoryCodes

        name = {"rf": "RandomForest", "et": "ExtraTrees"}[kind]
        cls = getattr(ensemble, name + ("Regressor" if task == "regression" else "Classifier"))
        # 150 trees, and leaves of a few rows in the portfolio: fully grown trees take memory in
        # proportion to the rows (about 1.2 MB a tree per fold on Adult's 26,000 rows with
        # one-row leaves), and 300 gain little over 150 in an ensemble
        # and at most 2,048 leaves a tree: on Diamonds' 32,000-row folds unbounded regression
        # trees held 3 GB and took 6 s to predict the holdout
        params = {
            "n_estimators": 150,
            "max_leaf_nodes": 2048,
            "n_jobs": n_threads(),
            "random_state": seed,
        }
        return make_pipeline(CategoryCodes(), cls(**(params | p)))

    return build


def _forest_space(trial, task: str) -> Params:
    return {
        "max_features": trial.suggest_float("max_features", 0.1, 1.0),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
    }


def _linear_build(task: str, p: Params, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return Ridge(alpha=p.get("alpha", 1.0))
    return LogisticRegression(C=p.get("C", 1.0), max_iter=300, tol=1e-3)


def _linear_space(trial, task: str) -> Params:
    if task == "regression":
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}
    return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}


def _knn_build(task: str, p: Params, seed: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = KNeighborsRegressor if task == "regression" else KNeighborsClassifier
    return cls(
        n_neighbors=p.get("n_neighbors", 15),
        weights=p.get("weights", "distance"),
        n_jobs=n_threads(),
    )


def _knn_space(trial, task: str) -> Params:
    return {
        "n_neighbors": trial.suggest_int("n_neighbors", 3, 100, log=True),
        "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
    }


def _mlp_build(task: str, p: Params, seed: int) -> Any:
    from mlre.models.mlp import TabularMLP

    return TabularMLP(task=task, seed=seed, **p)


def _mlp_fit(est, X, y, X_val, y_val, deadline):
    return est.fit(X, y, X_val, y_val, deadline=deadline)


def _mlp_space(trial, task: str) -> Params:
    return {
        "hidden": trial.suggest_categorical("hidden", [64, 128, 256]),
        "layers": trial.suggest_int("layers", 1, 3),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "lr": trial.suggest_float("lr", 3e-4, 3e-3, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
    }


_FITTERS = {
    "lightgbm": _lgbm_fit,
    "xgboost": _xgb_fit,
    "catboost": _cat_fit,
    "mlp": _mlp_fit,
}

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family(
            "lightgbm",
            "trees",
            "lightgbm",
            _lgbm_build,
            _lgbm_space,
            early_stopping=True,
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
        ),
        Family(
            "catboost",
            "trees",
            "catboost",
            _cat_build,
            _cat_space,
            early_stopping=True,
            # max_ctr_complexity 1 (no combinations of categorical columns) fits 4x faster than
            # CatBoost's default of 4 on Adult's 8 categorical columns, for the same ROC AUC.
            # Depth 7, not 8, in the second: CatBoost's working memory nearly doubles with each
            # level and stays resident after the fit (a trial of depth 8 with pairs of
            # categorical columns added 200 MB on German credit and Telco churn, depth 7 about
            # 110 MB), and on seven tables depth 7 scored better out of fold on five, in two
            # thirds of the time.
            portfolio=[
                {"learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0, "max_ctr_complexity": 1},
                {"learning_rate": 0.05, "depth": 7, "l2_leaf_reg": 5.0, "max_ctr_complexity": 2},
            ],
            max_rows=300_000,
            cost=4.0,
            fold_parallel=False,
        ),
        Family(
            "xgboost",
            "trees",
            "xgboost",
            _xgb_build,
            _xgb_space,
            early_stopping=True,
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
        ),
        Family(
            "extra_trees",
            "trees",
            "sklearn",
            _forest_build("et"),
            _forest_space,
            portfolio=[
                {"max_features": 0.5, "min_samples_leaf": 3},
            ],
            max_rows=500_000,
            cost=2.0,
        ),
        Family(
            "hist_gb",
            "trees",
            "sklearn",
            _hgb_build,
            _hgb_space,
            portfolio=[
                {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20},
            ],
            cost=1.0,
        ),
        Family(
            "random_forest",
            "trees",
            "sklearn",
            _forest_build("rf"),
            _forest_space,
            portfolio=[
                {"max_features": "sqrt", "min_samples_leaf": 2},
            ],
            max_rows=500_000,
            cost=2.0,
        ),
        Family(
            "linear", "dense", "sklearn", _linear_build, _linear_space, portfolio=[{}], cost=0.5
        ),
        Family(
            "knn",
            "dense",
            "sklearn",
            _knn_build,
            _knn_space,
            portfolio=[
                {"n_neighbors": 15, "weights": "distance"},
            ],
            max_rows=100_000,
            cost=1.0,
        ),
        Family(
            "mlp",
            "trees",  # numbers and pandas categoricals: the network embeds the categories itself
            "torch",
            _mlp_build,
            _mlp_space,
            early_stopping=True,
            portfolio=[{"hidden": 128, "layers": 2, "dropout": 0.1, "lr": 1e-3}],
            max_rows=500_000,
            cost=3.0,
        ),
    ]
}

#: The order in which the portfolio is tried: strong and cheap first.
PORTFOLIO_ORDER: list[tuple[str, int]] = [
    ("lightgbm", 0),
    ("linear", 0),
    ("xgboost", 0),
    ("lightgbm", 1),
    ("catboost", 0),
    ("extra_trees", 0),
    ("hist_gb", 0),
    ("lightgbm", 2),
    ("random_forest", 0),
    ("knn", 0),
    ("xgboost", 1),
    ("mlp", 0),
    ("lightgbm", 3),
    ("catboost", 1),
]


def _register_glass_box() -> None:
    from mlre.models.glassbox import FITTERS, GLASS_BOX

    FAMILIES.update({f.name: f for f in GLASS_BOX})
    _FITTERS.update(FITTERS)


_register_glass_box()


def available_families(names: list[str] | None = None) -> list[Family]:
    """The families whose libraries are installed (optionally only those named)."""
    chosen = [FAMILIES[n] for n in (names or FAMILIES)]
    return [f for f in chosen if f.available()]
