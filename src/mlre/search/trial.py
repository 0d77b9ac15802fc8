"""One trial: a configuration fitted on every fold, scored on out-of-fold predictions.

What a trial sees and what it achieved, and the fit of one fold; the scheduler
(``schedule.py``) runs the folds of trials on an executor's slots."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlre.evaluate.metrics import Metric
from mlre.features.pipeline import FeaturePlan, make_preprocessor
from mlre.models.final import member_predict
from mlre.spec import Task

log = logging.getLogger(__name__)


class StoredPipelines(Protocol):
    """A candidate's fitted pipelines kept out of memory (the search's ``Spilled``)."""

    def load(self) -> list[Any]:
        """The pipelines, read back."""
        ...

    def remove(self) -> None:
        """Delete what holds them."""
        ...


@dataclass
class TrialResult:
    """What one configuration achieved; ``oof`` and ``pipelines`` are kept for ensembling."""

    id: int
    family: str
    params: dict[str, Any]
    phase: str
    status: str = "ok"  # ok | cut | pruned | failed
    loss: float = float("inf")
    fold_losses: list[float] = field(default_factory=list)
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    error: str | None = None
    retries: int = 0  # folds fitted again after their worker died
    worker_lost: bool = False  # failed because a fold's worker died twice
    wall_seconds: float = 0.0  # from its start to its last fold, folds in parallel
    oof: np.ndarray | None = None
    pipelines: list[Any] | StoredPipelines | None = None
    # once served (measured when the spec limits latency or size): ms per row, MB
    latency_ms: float | None = None
    size_mb: float | None = None

    def row(self, metric: Metric) -> dict[str, Any]:
        """A leaderboard row."""
        ok = self.status == "ok"
        served = {}
        if self.latency_ms is not None and self.size_mb is not None:
            served = {"latency_ms": round(self.latency_ms, 3), "size_mb": round(self.size_mb, 3)}
        return {
            "trial": self.id,
            "family": self.family,
            "phase": self.phase,
            "status": self.status,
            metric.name: round(metric.to_score(self.loss), 6) if ok else None,
            "fold_scores": [round(metric.to_score(v), 6) for v in self.fold_losses],
            "fit_seconds": round(self.fit_seconds, 3),
            "predict_seconds": round(self.predict_seconds, 3),
            "params": self.params,
            "error": self.error,
            "retries": self.retries,
            **served,
        }


@dataclass
class TrialData:
    """The training part a trial sees: raw features, encoded target, folds."""

    X: pd.DataFrame
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    task: Task
    n_classes: int
    plan: FeaturePlan
    metric: Metric
    seed: int


def fit_family(
    family_name: str,
    params: dict[str, Any],
    plan: FeaturePlan,
    task: Task,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame | None,
    y_valid: np.ndarray | None,
    seed: int,
    deadline: float,
) -> tuple[Pipeline, pd.DataFrame | None]:
    """Fit a family's preprocessing and model on raw rows (the validation rows, when given,
    stop boosted trees early): the fitted pipeline and the transformed validation rows.

    A regression configuration may ask for its target on the log scale (``target_transform``):
    the model then fits ``log1p`` of both parts and predicts on the original scale."""
    from mlre.models.families import FAMILIES
    from mlre.models.target import KEY, LogTarget, forward

    family = FAMILIES[family_name]
    transform = params.get(KEY, "none")
    params = {k: v for k, v in params.items() if k != KEY}
    prep = make_preprocessor(plan, family.style)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y_tr, y_va = forward(y_train, transform), forward(y_valid, transform)
        assert y_tr is not None
        X_tr = prep.fit_transform(X_train, y_tr)  # a text part learns from the target
        X_va = None if X_valid is None else prep.transform(X_valid)
        est = family.build(task, params, seed)
        family.fit(est, X_tr, y_tr, X_va, y_va, deadline)
    if transform == "log1p":
        est = LogTarget(est)
    return Pipeline([("prep", prep), ("model", est)]), X_va


def fit_family_stopped(
    family_name: str,
    params: dict[str, Any],
    plan: FeaturePlan,
    task: Task,
    X: pd.DataFrame,
    y: np.ndarray,
    seed: int,
) -> Pipeline:
    """Fit a family on all of ``X`` outside a search: boosted trees stop early on a tenth of the
    rows, as in the search (with no deadline of their own)."""
    from mlre.data.split import validation_split

    inner, valid = validation_split(y, task=task, fraction=0.1, seed=seed)[0]
    pipe, _ = fit_family(
        family_name,
        params,
        plan,
        task,
        X.iloc[inner],
        y[inner],
        X.iloc[valid],
        y[valid],
        seed,
        time.monotonic() + 3600,
    )
    return pipe


def fit_pipeline(
    family_name: str,
    params: dict[str, Any],
    data: TrialData,
    train: np.ndarray,
    valid: np.ndarray,
    seed: int,
    deadline: float,
) -> tuple[Pipeline, pd.DataFrame]:
    """Fit preprocessing and model on rows ``train`` (``valid`` for early stopping): the fitted
    pipeline and the transformed ``valid`` rows."""
    pipe, X_va = fit_family(
        family_name,
        params,
        data.plan,
        data.task,
        data.X.iloc[train],
        data.y[train],
        data.X.iloc[valid],
        data.y[valid],
        seed,
        deadline,
    )
    assert X_va is not None
    return pipe, X_va


def fit_fold(
    family_name: str, params: dict[str, Any], data: TrialData, k: int, deadline: float
) -> tuple[Any, np.ndarray, float, float]:
    """Fit one fold: the fitted pipeline, its validation predictions, fit and predict seconds."""
    tr, va = data.folds[k]
    t0 = time.monotonic()
    pipe, X_va = fit_pipeline(family_name, params, data, tr, va, data.seed + k, deadline)
    fit_seconds = time.monotonic() - t0
    t1 = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = member_predict(pipe.named_steps["model"], X_va, data.task, data.n_classes)
    return pipe, pred, fit_seconds, time.monotonic() - t1
