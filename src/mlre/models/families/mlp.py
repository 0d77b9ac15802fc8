"""A multilayer perceptron (PyTorch, the optional ``deep`` extra): the network itself is
:class:`mlre.models.mlp.TabularMLP`."""

from __future__ import annotations

from typing import Any

from mlre.models.families.base import Family, Params
from mlre.spec import Task


def _build(task: Task, p: Params, seed: int) -> Any:
    from mlre.models.mlp import TabularMLP

    return TabularMLP(task=task, seed=seed, **p)


def _fit(est, X, y, X_val, y_val, deadline):
    return est.fit(X, y, X_val, y_val, deadline=deadline)


def _space(trial, task: Task) -> Params:
    return {
        "hidden": trial.suggest_categorical("hidden", [64, 128, 256]),
        "layers": trial.suggest_int("layers", 1, 3),
        "dropout": trial.suggest_float("dropout", 0.0, 0.4),
        "lr": trial.suggest_float("lr", 3e-4, 3e-3, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
    }


MLP = Family(
    name="mlp",
    style="trees",  # numbers and pandas categoricals: the network embeds the categories itself
    requires="torch",
    build=_build,
    space=_space,
    fit_early=_fit,
    portfolio=[{"hidden": 128, "layers": 2, "dropout": 0.1, "lr": 1e-3}],
    max_rows=500_000,
    cost=3.0,
)
