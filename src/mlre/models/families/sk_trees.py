"""scikit-learn's tree ensembles: histogram gradient boosting, extremely randomised trees and
random forests."""

from __future__ import annotations

from typing import Any

from mlre.models.families.base import Builder, Family, Params, n_threads
from mlre.spec import Task


def _hgb_build(task: Task, p: Params, seed: int) -> Any:
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


def _hgb_space(trial, task: Task) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 100, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-4, 10.0, log=True),
    }


def _forest_build(kind: str) -> Builder:
    def build(task: Task, p: Params, seed: int) -> Any:
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


def _forest_space(trial, task: Task) -> Params:
    return {
        "max_features": trial.suggest_float("max_features", 0.1, 1.0),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
    }


HIST_GB = Family(
    name="hist_gb",
    style="trees",
    requires="sklearn",
    build=_hgb_build,
    space=_hgb_space,
    portfolio=[
        {"learning_rate": 0.1, "max_leaf_nodes": 31, "min_samples_leaf": 20},
    ],
    cost=1.0,
)

EXTRA_TREES = Family(
    name="extra_trees",
    style="trees",
    requires="sklearn",
    build=_forest_build("et"),
    space=_forest_space,
    portfolio=[
        {"max_features": 0.5, "min_samples_leaf": 3},
    ],
    max_rows=500_000,
    cost=2.0,
)

RANDOM_FOREST = Family(
    name="random_forest",
    style="trees",
    requires="sklearn",
    build=_forest_build("rf"),
    space=_forest_space,
    portfolio=[
        {"max_features": "sqrt", "min_samples_leaf": 2},
    ],
    max_rows=500_000,
    cost=2.0,
)
