"""Thin scikit-learn adapters for libraries that need their inputs in a particular form."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlre.models.families.base import n_threads
from mlre.spec import Task


class CategoryCodes(TransformerMixin, BaseEstimator):
    """Categorical columns as integer codes (missing stays missing), for estimators without
    native categories such as random forests."""

    def fit(self, X: pd.DataFrame, y=None) -> CategoryCodes:
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        for c in out.columns:
            if isinstance(out[c].dtype, pd.CategoricalDtype):
                codes = out[c].cat.codes.astype("float64")
                out[c] = codes.where(codes >= 0, np.nan)
        return out


#: Up to this many training rows CatBoost's allocator returns freed memory at once.
PURGE_AT_ONCE_ROWS = 20_000


def _prepare_catboost(rows: int) -> None:
    """Before CatBoost is first imported: on a small table, have its bundled allocator
    (mimalloc) give freed memory back at once instead of after a delay that, once a fit is over,
    never comes. A fit then leaves 20-30 MB behind instead of 70-90 MB (a 5,600-row table, depth
    6-7), for fits 15-30% slower; on small tables fits take seconds and the memory is most of
    what a run adds. A value the user set is kept, and a process that imported CatBoost already
    keeps its allocator as it is."""
    if "catboost" not in sys.modules and rows <= PURGE_AT_ONCE_ROWS:
        os.environ.setdefault("MIMALLOC_PURGE_DELAY", "0")


class CatBoostModel(BaseEstimator):
    """CatBoost with pandas categoricals passed as its own categorical features."""

    def __init__(self, task: Task = "binary", params: dict | None = None, seed: int = 0):
        self.task = task
        self.params = params
        self.seed = seed

    def _frame(self, X: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        if not cats:
            return X, cats
        X = X.copy()
        for c in cats:
            # CatBoost refuses missing categorical values; pandas 3's astype(str) keeps them
            # missing (pandas 2 wrote 'nan'), so they become the level 'nan' explicitly
            X[c] = X[c].astype(str).fillna("nan")
        return X, cats

    def fit(self, X: pd.DataFrame, y: np.ndarray, eval_set=None, callbacks=None) -> CatBoostModel:
        _prepare_catboost(len(X))
        from catboost import CatBoostClassifier, CatBoostRegressor

        params = dict(self.params or {})
        cls = CatBoostRegressor if self.task == "regression" else CatBoostClassifier
        if self.task == "multiclass":
            params.setdefault("loss_function", "MultiClass")
        Xf, cats = self._frame(X)
        params.setdefault("thread_count", n_threads())
        self.model_ = cls(**params, random_seed=self.seed, verbose=False, allow_writing_files=False)
        fit_kw: dict = {"cat_features": cats, "callbacks": callbacks}
        if eval_set is not None:
            fit_kw["eval_set"] = (self._frame(eval_set[0])[0], eval_set[1])
            fit_kw["early_stopping_rounds"] = 50
        self.model_.fit(Xf, y, **fit_kw)
        if self.task != "regression":
            self.classes_ = np.asarray(self.model_.classes_)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.model_.predict(self._frame(X)[0])).ravel()

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.model_.predict_proba(self._frame(X)[0])
