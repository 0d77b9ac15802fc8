"""The search's scheduler: trials fitted fold by fold on an executor's slots, several at once
when the slots allow, each stopped as soon as it is hopeless, late or broken."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlre.models.families import Family
from mlre.search.clock import share_of_time_left
from mlre.search.executor import Executor, LocalExecutor, WorkerLost
from mlre.search.trial import TrialData, TrialResult, fit_fold

log = logging.getLogger(__name__)


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
    executor: Executor,
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
    scheduler = _Scheduler(source, data, executor, data if shared is None else shared, first_id)
    while True:
        now = time.monotonic()
        scheduler.fill_slots(now, overlap)
        scheduler.hand_back(on_finish)
        if scheduler.over:
            return scheduler.done
        scheduler.take_finished_fits(now)


class _Scheduler:
    """The trials running on an executor, the slots they leave free, and those handed back."""

    def __init__(
        self,
        source: Callable[[int], Launch | None],
        data: TrialData,
        executor: Executor,
        shared: Any,
        first_id: int,
    ) -> None:
        self.source, self.data, self.executor, self.shared = source, data, executor, shared
        self.running: list[_Running] = []
        self.orphans: dict[Any, int] = {}  # jobs of stopped trials that a thread must still finish
        self.done: list[TrialResult] = []
        self.free = executor.slots
        self.next_id = first_id
        self.exhausted = False

    @property
    def over(self) -> bool:
        """Whether every trial the source gave is handed back and no fit holds a slot."""
        return not self.running and self.exhausted and not self.orphans

    def fill_slots(self, now: float, overlap: bool) -> None:
        """Start folds on the free slots: waiting folds first, then a new trial once none is
        waiting (with ``overlap`` off, only when no trial is running)."""
        while True:
            waiting = [r for r in self.running if r.todo and not r.stopped]
            trial = next((r for r in waiting if r.cost <= self.free), None)
            if trial is not None:
                if trial.too_late(now):  # the folds running finish; no more start
                    trial.stop("cut")
                    trial.todo.clear()
                    continue
                self._start_fold(trial)
                continue
            if waiting or self.exhausted or self.free <= 0 or (self.running and not overlap):
                return
            launch = self.source(self.next_id)
            if launch is None:
                self.exhausted = True
                return
            cost = self.executor.cost(launch.family)
            self.running.append(_Running(self.next_id, launch, self.data, cost))
            self.next_id += 1

    def _start_fold(self, trial: _Running) -> None:
        """Submit the next waiting fold of ``trial``."""
        k = trial.todo.pop(0)
        launch = trial.launch
        job = self.executor.submit(fit_fold, launch.family.name, launch.params, self.shared, k,
                                   deadline=launch.deadline)  # fmt: skip
        trial.jobs[job] = k
        self.free -= trial.cost

    def hand_back(self, on_finish: Callable[[TrialResult], None] | None) -> None:
        """Finish the trials that are over and hand them back."""
        for trial in [r for r in self.running if r.finished]:
            self.running.remove(trial)
            self.done.append(_finish(trial, self.data, on_finish))

    def take_finished_fits(self, now: float) -> None:
        """Wait for some fits to finish and take them in; then stop, where the executor can,
        the fits that overran their trial's deadline by a margin."""
        jobs = [j for r in self.running for j in r.jobs] + list(self.orphans)
        if not jobs:
            return
        latest = min((r.launch.deadline for r in self.running if r.jobs), default=now + 60.0)
        # a fit that overruns its trial's deadline by a margin is stopped where that is possible
        grace = 5.0 + share_of_time_left(latest, 0.1, now=now)
        ready = self.executor.wait(jobs, timeout=max(0.05, min(60.0, latest + grace - now)))
        for job in ready:
            if job in self.orphans:
                self.free += self.orphans.pop(job)
                continue
            trial = next(r for r in self.running if job in r.jobs)
            self.free += trial.cost
            _collect(trial, trial.jobs.pop(job), job, self.data, self.executor, self.orphans)
        if self.executor.can_cancel:
            self._cancel_overdue(grace)

    def _cancel_overdue(self, grace: float) -> None:
        """Cut the trials whose fits run more than ``grace`` seconds past their deadline."""
        now = time.monotonic()
        for trial in self.running:
            if trial.jobs and now > trial.launch.deadline + grace:
                trial.stop("cut")
                self.free += trial.cost * len(trial.jobs)
                for job in trial.jobs:
                    self.executor.cancel(job)
                trial.jobs.clear()


def _collect(
    trial: _Running, k: int, job: Any, data: TrialData, executor: Executor, orphans: dict[Any, int]
) -> None:
    """Take in fold ``k`` of ``trial``: its predictions, or why it has none."""
    try:
        pipe, pred, fit_s, pred_s = executor.result(job)
    except WorkerLost as err:
        if trial.stopped:
            return
        if k in trial.lost:
            trial.stop("failed", f"the worker fitting fold {k + 1} died twice: {err}")
            trial.result.worker_lost = True
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
    if trial.stopped:
        return
    # the pruner sees the folds in order (the mean of folds 0..j once all of them are in), so
    # that its decisions do not depend on which fold happened to finish first: a trial whose
    # last fold to arrive is its first is judged at every step all the same
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


def _drop_jobs(trial: _Running, executor: Executor, orphans: dict[Any, int]) -> None:
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
        oof = out_of_fold(data, trial.preds)
        scored = validated_rows(data)
        result.loss = data.metric.loss(data.y[scored], oof[scored])
        result.oof, result.pipelines = oof, [trial.pipes[k] for k in sorted(trial.pipes)]
    # the result holds them now: the search may write them out and free them (``on_finish``)
    trial.pipes.clear()
    trial.preds.clear()
    if trial.launch.on_done:
        trial.launch.on_done(result)
    if on_finish:
        on_finish(result)
    return result


def out_of_fold(data: TrialData, preds: dict[int, np.ndarray]) -> np.ndarray:
    """Each row's prediction by the fold models that did not see it, averaged over the rounds
    of a repeated cross-validation (zero for rows no fold validates)."""
    n = len(data.y)
    oof = np.zeros((n, data.n_classes)) if data.task != "regression" else np.zeros(n)
    seen = np.zeros(n)
    for k, pred in preds.items():
        va = data.folds[k][1]
        oof[va] += pred
        seen[va] += 1
    held = seen > 0
    oof[held] /= seen[held].reshape(-1, *([1] * (oof.ndim - 1)))
    return oof


def validated_rows(data: TrialData) -> np.ndarray:
    """The rows some fold validates (all of them, except with a single validation split)."""
    mask = np.zeros(len(data.y), dtype=bool)
    for _, va in data.folds:
        mask[va] = True
    return mask


def run_trial(
    trial_id: int,
    family: Family,
    params: dict[str, Any],
    data: TrialData,
    *,
    phase: str,
    deadline: float,
    should_prune: Callable[[int, float], bool] | None = None,
    executor: Executor | None = None,
) -> TrialResult:
    """Fit ``family`` with ``params`` on every fold before ``deadline``; cut it if it cannot finish.

    Folds are fitted in parallel on the executor's slots (one at a time for a family that
    parallelises its own fit, on threads of this process); the trial may be pruned (hopeless) or
    cut (the rest would not finish in time) as its folds come in.
    """
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
