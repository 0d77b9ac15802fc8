"""The model mlre registers and serves: preprocessing and estimators in one scikit-learn object."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from mlre.data.contract import DataContract
from mlre.spec import Task

if TYPE_CHECKING:
    from mlre.models.compiled import CompiledPipeline


@dataclass
class Member:
    """One configuration in the final model: its fitted pipelines (one per fold, averaged) and
    weight. A ``stacked`` member reads the level-one columns beside the table's own."""

    family: str
    params: dict[str, Any]
    weight: float
    pipelines: list[Any] = field(default_factory=list)
    stacked: bool = False


#: The name of the level-one columns a stacked member reads: the prediction of the level-one
#: blend (one column for a regression or binary model, one per class otherwise).
LEVEL_ONE = "__mlre_level_one_"


def level_one_names(task: Task, n_classes: int) -> list[str]:
    """The level-one columns a stacked member of a ``task`` model reads."""
    width = n_classes if task == "multiclass" else 1
    return [f"{LEVEL_ONE}{j}" for j in range(width)]


def with_level_one(X: pd.DataFrame, blend: np.ndarray, task: Task) -> pd.DataFrame:
    """``X`` with the level-one columns of ``blend`` (values, or probabilities per class) added."""
    if task == "regression":
        columns = [np.asarray(blend, dtype=float)]
    elif task == "binary":
        columns = [np.asarray(blend, dtype=float)[:, 1]]
    else:
        columns = list(np.asarray(blend, dtype=float).T)
    names = level_one_names(task, 0 if task == "regression" else np.shape(blend)[1])
    added = pd.DataFrame(dict(zip(names, columns, strict=True)), index=X.index)
    return pd.concat([X, added], axis=1)


def align_proba(proba: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over all classes, when a fitted estimator saw only some of them."""
    if proba.shape[1] == n_classes:
        return proba
    full = np.zeros((proba.shape[0], n_classes))
    full[:, np.asarray(seen, dtype=int)] = proba
    return full


def member_predict(pipeline: Any, X: pd.DataFrame, task: Task, n_classes: int) -> np.ndarray:
    """Probabilities (classification) or values (regression) of one fitted pipeline."""
    if task == "regression":
        return np.asarray(pipeline.predict(X), dtype=float).ravel()
    proba = np.asarray(pipeline.predict_proba(X), dtype=float)
    return align_proba(proba, pipeline.classes_, n_classes)


#: From this many rows on, the pipelines predict in parallel threads.
PARALLEL_ROWS = 2_000


_controller: Any = None
_controller_lock = threading.Lock()


def _threadpools() -> Any:
    """One ThreadpoolController for the process: building one scans every loaded library
    (about 6 ms), which a one-row prediction of an ensemble would otherwise pay per pipeline."""
    global _controller
    with _controller_lock:
        if _controller is None:
            from threadpoolctl import ThreadpoolController

            _controller = ThreadpoolController()
        return _controller


def _limited_predict(pipeline: Any, X: pd.DataFrame, task: Task, n_classes: int) -> np.ndarray:
    from mlre.models.families.base import n_threads

    # OpenMP estimators (HistGradientBoosting) would otherwise spin on every core; the limit
    # holds for the calling thread only, so it is set in the thread that predicts
    with _threadpools().limit(limits=n_threads(), user_api="openmp"):
        return member_predict(pipeline, X, task, n_classes)


class MlreModel(BaseEstimator):
    """A weighted ensemble of bagged pipelines, raw table in, predictions out.

    Classification predicts the original labels and ``predict_proba`` gives one column per class
    in the order of ``classes_``.
    """

    def __init__(
        self,
        task: Task,
        members: list[Member],
        classes: np.ndarray | None,
        contract: DataContract,
        metric: str,
        level_one: list[float] | None = None,
    ) -> None:
        self.task = task
        self.members = members
        self.classes = classes
        self.contract = contract
        self.metric = metric
        # a stacked model: the weights, member by member, of the blend its stacked members read
        self.level_one = level_one

    @property
    def classes_(self) -> np.ndarray:
        """The class labels, in the order of the probability columns."""
        if self.classes is None:
            raise AttributeError("a regression model has no classes")
        return self.classes

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The input columns the model reads."""
        return np.asarray([c.name for c in self.contract.features], dtype=object)

    def fit(self, X: Any, y: Any = None) -> MlreModel:
        """The model is fitted by the search; use ``mlre.AutoModel`` to fit a new one."""
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("compiled_", None)  # rebuilt from the pipelines on first use
        state.pop("level_one_oof", None)  # what a refit needs, in memory only
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("level_one", None)  # models saved before stacking
        super().__setstate__(state)

    def _compiled(self) -> list[CompiledPipeline | None]:
        """Each pipeline's compiled form (None where it has none), built once."""
        compiled = self.__dict__.get("compiled_")
        if compiled is None:
            from mlre.models.compiled import compile_pipeline

            compiled = self.compiled_ = [
                compile_pipeline(p, self.task) for m in self.members for p in m.pipelines
            ]
        return compiled

    def _means(self, X: pd.DataFrame, stacked: bool) -> dict[int, np.ndarray]:
        """Member by member (position in ``members``), the mean of its pipelines' predictions;
        the stacked members' (``X`` then holds the level-one columns) or the others'."""
        n_classes = 0 if self.classes is None else len(self.classes)
        compiled_all = self._compiled()
        jobs, compiled, owner = [], [], []
        at = 0
        for i, m in enumerate(self.members):
            for p in m.pipelines:
                if m.stacked == stacked:
                    jobs.append(p)
                    compiled.append(compiled_all[at])
                    owner.append(i)
                at += 1
        coerced: dict[tuple, dict[str, np.ndarray]] = {}
        matrices: dict[tuple, np.ndarray] = {}
        for c in compiled:  # one coercion of the table, one matrix per distinct column plan
            if c is not None and c.matrix_key not in matrices:
                if c.coercer_key not in coerced:
                    coerced[c.coercer_key] = c.coerce(X)
                matrices[c.matrix_key] = c.matrix(coerced[c.coercer_key])

        def one(i: int) -> np.ndarray:
            c, pipeline = compiled[i], jobs[i]
            if c is None:
                return _limited_predict(pipeline, X, self.task, n_classes)
            out = c.predict_matrix(matrices[c.matrix_key])
            return (
                out if self.task == "regression" else align_proba(out, pipeline.classes_, n_classes)
            )

        if len(X) >= PARALLEL_ROWS and len(jobs) > 1:
            from joblib import Parallel, delayed

            from mlre.models.families.base import n_workers

            preds = Parallel(n_jobs=n_workers(), backend="threading")(
                delayed(one)(i) for i in range(len(jobs))
            )
        else:
            preds = [one(i) for i in range(len(jobs))]
        grouped: dict[int, list[np.ndarray]] = {}
        for i, pred in zip(owner, preds, strict=True):
            grouped.setdefault(i, []).append(pred)
        return {i: np.mean(group, axis=0) for i, group in grouped.items()}

    def _blend(self, means: dict[int, np.ndarray], weights: list[float]) -> np.ndarray:
        total = None
        for i, mean in means.items():
            if weights[i]:
                total = weights[i] * mean if total is None else total + weights[i] * mean
        if total is None:
            raise ValueError("the model has no member pipelines to predict with")
        return total

    def level_one_blend(self, X: pd.DataFrame) -> np.ndarray:
        """What a stacked model's stacked members read beside ``X``: the level-one blend."""
        if self.level_one is None:
            raise AttributeError("the model is not stacked")
        return self._blend(self._means(X, stacked=False), self.level_one)

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        weights = [m.weight for m in self.members]
        means = self._means(X, stacked=False)
        if self.level_one is not None and any(m.stacked for m in self.members):
            blend = self._blend(means, self.level_one)
            means |= self._means(with_level_one(X, blend, self.task), stacked=True)
        return self._blend(means, weights)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_``."""
        if self.task == "regression":
            raise AttributeError("predict_proba is for classification models")
        proba = self._raw(X)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted labels (classification) or values (regression)."""
        if self.task == "regression":
            return self._raw(X)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def in_parts(self) -> tuple[MlreModel, list[Any]]:
        """The model without its fitted pipelines, and the pipelines: pickled one by one, a
        model's largest moment on the way to disk is one pipeline's, not all of them at once
        (a pickler keeps every object it wrote until it ends, boosters' model text included)."""
        parts = [p for m in self.members for p in m.pipelines]
        shell = MlreModel(
            self.task,
            [
                Member(m.family, m.params, m.weight, [None] * len(m.pipelines), m.stacked)
                for m in self.members
            ],
            self.classes,
            self.contract,
            self.metric,
            self.level_one,
        )
        shell.__dict__.update({k: v for k, v in self.__dict__.items() if k not in shell.__dict__})
        shell.__dict__.pop("compiled_", None)
        shell.parts_count = len(parts)
        return shell, parts

    def from_parts(self, parts: list[Any]) -> MlreModel:
        """The model :meth:`in_parts` split, its pipelines put back (``self`` is the shell)."""
        it = iter(parts)
        for m in self.members:
            m.pipelines = [next(it) for _ in m.pipelines]
        self.__dict__.pop("parts_count", None)
        return self

    def drop_pipelines(self) -> None:
        """Let go of the fitted pipelines (and their compiled forms): the model can no longer
        predict, and its memory can go to something else."""
        for m in self.members:
            m.pipelines = []
        self.__dict__.pop("compiled_", None)

    def recipe(self) -> list[dict[str, Any]]:
        """The members exactly enough to fit them again: family, configuration, unrounded
        weight and how many bagged models each holds (a stacked model's members also say
        whether they are stacked and their weight in the level-one blend)."""
        return [
            {
                "family": m.family,
                "params": m.params,
                "weight": float(m.weight),
                "bagged_models": len(m.pipelines),
                **self._stacking(i),
            }
            for i, m in enumerate(self.members)
        ]

    def _stacking(self, i: int) -> dict[str, Any]:
        if self.level_one is None:
            return {}
        return {"stacked": self.members[i].stacked, "level_one": float(self.level_one[i])}

    def describe(self) -> list[dict[str, Any]]:
        """The members and their weights."""
        return [
            {
                "family": m.family,
                "params": m.params,
                "weight": round(m.weight, 4),
                "bagged_models": len(m.pipelines),
                **self._stacking(i),
            }
            for i, m in enumerate(self.members)
        ]
