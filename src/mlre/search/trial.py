"""One trial: a configuration fitted on every fold, scored on out-of-fold predictions."""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from mlre.evaluate.metrics import Metric
from mlre.features.pipeline import FeaturePlan, make_preprocessor
from mlre.models.final import member_predict
from mlre.models.zoo import Family

log = logging.getLogger(__name__)


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
    oof: np.ndarray | None = None
    pipelines: list[Any] | None = None

    def row(self, metric: Metric) -> dict[str, Any]:
        """A leaderboard row."""
        ok = self.status == "ok"
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
        }


@dataclass
class TrialData:
    """The training part a trial sees: raw features, encoded target, folds."""

    X: pd.DataFrame
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    task: str
    n_classes: int
    plan: FeaturePlan
    metric: Metric
    seed: int


def run_trial(
    trial_id: int,
    family: Family,
    params: dict[str, Any],
    data: TrialData,
    *,
    phase: str,
    deadline: float,
    should_prune: Callable[[int, float], bool] | None = None,
) -> TrialResult:
    """Fit ``family`` with ``params`` on every fold before ``deadline``; cut it if it cannot finish."""
    result = TrialResult(trial_id, family.name, params, phase)
    n = len(data.y)
    oof = np.zeros((n, data.n_classes)) if data.task != "regression" else np.zeros(n)
    covered = np.zeros(n, dtype=bool)
    pipelines = []
    started = time.monotonic()
    try:
        for k, (tr, va) in enumerate(data.folds):
            elapsed = time.monotonic() - started
            if k and time.monotonic() + elapsed / k > deadline:
                result.status = "cut"
                break
            t0 = time.monotonic()
            prep = make_preprocessor(data.plan, family.style)
            X_tr = prep.fit_transform(data.X.iloc[tr])
            X_va = prep.transform(data.X.iloc[va])
            est = family.build(data.task, params, data.seed + k)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                family.fit(est, X_tr, data.y[tr], X_va, data.y[va], deadline)
            result.fit_seconds += time.monotonic() - t0
            pipe = Pipeline([("prep", prep), ("model", est)])
            t1 = time.monotonic()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                oof[va] = member_predict(est, X_va, data.task, data.n_classes)
            result.predict_seconds += time.monotonic() - t1
            covered[va] = True
            pipelines.append(pipe)
            fold_loss = data.metric.loss(data.y[va], oof[va])
            result.fold_losses.append(fold_loss)
            if should_prune is not None and should_prune(k, float(np.mean(result.fold_losses))):
                result.status = "pruned"
                break
    except Exception as err:  # one broken configuration must not end the search
        result.status = "failed"
        result.error = f"{type(err).__name__}: {err}"
        log.debug("trial %s failed:\n%s", trial_id, traceback.format_exc())
        return result
    if result.status == "ok" and covered.all():
        result.loss = data.metric.loss(data.y, oof)
        result.oof, result.pipelines = oof, pipelines
    elif result.status == "ok":
        result.status = "cut"
    return result
