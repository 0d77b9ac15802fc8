"""Linear models: ridge regression and logistic regression on standardised, one-hot columns."""

from __future__ import annotations

from typing import Any

from mlre.models.families.base import Family, Params
from mlre.spec import Task


def _build(task: Task, p: Params, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return Ridge(alpha=p.get("alpha", 1.0))
    return LogisticRegression(C=p.get("C", 1.0), max_iter=300, tol=1e-3)


def _space(trial, task: Task) -> Params:
    if task == "regression":
        return {"alpha": trial.suggest_float("alpha", 1e-3, 1e3, log=True)}
    return {"C": trial.suggest_float("C", 1e-3, 1e2, log=True)}


LINEAR = Family(
    name="linear",
    style="dense",
    requires="sklearn",
    build=_build,
    space=_space,
    portfolio=[{}],
    cost=0.5,
)
