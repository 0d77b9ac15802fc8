"""Glass-box families, searched when the spec asks for an interpretable model: a sparse linear
model, a shallow decision tree and an explainable boosting machine (the ``interpret`` package).

Each is a model a person can read whole: coefficients, a tree of a few levels, one shape
function per column. :func:`mlre.models.glassbox.describe` turns a fitted one into that
readable form.
"""

from __future__ import annotations

import time
from typing import Any

from mlre.models.families.base import Family, Params, n_threads
from mlre.spec import Task


def _sparse_linear_build(task: Task, p: Params, seed: int) -> Any:
    from sklearn.linear_model import Lasso, LogisticRegression

    if task == "regression":
        return Lasso(alpha=p.get("alpha", 0.01), max_iter=5000, random_state=seed)
    # an L1 penalty sets the weights of unhelpful columns to exactly zero
    return LogisticRegression(
        C=p.get("C", 0.1), l1_ratio=1.0, solver="saga", max_iter=2000, tol=1e-3, random_state=seed
    )


def _sparse_linear_space(trial, task: Task) -> Params:
    if task == "regression":
        return {"alpha": trial.suggest_float("alpha", 1e-4, 10.0, log=True)}
    return {"C": trial.suggest_float("C", 1e-3, 10.0, log=True)}


def _tree_build(task: Task, p: Params, seed: int) -> Any:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cls = DecisionTreeRegressor if task == "regression" else DecisionTreeClassifier
    return cls(
        max_depth=p.get("max_depth", 3),
        min_samples_leaf=p.get("min_samples_leaf", 20),
        random_state=seed,
    )


def _tree_space(trial, task: Task) -> Params:
    return {
        "max_depth": trial.suggest_int("max_depth", 2, 4),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 200, log=True),
    }


def _ebm_build(task: Task, p: Params, seed: int) -> Any:
    from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor

    cls = ExplainableBoostingRegressor if task == "regression" else ExplainableBoostingClassifier
    params = {
        "interactions": 0,
        "outer_bags": 4,  # the package's 14 bags cost 3.5x the time for little gain at our budgets
        "max_rounds": 2000,
        "n_jobs": n_threads(),
        "random_state": seed,
    }
    return cls(**(params | p))


def _ebm_fit(est, X, y, X_val, y_val, deadline):
    # the EBM keeps its own validation part for early stopping; the deadline stops its rounds
    est.set_params(callback=lambda *_: time.monotonic() > deadline)
    est.fit(X, y)
    est.set_params(callback=None)  # a closure would not pickle
    return est


def _ebm_space(trial, task: Task) -> Params:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.005, 0.1, log=True),
        "interactions": trial.suggest_int("interactions", 0, 5),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 20, log=True),
    }


SPARSE_LINEAR = Family(
    name="sparse_linear",
    style="dense",
    requires="sklearn",
    build=_sparse_linear_build,
    space=_sparse_linear_space,
    portfolio=[{"C": 0.1, "alpha": 0.01}, {"C": 1.0, "alpha": 0.1}],
    cost=0.5,
    interpretable=True,
)

SHALLOW_TREE = Family(
    name="shallow_tree",
    style="plain",
    requires="sklearn",
    build=_tree_build,
    space=_tree_space,
    portfolio=[
        {"max_depth": 3, "min_samples_leaf": 20},
        {"max_depth": 4, "min_samples_leaf": 50},
    ],
    cost=0.3,
    interpretable=True,
)

EBM = Family(
    name="ebm",
    style="trees",
    requires="interpret",
    build=_ebm_build,
    space=_ebm_space,
    fit_early=_ebm_fit,
    portfolio=[{"interactions": 0}],
    max_rows=300_000,
    cost=4.0,
    interpretable=True,
    # interpret runs its bags through joblib worker processes: one fit at a time, never
    # from several of the search's threads at once
    fold_parallel=False,
)

#: The glass-box families, cheapest first.
GLASS_BOX: tuple[Family, ...] = (SPARSE_LINEAR, SHALLOW_TREE, EBM)
