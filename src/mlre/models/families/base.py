"""What every model family is made of, and the settings they share: threads per model, folds at
once, the cap on boosting rounds. No family module is imported here; each imports this one."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.features.pipeline import Style
from mlre.spec import Task

Params = dict[str, Any]
#: Builds a family's estimator from the task, a configuration and a seed.
Builder = Callable[[Task, Params, int], Any]
#: Draws a configuration from an Optuna trial for the task.
Space = Callable[[Any, Task], Params]
#: Fits an estimator on training rows, stopping early on the validation rows and at the deadline.
EarlyFit = Callable[[Any, pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray, float], Any]

#: The rounds a fitted estimator kept (where early stopping ended it); None when it has none.
Rounds = Callable[[Any], "int | None"]
#: A configuration that fits exactly the given number of rounds, with no early stopping.
WithRounds = Callable[[Params, int], Params]

#: A configuration that learns ``factor`` times more slowly, with room for ``factor`` times the
#: rounds (None where the configuration has no learning rate to lower).
Slower = Callable[[Params, float], "Params | None"]

#: Boosting rounds at most; early stopping ends a fit well before.
MAX_ROUNDS = 3000
#: Rounds without improvement on the validation rows before a boosted fit stops.
EARLY_STOP = 50


def slowed(rounds_key: str) -> Slower:
    """The ``slower`` of a boosted family whose round cap is the parameter ``rounds_key``."""

    def slower(params: Params, factor: float) -> Params | None:
        rate = params.get("learning_rate")
        if not isinstance(rate, (int, float)) or rate <= 0:
            return None
        return params | {"learning_rate": rate / factor, rounds_key: int(MAX_ROUNDS * factor)}

    return slower


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
    build: Builder
    space: Space
    portfolio: list[Params] = field(default_factory=list)
    # how to fit with early stopping when validation rows are given; None: a plain fit
    fit_early: EarlyFit | None = None
    max_rows: int | None = None  # above this the family is too slow to be worth trying
    cost: float = 1.0  # time of a first trial relative to LightGBM's, before its own is known
    # False: the folds are fitted one after another, each model with every worker's threads
    fold_parallel: bool = True
    interpretable: bool = False  # a glass-box model a person can read whole
    # a boosted family's rounds: what early stopping kept, and a configuration fitting a set
    # number of them (a refit on every labelled row has no rows left to stop on)
    rounds: Rounds | None = None
    with_rounds: WithRounds | None = None
    # a boosted configuration at a lower learning rate with more rounds (the search's last
    # step for the configuration that leads, when time allows it to converge)
    slower: Slower | None = None

    @property
    def early_stopping(self) -> bool:
        """True when the family stops its fit early on validation rows."""
        return self.fit_early is not None

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
            if self.fit_early is None or X_val is None or y_val is None:
                return est.fit(X, y)
            return self.fit_early(est, X, y, X_val, y_val, deadline)
