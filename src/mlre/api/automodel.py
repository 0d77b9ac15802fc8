"""``mlre.AutoModel``: the whole search as one scikit-learn estimator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator


class AutoModel(BaseEstimator):
    """Find the best honest model for ``X, y`` within ``time_budget`` seconds.

    ``fit`` audits the data, holds out ``holdout`` of the rows for an honest score
    (``result_.holdout``), searches, ensembles, and keeps the final model. Nothing is written to
    disk unless ``track=True``.
    """

    def __init__(
        self,
        time_budget: float = 60,
        metric: str | None = None,
        task: str | None = None,
        seed: int = 0,
        holdout: float = 0.2,
        families: list[str] | None = None,
        force: bool = False,
        track: bool = False,
    ) -> None:
        self.time_budget = time_budget
        self.metric = metric
        self.task = task
        self.seed = seed
        self.holdout = holdout
        self.families = families
        self.force = force
        self.track = track

    def fit(self, X: pd.DataFrame | np.ndarray, y: Any) -> AutoModel:
        """Search for the best model of ``y`` given ``X``."""
        from mlre.api.run import run
        from mlre.spec import Spec

        frame = (
            X.copy()
            if isinstance(X, pd.DataFrame)
            else pd.DataFrame(
                np.asarray(X), columns=[f"x{i}" for i in range(np.asarray(X).shape[1])]
            )
        )
        name = getattr(y, "name", None) or "target"
        while name in frame.columns:
            name = f"_{name}"
        frame[name] = np.asarray(y)
        self.result_ = run(
            frame,
            spec=Spec(),
            target=name,
            time_budget=self.time_budget,
            metric=self.metric,
            task=self.task,
            seed=self.seed,
            holdout=self.holdout,
            families=self.families,
            force=self.force,
            track=self.track,
        )
        self.model_ = self.result_.model
        self.feature_names_in_ = np.asarray(
            [str(c) for c in frame.columns if c != name], dtype=object
        )
        if self.model_.task != "regression":
            self.classes_ = self.model_.classes_
        return self

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        return pd.DataFrame(np.asarray(X), columns=self.feature_names_in_)

    def predict(self, X: Any) -> np.ndarray:
        """Labels (classification) or values (regression)."""
        return self.model_.predict(self._frame(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities in the order of ``classes_``."""
        return self.model_.predict_proba(self._frame(X))
