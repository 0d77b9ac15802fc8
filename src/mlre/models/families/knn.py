"""k nearest neighbours on standardised, one-hot columns."""

from __future__ import annotations

from typing import Any

from mlre.models.families.base import Family, Params, n_threads
from mlre.spec import Task


def _build(task: Task, p: Params, seed: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = KNeighborsRegressor if task == "regression" else KNeighborsClassifier
    return cls(
        n_neighbors=p.get("n_neighbors", 15),
        weights=p.get("weights", "distance"),
        n_jobs=n_threads(),
    )


def _space(trial, task: Task) -> Params:
    return {
        "n_neighbors": trial.suggest_int("n_neighbors", 3, 100, log=True),
        "weights": trial.suggest_categorical("weights", ["uniform", "distance"]),
    }


KNN = Family(
    name="knn",
    style="dense",
    requires="sklearn",
    build=_build,
    space=_space,
    portfolio=[
        {"n_neighbors": 15, "weights": "distance"},
    ],
    max_rows=100_000,
    cost=1.0,
)
