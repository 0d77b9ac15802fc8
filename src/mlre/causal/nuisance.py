"""Nuisance models of effect estimation, from mlre's model zoo, cross-fitted: the propensity
e(x) = P(treated | x) and the outcome means mu0(x), mu1(x) of the untreated and the treated,
each predicted for a row by models that never saw it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.metaestimators import available_if

from mlre.data.profile import ColumnProfile
from mlre.data.roles import Role
from mlre.features.pipeline import FeaturePlan
from mlre.spec import Task

#: Propensities are kept this far from 0 and 1 so that no weight is infinite.
CLIP = 1e-3

#: Zoo families tried for each nuisance model when the user names none.
DEFAULT_FAMILIES = ("linear", "lightgbm")


def plan_for(columns: list[str], profiles: dict[str, ColumnProfile]) -> FeaturePlan:
    """How the adjustment columns are prepared, by their roles."""
    plan = FeaturePlan()
    for c in columns:
        role = profiles[c].role
        if role is Role.NUMERIC:
            plan.numeric.append(c)
        elif role is Role.BOOLEAN:
            plan.boolean.append(c)
        elif role is Role.DATETIME:
            plan.datetime.append(c)
        else:
            plan.categorical.append(c)
    return plan


class ZooModel(BaseEstimator):
    """A zoo family (first portfolio configuration) as a scikit-learn estimator on raw rows;
    boosted trees stop early on a tenth of the rows. Arrays get columns x0, x1, ... (numeric)."""

    def __init__(
        self,
        family: str = "lightgbm",
        task: Task = "regression",
        plan: FeaturePlan | None = None,
        seed: int = 0,
    ):
        self.family, self.task, self.plan, self.seed = family, task, plan, seed

    @property
    def _estimator_type(self) -> str:
        return "regressor" if self.task == "regression" else "classifier"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, RegressorTags

        tags = super().__sklearn_tags__()
        tags.estimator_type = self._estimator_type
        if self.task == "regression":
            tags.regressor_tags = RegressorTags()
        else:
            tags.classifier_tags = ClassifierTags()
        return tags

    def _frame(self, X: Any) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X
        X = np.asarray(X, dtype=float)
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])

    def fit(self, X: Any, y: Any, **_: Any) -> ZooModel:
        from mlre.evaluate.ideas import default_params
        from mlre.search.trial import fit_family_stopped

        frame = self._frame(X)
        plan = self.plan or FeaturePlan(numeric=list(frame.columns))
        y = np.asarray(y).ravel()
        if self.task != "regression":
            self.classes_, y = np.unique(y, return_inverse=True)
        self.pipeline_ = fit_family_stopped(
            self.family, default_params(self.family), plan, self.task, frame, y, self.seed
        )
        return self

    @available_if(lambda self: self.task != "regression")
    def predict_proba(self, X: Any) -> np.ndarray:
        return np.asarray(self.pipeline_.predict_proba(self._frame(X)), dtype=float)

    def predict(self, X: Any) -> np.ndarray:
        if self.task == "regression":
            return np.asarray(self.pipeline_.predict(self._frame(X)), dtype=float).ravel()
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


@dataclass
class Nuisance:
    """Cross-fitted nuisance predictions for every row, and which family made each."""

    e: np.ndarray
    mu0: np.ndarray
    mu1: np.ndarray
    families: dict[str, str]
    losses: dict[str, dict[str, float]] = field(default_factory=dict)
    folds: int = 5

    def clipped_e(self) -> np.ndarray:
        """The propensity kept inside [CLIP, 1 - CLIP]."""
        return np.clip(self.e, CLIP, 1 - CLIP)


Step = Callable[[str], None]


def cross_fit(
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    plan: FeaturePlan,
    families: tuple[str, ...] | list[str] | dict[str, str] = DEFAULT_FAMILIES,
    *,
    folds: int = 5,
    seed: int = 0,
    step: Step | None = None,
) -> Nuisance:
    """Propensity and outcome models fitted on k-1 folds and predicting the k-th. Given a list
    of families, each is fitted for every nuisance and the one with the lowest out-of-fold loss
    (log loss for the propensity, squared error for the outcome means) is kept; given a family
    per nuisance (``{"e": ..., "mu0": ..., "mu1": ...}``), only those are fitted."""
    keys = ("e", "mu0", "mu1")
    if isinstance(families, dict):
        wanted = {
            f: [k for k in keys if families[k] == f] for f in dict.fromkeys(families.values())
        }
    else:
        wanted = {f: list(keys) for f in families}
    n = len(t)
    smallest = int(min(t.sum(), n - t.sum()))
    k = max(2, min(folds, smallest))
    splits = list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), t))
    preds = {f: {key: np.zeros(n) for key in ks} for f, ks in wanted.items()}
    for i, (train, test) in enumerate(splits):
        for f, ks in wanted.items():
            if not plan.columns:  # nothing to adjust for: the means of the training folds
                tr, ty = t[train], y[train]
                means = {"e": tr.mean(), "mu0": ty[tr == 0].mean(), "mu1": ty[tr == 1].mean()}
                for key in ks:
                    preds[f][key][test] = means[key]
                continue
            if step is not None:
                step(f"nuisance models: {f}, fold {i + 1} of {k}")
            _fit_fold(f, ks, X, t, y, plan, train, test, preds[f], seed + i)
    losses: dict[str, dict[str, float]] = {key: {} for key in keys}
    for f, ks in wanted.items():
        if "e" in ks:
            p = np.clip(preds[f]["e"], CLIP, 1 - CLIP)
            losses["e"][f] = float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)))
        for key, arm in (("mu0", 0), ("mu1", 1)):
            if key in ks:
                losses[key][f] = float(np.mean((y - preds[f][key])[t == arm] ** 2))
    chosen = {key: min(losses[key], key=losses[key].__getitem__) for key in keys}
    return Nuisance(
        e=preds[chosen["e"]]["e"],
        mu0=preds[chosen["mu0"]]["mu0"],
        mu1=preds[chosen["mu1"]]["mu1"],
        families=chosen,
        losses=losses,
        folds=k,
    )


def _fit_fold(
    family: str,
    keys: list[str],
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    plan: FeaturePlan,
    train: np.ndarray,
    test: np.ndarray,
    out: dict[str, np.ndarray],
    seed: int,
) -> None:
    X_test = X.iloc[test]
    if "e" in keys:
        propensity = ZooModel(family, "binary", plan, seed).fit(X.iloc[train], t[train])
        proba = propensity.predict_proba(X_test)
        out["e"][test] = proba[:, list(propensity.classes_).index(1)]
    for arm, key in ((0, "mu0"), (1, "mu1")):
        if key in keys:
            rows = train[t[train] == arm]
            model = ZooModel(family, "regression", plan, seed).fit(X.iloc[rows], y[rows])
            out[key][test] = model.predict(X_test)
