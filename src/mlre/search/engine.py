"""The search: proven configurations first, then Bayesian tuning of the best families, then a
greedy ensemble, all within a wall-clock deadline."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from mlre.errors import InputError
from mlre.models.families import (
    FAMILIES,
    INTERPRETABLE_ORDER,
    PORTFOLIO_ORDER,
    Family,
    available_families,
    n_workers,
)
from mlre.models.final import Member, MlreModel
from mlre.models.target import KEY as TARGET_KEY
from mlre.models.target import TRANSFORMS, skewed_positive
from mlre.search.clock import share_of_time_left
from mlre.search.ensemble import caruana, cheapest_within, validated_caruana
from mlre.search.executor import Executor, LocalExecutor
from mlre.search.limits import Limits
from mlre.search.result import OnTrial, SearchResult
from mlre.search.schedule import Launch, run_trials, validated_rows
from mlre.search.spill import Spilled, loaded, release_memory
from mlre.search.stack import MARGIN as STACK_MARGIN
from mlre.search.stack import MAX_SHARE as STACK_SHARE
from mlre.search.stack import PHASE as STACKING
from mlre.search.stack import blend_of, can_stack, second_layer, stacked_data
from mlre.search.tpe import pruner, seeded_study, teller
from mlre.search.trial import TrialData, TrialResult

log = logging.getLogger(__name__)


#: At most this many candidates (the best) keep their fitted pipelines for the ensemble.
KEEP = 12
#: Seconds before the search's end from which a finished candidate stays in memory.
SPILL_MARGIN = 5.0
#: Families whose default configuration is also tried on a log-scale target, where it is skewed.
LOG_TARGET_FAMILIES = ("lightgbm", "catboost", "linear")
#: Families tuned after the portfolio.
TUNED_FAMILIES = 2
#: Tuning stops after this many trials that did not improve the best beyond the folds' noise.
PATIENCE = 20
#: A single model is chosen among the candidates within this many standard errors of the
#: best one's fold losses: the cheapest of them (a difference inside the folds' noise is no
#: reason to serve a slower model).
NOISE_SHARE = 0.5
#: The leading boosted configuration is fitted again this many times slower (its learning rate
#: divided by it, its round cap multiplied), when the time left allows it to converge.
SLOWER = 3.0
#: ... but only if that takes at most this share of the search's budget.
SLOWER_SHARE = 0.25
#: The phase of that trial.
CONVERGING = "converging"


class Search:
    """A budgeted search over the model zoo for one training part."""

    def __init__(
        self,
        data: TrialData,
        deadline: float,
        *,
        families: list[str] | None = None,
        on_trial: OnTrial | None = None,
        interpretable: bool = False,
        predict_rows: int = 0,
        refit_rows: int = 0,
        executor: Executor | None = None,
        stack: bool = True,
        limits: Limits | None = None,
    ) -> None:
        self.data = data
        self.limits = limits  # the served model's latency and size, when the spec bounds them
        self.may_stack = stack and limits is None
        self.refit_rows = refit_rows
        self.scored_rows = validated_rows(data)  # the rows with out-of-fold predictions
        # a positive, long-tailed regression target is also tried on the log scale
        self.log_target = data.task == "regression" and skewed_positive(data.y)
        self.members_now: list[TrialResult] = []  # the ensemble's members as it stands
        # once a second layer is fitted: the first layer's blend (trial id -> weight), whose
        # candidates stay kept whatever the ensemble gives them, and its out-of-fold predictions
        self.level_one: dict[int, float] = {}
        self.level_one_oof: np.ndarray | None = None
        self.started = time.monotonic()
        self.executor = executor or LocalExecutor()
        self._own_executor = executor is None
        self.shared: Any = None  # the data as the executor's workers read it, placed once
        self.deadline = deadline
        self.interpretable = interpretable
        # each fold model predicts its validation rows in a trial; after the search, the final
        # model predicts ``predict_rows`` holdout rows with every fold model of every member
        valid = np.mean([len(va) for _, va in data.folds]) if data.folds else 1.0
        self.predict_ratio = predict_rows / max(1.0, float(valid))
        if interpretable:
            glass = [f.name for f in available_families(families) if f.interpretable]
            if not glass:
                raise InputError(
                    "an interpretable model was asked for, but none of the families given is one",
                    hint="glass-box families: sparse_linear, shallow_tree, ebm",
                )
            families = glass
        # an ordinary search tries the glass-box families only when they are named: they are
        # weaker, and the explainable boosting machine forks worker processes
        self.families = [
            f
            for f in available_families(families)
            if (f.max_rows is None or len(data.y) <= f.max_rows)
            and (families is not None or interpretable or not f.interpretable)
        ]
        self.on_trial = on_trial or (lambda _: None)
        self.trials: list[TrialResult] = []
        self.pace: dict[str, float] = {}
        self.scratch = tempfile.mkdtemp(prefix="mlre-search-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.scratch, ignore_errors=True)
        # candidates are written out beside the search, not in its way: a LightGBM candidate of
        # a few thousand trees takes over a second to serialise, which held the next trials up
        self._writer = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlre-spill")
        self._held = threading.Lock()  # a candidate's pipelines change hands under it

    # ------------------------------------------------------------------ bookkeeping

    def remaining(self) -> float:
        """Seconds left, less what the final model will need to predict the holdout."""
        return share_of_time_left(self._stop_at())

    def _stop_at(self) -> float:
        """When the trials must be over: the deadline, less the final model's predictions."""
        return self.deadline - self.final_cost()

    def final_cost(self) -> float:
        """Expected seconds for the final ensemble to predict the holdout, from the trials' own
        prediction times (an upper bound: the best few candidates, all in the ensemble)."""
        best = sorted((t for t in self.trials if t.status == "ok"), key=lambda t: t.loss)[:6]
        predict = sum(t.predict_seconds for t in best) * self.predict_ratio / n_workers()
        return predict + self.refit_cost()

    def refit_cost(self) -> float:
        """Expected seconds to refit the final model on ``refit_rows`` rows after the holdout
        has scored it (the ensemble as it stands, from its members' own fits' times)."""
        if not self.refit_rows or not self.data.folds:
            return 0.0
        from mlre.search.refit import expected_seconds, projected_seconds

        fold_rows = float(np.mean([len(tr) for tr, _ in self.data.folds]))
        best = self.members_now
        per_fold = [t.fit_seconds / max(1, len(t.fold_losses)) for t in best]
        seconds = [
            expected_seconds(t.family, s, self.refit_rows, fold_rows)
            for t, s in zip(best, per_fold, strict=True)
        ]
        return projected_seconds(seconds)

    def _expected(self, family: Family) -> float:
        """Seconds a trial of ``family`` is expected to take, from what has been seen so far."""
        if family.name in self.pace:
            return self.pace[family.name]
        if "lightgbm" in self.pace:
            return family.cost * self.pace["lightgbm"]
        return 0.0

    def _affordable(self, family: Family, held: float = 0.0) -> bool:
        # worth starting only with a margin over what a trial of the family has been taking
        # (``held``: seconds kept back for later phases)
        return self.remaining() - held > max(0.5, 1.25 * self._expected(family))

    def _second_layer(self) -> list[tuple[Family, dict[str, Any]]]:
        """The second-layer configurations, where a stack can be fitted at all."""
        if self.interpretable or not self.may_stack or not can_stack(self.data):
            return []
        return second_layer(self.trials, {f.name: f for f in self.families})

    def _converging(self) -> tuple[Family, dict[str, Any], float] | None:
        """The leading configuration made to learn ``SLOWER`` times more slowly, and the
        seconds it is expected to take; None when it is not a boosted one, or has been."""
        ok = [t for t in self.trials if t.status == "ok" and t.phase != STACKING]
        if self.interpretable or not ok or any(t.phase == CONVERGING for t in self.trials):
            return None
        best = min(ok, key=lambda t: t.loss)
        family = FAMILIES[best.family]
        params = family.slower(best.params, SLOWER) if family.slower else None
        if params is None or family not in self.families:
            return None
        return family, params, SLOWER * best.wall_seconds

    def _converge_reserve(self) -> float:
        """Seconds kept back for the leading configuration to converge (as ``_stack_reserve``)."""
        slower = self._converging()
        if slower is None:
            return 0.0
        needs = STACK_MARGIN * slower[2]
        return needs if needs <= SLOWER_SHARE * (self.deadline - self.started) else 0.0

    def _stack_reserve(self) -> float:
        """Seconds kept back for the second layer: its trials' expected time with a margin,
        or nothing when that is more than a small share of the budget (tuning then pays more)."""
        layer = self._second_layer()
        if not layer:
            return 0.0
        needs = STACK_MARGIN * sum(self._expected(f) for f, _ in layer)
        budget = self.deadline - self.started
        return needs if 0 < needs <= STACK_SHARE * budget else 0.0

    def _launch(
        self,
        family: Family,
        params: dict[str, Any],
        phase: str,
        should_prune: Callable[[int, float], bool] | None = None,
        on_done: Callable[[TrialResult], None] | None = None,
        expected: float | None = None,
    ) -> Launch:
        # no single trial may take more than about half of what is left (or a margin over what
        # it is expected to take: its family's pace, unless told), except the first: with
        # nothing finished yet, a slow but complete model beats none
        share = 1.0 if not any(t.status == "ok" for t in self.trials) else 0.5
        now = time.monotonic()
        given = share_of_time_left(self._stop_at(), share, floor=2.0, now=now)
        limit = max(given, 1.5 * (self._expected(family) if expected is None else expected))
        # a trial may overrun the final model's predictions, not the refit that follows them
        deadline = min(self.deadline - self.refit_cost(), now + limit)
        return Launch(family, params, phase, deadline, should_prune, on_done)

    def _drive(
        self,
        source: Callable[[], Launch | None],
        overlap: bool = True,
        data: TrialData | None = None,
    ) -> None:
        """Run trials from ``source`` on the executor until it has no more to start (on
        ``data``, placed for the executor's workers, when given; else on the search's own)."""
        if data is not None:
            shared = self.executor.put(data)
        else:
            if self.shared is None:
                self.shared = self.executor.put(self.data)
            data, shared = self.data, self.shared
        run_trials(
            lambda _: source(),
            data,
            self.executor,
            shared=shared,
            on_finish=self._finished,
            first_id=len(self.trials),
            overlap=overlap,
        )

    def _finished(self, result: TrialResult) -> None:
        # wall time: the folds run in parallel (a configuration slowed down to converge says
        # nothing of what the family's other trials take)
        if result.phase != CONVERGING:
            pace = max(self.pace.get(result.family, 0.0) * 0.5, result.wall_seconds)
            self.pace[result.family] = pace
        self.trials.append(result)
        if result.pipelines is not None:  # a new candidate: the ensemble may change
            self._drop_unused()
            # in the last seconds no other trial will be fitted beside it, and writing a large
            # forest out takes about a second that the budget does not have
            if result.pipelines is not None and self.remaining() > SPILL_MARGIN:
                self._spill(result)
        release_memory()
        self.on_trial(result)

    def run_one(self, family: Family, params: dict[str, Any], phase: str) -> None:
        """One trial, alone."""
        given = iter([self._launch(family, params, phase)])
        self._drive(lambda: next(given, None))

    def close(self) -> None:
        """Stop the executor if the search started it, and let the writer finish what it has
        (a search that failed leaves no thread behind)."""
        if self._own_executor:
            self.executor.close()
        self._writer.shutdown(wait=True)

    def _drop_unused(self) -> None:
        """Free the fitted pipelines (and predictions) of the candidates the ensemble leaves out.

        A candidate keeps them while it is among the best ``KEEP`` and the greedy ensemble over
        the kept candidates gives it weight (the best always has some). Without the candidates
        it leaves out, the greedy ensemble makes the same choices up to its best point, so its
        loss can only fall; and weak but large models (forests, a neighbours model holding its
        rows) stop holding memory for the rest of the search: on tables of a few thousand rows,
        two forests' folds held 100 MB until better trials pushed them out of the best 12.
        """
        kept = self._kept()
        for t in kept[KEEP:]:
            if t.id not in self.level_one:  # a stacked candidate reads the first layer's blend
                self._forget(t)
        kept = kept[:KEEP]
        weights, _ = self._select(kept)
        for t, w in zip(kept, weights, strict=True):
            if w <= 0 and t.id not in self.level_one:
                self._forget(t)
        self.members_now = [t for t, w in zip(kept, weights, strict=True) if w > 0]

    def _spill(self, result: TrialResult) -> None:
        """Have a candidate's pipelines moved to the scratch folder (they stay in memory if they
        cannot be written: a full disk costs memory, not the run)."""
        if isinstance(result.pipelines, list):  # not written out already
            self._writer.submit(self._write, result, result.pipelines)

    def _write(self, result: TrialResult, pipelines: list[Any]) -> None:
        path = os.path.join(self.scratch, f"trial-{result.id}.pkl")
        started = time.monotonic()
        try:
            spilled = Spilled(path, pipelines)
        except Exception as err:  # any pickling or disk failure
            log.debug("trial %d's pipelines stay in memory: %s", result.id, err)
            spilled = None
        with self._held:
            if spilled is not None and result.pipelines is pipelines:
                result.pipelines = spilled
                log.debug("trial %d's pipelines written out in %.2fs (%.1f MB)", result.id,
                          time.monotonic() - started, os.path.getsize(path) / 1e6)  # fmt: skip
                return
        with contextlib.suppress(OSError):  # not written, or dropped while it was written
            os.remove(path)

    def _forget(self, t: TrialResult) -> None:
        """Drop a candidate's fitted pipelines (and their file) and its predictions."""
        with self._held:
            if isinstance(t.pipelines, Spilled):
                t.pipelines.remove()
            t.pipelines, t.oof = None, None

    def _kept(self) -> list[TrialResult]:
        """The candidates that still have their fitted pipelines, best first."""
        return sorted((t for t in self.trials if t.pipelines is not None), key=lambda t: t.loss)

    def _select(self, kept: list[TrialResult], validated: bool = False) -> tuple[np.ndarray, float]:
        """Ensemble weights over ``kept`` (best first) and the ensemble's loss; ``validated``:
        the best single model alone unless the ensemble also wins on rows it was not chosen on
        (the final choice; during the search any member the selection uses is worth keeping)."""
        if self.interpretable:  # a blend of readable models is not readable: the best one alone
            return np.eye(len(kept))[0], kept[0].loss
        oof = [t.oof for t in kept if t.oof is not None]
        if len(oof) < len(kept):  # _forget drops both together
            raise RuntimeError("a candidate kept for the ensemble lost its predictions")
        rows = self.scored_rows
        predictions, y = [p[rows] for p in oof], self.data.y[rows]
        if not validated:
            return caruana(predictions, y, self.data.metric)
        weights, loss, blended = validated_caruana(predictions, y, self.data.metric, self.data.seed)
        if blended:
            return weights, loss
        # one model: among those as good as the best within the folds' noise, the cheapest
        best = kept[int(np.argmax(weights))]
        noise = NOISE_SHARE * float(np.std(best.fold_losses)) / np.sqrt(len(best.fold_losses))
        pick = cheapest_within([t.loss for t in kept], noise, [self._cost(t) for t in kept])
        return np.eye(len(kept))[pick], kept[pick].loss

    def _cost(self, t: TrialResult) -> float:
        """What a candidate costs to fit and serve, by its family's standing cost (not its
        measured seconds: the same seed must choose the same model on a busy machine), with
        the first layer a second layer stands on."""
        own = FAMILIES[t.family].cost
        if t.phase != STACKING:
            return own
        by_id = {u.id: u for u in self.trials}
        return own + sum(FAMILIES[by_id[i].family].cost for i in self.level_one)

    # ------------------------------------------------------------------ phases

    def portfolio(self) -> None:
        """Try the proven configurations, strong and cheap ones first."""
        allowed = {f.name: f for f in self.families}
        order = INTERPRETABLE_ORDER if self.interpretable else PORTFOLIO_ORDER
        # a family named by the user but absent from the order still gets its first configuration
        order = order + [(n, 0) for n in allowed if n not in {name for name, _ in order}]
        queue = []
        for name, index in order:
            if name in allowed and index < len(allowed[name].portfolio):
                params = dict(allowed[name].portfolio[index])
                queue.append((allowed[name], params))
                # a long-tailed positive target: each family's default also on the log scale
                if self.log_target and index == 0 and name in LOG_TARGET_FAMILIES:
                    queue.append((allowed[name], params | {TARGET_KEY: "log1p"}))

        def source() -> Launch | None:
            while queue and self.remaining() > 0:
                family, params = queue.pop(0)
                if self._affordable(family):
                    return self._launch(family, params, "portfolio")
            return None

        self._drive(source)

    def tune(self) -> None:
        """Bayesian optimisation (TPE, with pruning) of the most promising families.

        A trial starts when the one before it is over, so that a seed gives the same proposals
        whatever the timing, unless the executor has more slots than a trial has folds (a
        cluster): then several run at once, the sampler treating the running ones as scored at
        their worst (constant liar) so as not to propose the same point twice, and proposals
        depend on which trials finished first, as in any parallel Bayesian optimisation."""
        best_by_family: dict[str, float] = {}
        for t in self.trials:
            if t.status == "ok":
                best_by_family[t.family] = min(best_by_family.get(t.family, np.inf), t.loss)
        ranked = sorted(best_by_family, key=best_by_family.__getitem__)[:TUNED_FAMILIES]
        if not ranked:
            return
        task, seed = self.data.task, self.data.seed
        studies = {
            name: seeded_study(FAMILIES[name], self.trials, task, seed, self.log_target)
            for name in ranked
        }
        turn = itertools.count()

        def source() -> Launch | None:
            while self.remaining() > 0:
                # the time of the last steps (convergence, the second layer) is not tuning's
                held = self._converge_reserve() + self._stack_reserve()
                if self._stalled() or all(not self._affordable(FAMILIES[n], held) for n in ranked):
                    return None
                name = ranked[next(turn) % len(ranked)]
                family = FAMILIES[name]
                if not self._affordable(family, held):
                    continue
                trial = studies[name].ask()
                params = family.space(trial, self.data.task)
                if self.log_target:
                    params[TARGET_KEY] = trial.suggest_categorical(TARGET_KEY, TRANSFORMS)
                return self._launch(
                    family, params, "tuning", pruner(trial), teller(studies[name], trial)
                )
            return None

        self._drive(source, overlap=self.executor.slots > len(self.data.folds))

    def _stalled(self) -> bool:
        """Whether tuning has stopped paying: the last ``PATIENCE`` trials improved the best
        out-of-fold loss by less than a quarter of the standard error of the best trial's fold
        losses. Further trials would select on the folds' noise (on small tables a long
        search's best estimate drifts above what the holdout gives)."""
        tuned = [t for t in self.trials if t.phase == "tuning" and t.status != "cut"]
        if len(tuned) < PATIENCE:
            return False
        ok = [t for t in self.trials if t.status == "ok"]
        earlier = [t.loss for t in ok if t.id < tuned[-PATIENCE].id]
        if not ok or not earlier:
            return False
        best = min(ok, key=lambda t: t.loss)
        noise = float(np.std(best.fold_losses)) / np.sqrt(max(1, len(best.fold_losses)))
        return min(earlier) - best.loss < 0.25 * noise

    def converge(self) -> None:
        """Fit the leading boosted configuration again at a lower learning rate, with room for
        more rounds: such models keep improving long after a search can afford to wait for
        every candidate (AutoGluon's CatBoost trains for thousands of rounds). It joins the
        candidates; the validated selection decides whether it is used."""
        slower = self._converging()
        if slower is None or self._converge_reserve() <= 0:
            return
        family, params, expected = slower
        if self.remaining() - self._stack_reserve() > STACK_MARGIN * expected:
            given = iter([self._launch(family, params, CONVERGING, expected=expected)])
            self._drive(lambda: next(given, None))

    def stack(self) -> None:
        """Fit the second layer on the table's columns and the first layer's out-of-fold blend
        (see ``stack.py``), when every row has one and the time left allows."""
        layer = self._second_layer()
        kept = self._kept()
        if not layer or not kept or self._stack_reserve() <= 0:
            return
        weights, _ = self._select(kept)
        self.level_one = {t.id: float(w) for t, w in zip(kept, weights, strict=True) if w > 0}
        self.level_one_oof = blend_of(kept, weights)
        data = stacked_data(self.data, self.level_one_oof)

        def source() -> Launch | None:
            while layer and self.remaining() > 0:
                family, params = layer.pop(0)
                if self._affordable(family):
                    return self._launch(family, params, STACKING)
            return None

        self._drive(source, overlap=self.executor.slots > len(self.data.folds), data=data)

    def ensemble(self) -> SearchResult:
        """Greedy ensemble selection over the kept candidates; the final model's members
        (after ``close``: every candidate is then where it will stay).

        When the selection keeps a second-layer candidate, the first layer's blend it reads
        comes along: its candidates are members too, with no weight of their own unless the
        selection gave them some."""
        kept = self._kept()
        if not kept:
            failed = next((t for t in self.trials if t.error), None)
            raise InputError(
                "no model could be fitted on this table"
                + (f": {failed.family} failed with {failed.error}" if failed else ""),
                hint="check the audit's findings on the features; a larger --time-budget helps "
                "only when trials were cut",
            )
        limits, select = self.limits, lambda k: self._select(k, validated=True)
        weights, loss = limits.select_within(kept, select) if limits else select(kept)
        oof = blend_of(kept, weights)
        chosen = {t.id: float(w) for t, w in zip(kept, weights, strict=True) if w > 0}
        stacked = any(t.phase == STACKING and t.id in chosen for t in kept)
        first = self.level_one if stacked else {}
        members, ensemble, level_one = [], {}, []
        for t in kept:
            if t.id in chosen or t.id in first:  # back in memory: the final model's members
                t.pipelines = loaded(t.pipelines)
                weight = chosen.get(t.id, 0.0)
                members.append(Member(t.family, t.params, weight, t.pipelines, t.phase == STACKING))
                ensemble[t.id] = weight
                level_one.append(first.get(t.id, 0.0))
            else:
                self._forget(t)
        self._cleanup()
        release_memory()  # what the loads left behind
        return SearchResult(
            trials=self.trials,
            members=members,
            loss=loss,
            best_single_loss=kept[0].loss,
            ensemble=ensemble,
            executor=self.executor.describe(),
            level_one=level_one if stacked else None,
            level_one_oof=self.level_one_oof if stacked else None,
            oof=oof,
        )


def run_search(
    data: TrialData,
    budget_seconds: float,
    *,
    families: list[str] | None = None,
    on_trial: OnTrial | None = None,
    classes: np.ndarray | None = None,
    contract: Any = None,
    interpretable: bool = False,
    predict_rows: int = 0,
    refit_rows: int = 0,
    executor: Executor | None = None,
    stack: bool = True,
    limits: Limits | None = None,
) -> tuple[SearchResult, MlreModel]:
    """Search for ``budget_seconds`` and return the result and the final model; the search
    stops early enough for the final model to predict ``predict_rows`` holdout rows, and to be
    refitted on ``refit_rows`` rows (0: no refit), in time. ``stack``: whether a second layer
    may be tried (not when the model's members will be refitted on rows the search did not
    see: the second layer would have no first-layer column for them)."""
    started = time.monotonic()
    search = Search(
        data,
        started + budget_seconds,
        families=families,
        on_trial=on_trial,
        interpretable=interpretable,
        predict_rows=predict_rows,
        refit_rows=refit_rows,
        executor=executor,
        stack=stack,
        limits=limits,
    )
    try:
        search.portfolio()
        search.tune()
        search.converge()
        search.stack()
        if not any(t.status == "ok" for t in search.trials):
            # the budget allowed nothing: a regularised linear model is quick and always sound
            log.warning("the time budget was too small for the search; returning a linear baseline")
            search.deadline = float("inf")
            fallback = "sparse_linear" if interpretable else "linear"
            search.run_one(FAMILIES[fallback], dict(FAMILIES[fallback].portfolio[0]), "baseline")
    finally:
        search.close()
    result = search.ensemble()
    result.seconds = time.monotonic() - started
    model = MlreModel(
        data.task, result.members, classes, contract, data.metric.name, result.level_one
    )
    if result.level_one_oof is not None:
        model.level_one_oof = result.level_one_oof  # for the refit on every row
    return result, model
