"""One trial: a configuration fitted on every fold, scored on out-of-fold predictions."""

from __future__ import annotations

import logging
import time
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
    retries: int = 0  # folds fitted again after their worker died
    wall_seconds: float = 0.0  # from its start to its last fold, folds in parallel
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
            "retries": self.retries,
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


def fit_family(
    family_name: str,
    params: dict[str, Any],
    plan: FeaturePlan,
    task: str,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame | None,
    y_valid: np.ndarray | None,
    seed: int,
    deadline: float,
) -> tuple[Pipeline, pd.DataFrame | None]:
    """Fit a family's preprocessing and model on raw rows (the validation rows, when given,
    stop boosted trees early): the fitted pipeline and the transformed validation rows."""
    from mlre.models.zoo import FAMILIES

    family = FAMILIES[family_name]
    prep = make_preprocessor(plan, family.style)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X_tr = prep.fit_transform(X_train)
        X_va = None if X_valid is None else prep.transform(X_valid)
        est = family.build(task, params, seed)
        family.fit(est, X_tr, y_train, X_va, y_valid, deadline)
    return Pipeline([("prep", prep), ("model", est)]), X_va


def fit_family_stopped(
    family_name: str,
    params: dict[str, Any],
    plan: FeaturePlan,
    task: str,
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


@dataclass
class Launch:
    """A trial to start: a configuration, its phase and deadline, and what to tell its sampler."""

    family: Family
    params: dict[str, Any]
    phase: str
    deadline: float
    should_prune: Callable[[int, float], bool] | None = None
    on_done: Callable[[TrialResult], None] | None = None


class _Running:
    """A trial whose folds are being fitted: which are waiting, running and done."""

    def __init__(self, trial_id: int, launch: Launch, data: TrialData, cost: int) -> None:
        self.launch = launch
        self.result = TrialResult(trial_id, launch.family.name, launch.params, launch.phase)
        self.todo = list(range(len(data.folds)))
        self.jobs: dict[Any, int] = {}
        self.preds: dict[int, np.ndarray] = {}
        self.pipes: dict[int, Any] = {}
        self.fold_seconds: list[float] = []
        self.losses: dict[int, float] = {}  # fold -> loss
        self.reported = -1  # the pruner has seen folds 0..reported
        self.lost: set[int] = set()
        self.cost = cost
        self.started = time.monotonic()

    @property
    def stopped(self) -> bool:
        return self.result.status != "ok"

    @property
    def finished(self) -> bool:
        return not self.jobs and (self.stopped or not self.todo)

    def stop(self, status: str, error: str | None = None) -> None:
        if not self.stopped:
            self.result.status, self.result.error = status, error

    def too_late(self, now: float) -> bool:
        """Whether the next fold would end after the trial's deadline (judged by the folds done;
        the first folds always start: with nothing finished a slow model beats none)."""
        if not self.fold_seconds:
            return False
        return now + float(np.mean(self.fold_seconds)) > self.launch.deadline


def run_trials(
    source: Callable[[int], Launch | None],
    data: TrialData,
    executor: Any,
    *,
    shared: Any = None,
    on_finish: Callable[[TrialResult], None] | None = None,
    first_id: int = 0,
    overlap: bool = True,
) -> list[TrialResult]:
    """Fit trials fold by fold on ``executor`` until ``source`` has no more to start.

    Free slots go first to the waiting folds of the trials already started (oldest first), then
    to a new trial from ``source(next_id)``; a trial is pruned (hopeless, by its
    ``should_prune``), cut (its next fold would end after its deadline) or failed (its fit
    raised) as soon as that is known. A fold whose worker died is fitted again once; a second
    loss fails the trial. ``shared``: the data as placed by ``executor.put`` (else ``data``).
    ``overlap=False`` starts a trial only when the one before it is over (a sampler that learns
    from every result then proposes the same points whatever the timing).
    """
    shared = data if shared is None else shared
    running: list[_Running] = []
    orphans: dict[Any, int] = {}  # jobs of stopped trials that a thread must still finish
    done: list[TrialResult] = []
    free = executor.slots
    next_id = first_id
    exhausted = False
    while True:
        now = time.monotonic()
        # fill the free slots: waiting folds first, then a new trial once none is waiting
        while True:
            waiting = [r for r in running if r.todo and not r.stopped]
            trial = next((r for r in waiting if r.cost <= free), None)
            if trial is not None:
                if trial.too_late(now):  # the folds running finish; no more start
                    trial.stop("cut")
                    trial.todo.clear()
                    continue
                k = trial.todo.pop(0)
                job = executor.submit(fit_fold, trial.launch.family.name, trial.launch.params,
                                      shared, k, deadline=trial.launch.deadline)  # fmt: skip
                trial.jobs[job] = k
                free -= trial.cost
                continue
            if waiting or exhausted or free <= 0 or (running and not overlap):
                break
            launch = source(next_id)
            if launch is None:
                exhausted = True
                break
            running.append(_Running(next_id, launch, data, executor.cost(launch.family)))
            next_id += 1
        # hand back the trials that are over
        for trial in [r for r in running if r.finished]:
            running.remove(trial)
            done.append(_finish(trial, data, on_finish))
        if not running and exhausted and not orphans:
            return done
        jobs = [j for r in running for j in r.jobs] + list(orphans)
        if not jobs:
            continue
        latest = min((r.launch.deadline for r in running if r.jobs), default=now + 60.0)
        # a fit that overruns its trial's deadline by a margin is stopped where that is possible
        grace = 5.0 + 0.1 * max(0.0, latest - now)
        ready = executor.wait(jobs, timeout=max(0.05, min(60.0, latest + grace - now)))
        for job in ready:
            if job in orphans:
                free += orphans.pop(job)
                continue
            trial = next(r for r in running if job in r.jobs)
            free += trial.cost
            _collect(trial, trial.jobs.pop(job), job, data, executor, orphans)
        if executor.can_cancel:
            now = time.monotonic()
            for trial in running:
                if trial.jobs and now > trial.launch.deadline + grace:
                    trial.stop("cut")
                    free += trial.cost * len(trial.jobs)
                    for job in trial.jobs:
                        executor.cancel(job)
                    trial.jobs.clear()


def _collect(trial: _Running, k: int, job: Any, data: TrialData, executor: Any, orphans) -> None:
    """Take in fold ``k`` of ``trial``: its predictions, or why it has none."""
    from mlre.search.executor import WorkerLost

    try:
        pipe, pred, fit_s, pred_s = executor.result(job)
    except WorkerLost as err:
        if trial.stopped:
            return
        if k in trial.lost:
            trial.stop("failed", f"the worker fitting fold {k + 1} died twice: {err}")
            _drop_jobs(trial, executor, orphans)
        else:  # once is bad luck (a node lost, a process killed): fit that fold again
            log.warning("the worker fitting fold %d of trial %d died; fitting it again",
                        k + 1, trial.result.id)  # fmt: skip
            trial.lost.add(k)
            trial.result.retries += 1
            trial.todo.insert(0, k)
        return
    except Exception as err:  # one broken configuration must not end the search
        if not trial.stopped:
            trial.stop("failed", f"{type(err).__name__}: {err}")
            log.debug("trial %s failed", trial.result.id, exc_info=err)
            _drop_jobs(trial, executor, orphans)
        return
    if trial.stopped and trial.result.status != "cut":
        return
    va = data.folds[k][1]
    trial.preds[k], trial.pipes[k] = pred, pipe
    trial.result.fit_seconds += fit_s
    trial.result.predict_seconds += pred_s
    trial.fold_seconds.append(fit_s + pred_s)
    trial.losses[k] = data.metric.loss(data.y[va], pred)
    if len(trial.preds) == len(data.folds) or trial.stopped:
        return
    # the pruner sees the folds in order (the mean of folds 0..j once all of them are in), so
    # that its decisions do not depend on which fold happened to finish first
    should_prune = trial.launch.should_prune
    while should_prune and trial.reported + 1 in trial.losses:
        trial.reported += 1
        step = trial.reported
        mean = float(np.mean([trial.losses[j] for j in range(step + 1)]))
        if step + 1 < len(data.folds) and should_prune(step, mean):
            trial.stop("pruned")
            _drop_jobs(trial, executor, orphans)
            return
    if time.monotonic() > trial.launch.deadline and trial.todo:
        trial.stop("cut")  # the folds running finish; no more start
        trial.todo.clear()


def _drop_jobs(trial: _Running, executor: Any, orphans: dict[Any, int]) -> None:
    """Stop a stopped trial's running fits (or leave them to finish, holding their slots)."""
    for job in trial.jobs:
        if executor.can_cancel:
            executor.cancel(job)
        orphans[job] = trial.cost
    trial.jobs.clear()
    trial.todo.clear()


def _finish(
    trial: _Running, data: TrialData, on_finish: Callable[[TrialResult], None] | None
) -> TrialResult:
    result = trial.result
    result.wall_seconds = time.monotonic() - trial.started
    # the scores in fold order, whatever order the folds finished in
    result.fold_losses = [trial.losses[k] for k in sorted(trial.losses)]
    if result.status == "ok":
        n = len(data.y)
        oof = np.zeros((n, data.n_classes)) if data.task != "regression" else np.zeros(n)
        for k, pred in trial.preds.items():
            oof[data.folds[k][1]] = pred
        result.loss = data.metric.loss(data.y, oof)
        result.oof, result.pipelines = oof, [trial.pipes[k] for k in sorted(trial.pipes)]
    if trial.launch.on_done:
        trial.launch.on_done(result)
    if on_finish:
        on_finish(result)
    return result


def run_trial(
    trial_id: int,
    family: Family,
    params: dict[str, Any],
    data: TrialData,
    *,
    phase: str,
    deadline: float,
    should_prune: Callable[[int, float], bool] | None = None,
    executor: Any = None,
) -> TrialResult:
    """Fit ``family`` with ``params`` on every fold before ``deadline``; cut it if it cannot finish.

    Folds are fitted in parallel on the executor's slots (one at a time for a family that
    parallelises its own fit, on threads of this process); the trial may be pruned (hopeless) or
    cut (the rest would not finish in time) as its folds come in.
    """
    from mlre.search.executor import LocalExecutor

    own = executor is None
    executor = executor or LocalExecutor()
    launch = Launch(family, params, phase, deadline, should_prune)
    try:
        given = iter([launch])
        (result,) = run_trials(lambda _: next(given, None), data, executor, first_id=trial_id)
    finally:
        if own:
            executor.close()
    return result
