"""Trials (one configuration on every fold) and the budgeted search, on real data."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from helpers import audit, dataset, trial_data
from mlre.data.split import cv_folds, outer_holdout
from mlre.evaluate.metrics import get_metric
from mlre.features import FeaturePlan
from mlre.models import FAMILIES
from mlre.models.final import MlreModel
from mlre.search.engine import run_search
from mlre.search.executor import LocalExecutor
from mlre.search.schedule import run_trial
from mlre.search.spill import Spilled
from mlre.search.trial import TrialData, TrialResult

LGBM = FAMILIES["lightgbm"]
LGBM_DEFAULT = dict(LGBM.portfolio[0])


@pytest.fixture(scope="module")
def credit():
    return trial_data("german_credit", "credit", "binary", "roc_auc")


def far() -> float:
    return time.monotonic() + 120


def test_a_trial_scores_every_row_out_of_fold(credit):
    data, df, _, _ = credit
    result = run_trial(0, LGBM, LGBM_DEFAULT, data, phase="portfolio", deadline=far())
    assert result.status == "ok" and result.error is None
    assert (result.id, result.family, result.phase) == (0, "lightgbm", "portfolio")
    assert result.oof.shape == (len(df), 2)
    # every row got a prediction from the fold that did not train on it
    assert np.allclose(result.oof.sum(axis=1), 1.0)
    assert len(result.fold_losses) == len(data.folds) == 5
    assert result.loss == pytest.approx(data.metric.loss(data.y, result.oof))
    assert 0.7 < data.metric.to_score(result.loss) < 1.0
    assert result.fit_seconds > 0 and result.predict_seconds > 0
    # the fold models are whole pipelines: raw table in, probabilities out
    assert len(result.pipelines) == 5
    assert all(isinstance(p, Pipeline) for p in result.pipelines)
    _, va = data.folds[2]
    np.testing.assert_allclose(
        result.pipelines[2].predict_proba(df.iloc[va]), result.oof[va], rtol=1e-9
    )
    row = result.row(data.metric)
    assert row["status"] == "ok" and row["family"] == "lightgbm"
    assert row["roc_auc"] == pytest.approx(-result.loss, abs=1e-6)
    assert row["fold_scores"] == [round(-v, 6) for v in result.fold_losses]
    assert row["params"] == LGBM_DEFAULT and row["error"] is None


def test_a_regression_trial():
    data, df, _, _ = trial_data("diamonds", "price", "regression", "rmse", rows=1500, k=3)
    result = run_trial(3, FAMILIES["linear"], {"alpha": 1.0}, data, phase="tuning", deadline=far())
    assert result.status == "ok"
    assert result.oof.shape == (len(df),) and (result.oof != 0).all()
    assert len(result.fold_losses) == 3
    assert result.loss == pytest.approx(data.metric.loss(data.y, result.oof))
    assert result.loss < data.y.std()  # better than predicting the mean
    assert result.row(data.metric)["rmse"] == pytest.approx(result.loss, abs=1e-6)


def test_a_multiclass_trial_of_a_dense_family():
    data, df, _, _ = trial_data("hpc_jobs", "class", "multiclass", "log_loss", rows=1000, k=3)
    result = run_trial(1, FAMILIES["linear"], {}, data, phase="portfolio", deadline=far())
    assert result.status == "ok"
    assert result.oof.shape == (len(df), 4) and np.allclose(result.oof.sum(axis=1), 1.0)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_trial_past_its_deadline_after_the_first_batch_is_cut(workers, credit, monkeypatch):
    monkeypatch.setenv("MLRE_WORKERS", str(workers))
    data, _, _, _ = credit
    result = run_trial(1, LGBM, LGBM_DEFAULT, data, phase="portfolio", deadline=time.monotonic())
    assert result.status == "cut"
    assert len(result.fold_losses) == workers  # the first batch of folds always runs
    assert result.loss == float("inf")
    assert result.oof is None and result.pipelines is None
    row = result.row(data.metric)
    assert row["roc_auc"] is None and len(row["fold_scores"]) == workers


@pytest.mark.parametrize("name", ["lightgbm", "extra_trees", "mlp"])
def test_folds_fitted_in_parallel_threads_give_the_same_predictions(name, credit, monkeypatch):
    # each fit draws its random numbers from its own seed, never from state shared by threads
    data, _, _, _ = credit
    family = FAMILIES[name]
    if not family.available():
        pytest.skip(f"{family.requires} is not installed")
    config = dict(family.portfolio[0])
    monkeypatch.setenv("MLRE_WORKERS", "1")
    one = run_trial(0, family, config, data, phase="portfolio", deadline=far())
    monkeypatch.setenv("MLRE_WORKERS", "2")
    two = run_trial(0, family, config, data, phase="portfolio", deadline=far())
    assert one.status == two.status == "ok"
    np.testing.assert_allclose(one.oof, two.oof, rtol=1e-9)
    assert one.fold_losses == pytest.approx(two.fold_losses)


def test_a_configuration_that_cannot_fit_fails_without_raising(credit):
    data, _, _, _ = credit
    result = run_trial(2, LGBM, {"num_leaves": -5}, data, phase="tuning", deadline=far())
    assert result.status == "failed"
    assert result.error.startswith("LightGBMError") and "num_leaves" in result.error
    assert result.loss == float("inf") and result.oof is None and result.pipelines is None
    row = result.row(data.metric)
    assert row["status"] == "failed" and row["roc_auc"] is None and row["error"] == result.error


def test_a_family_that_cannot_fit_the_folds_fails_without_raising(credit, monkeypatch):
    monkeypatch.setenv("MLRE_WORKERS", "1")  # the failure raised in this process, not a worker
    data, _, _, _ = credit
    result = run_trial(
        4, FAMILIES["knn"], {"n_neighbors": 5000}, data, phase="tuning", deadline=far()
    )
    assert result.status == "failed" and "n_neighbors" in result.error


@pytest.mark.parametrize("workers", [1, 2])
def test_a_pruned_trial_stops_after_the_fold_the_pruner_rejects(workers, credit, monkeypatch):
    monkeypatch.setenv("MLRE_WORKERS", str(workers))
    data, _, _, _ = credit
    calls = []

    def prune(step: int, value: float) -> bool:
        calls.append((step, value))
        return step == 1

    result = run_trial(
        5, FAMILIES["linear"], {}, data, phase="tuning", deadline=far(), should_prune=prune
    )
    assert result.status == "pruned"
    # the pruner is asked about the folds in order, with the number of folds done less one
    assert [s for s, _ in calls] == [0, 1]
    # one worker never starts the third fold; with two, a later fold that finished before the
    # first two were both in is kept, and one still running when the pruner says no is dropped
    n = len(result.fold_losses)
    assert n == 2 if workers == 1 else 2 <= n < 5
    # and the running mean of the first two folds' losses (fold_losses are in fold order)
    assert calls[-1][1] == pytest.approx(np.mean(result.fold_losses[:2]))
    assert result.oof is None and result.loss == float("inf")


class FirstFoldLast(LocalExecutor):
    """A backend that hands back a trial's first fold only once every other is in (a cluster
    node that happened to be slow)."""

    def __init__(self) -> None:
        super().__init__(workers=5)
        self.first: Any = None

    def submit(self, fn: Any, *args: Any, deadline: float | None = None) -> Any:
        job = super().submit(fn, *args, deadline=deadline)
        self.first = self.first or job
        return job

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        ready = super().wait(handles, timeout)
        if self.first in ready and len(handles) > 1:
            rest = [h for h in handles if h is not self.first]
            ready = [h for h in ready if h is not self.first] or super().wait(rest, timeout)
        return ready


def test_the_pruner_judges_every_step_whatever_order_the_folds_arrive_in(credit):
    data, _, _, _ = credit
    calls = []

    def prune(step: int, value: float) -> bool:
        calls.append(step)
        return step == 0

    executor = FirstFoldLast()
    try:
        result = run_trial(7, FAMILIES["linear"], {}, data, phase="tuning", deadline=far(),
                           should_prune=prune, executor=executor)  # fmt: skip
    finally:
        executor.close()
    # every fold was in before the first: the pruner still has its say at step 0, as it would
    # have had had the first fold come in first, so a seed gives the same search on any backend
    assert calls == [0] and result.status == "pruned"


def test_a_trial_the_pruner_keeps_runs_every_fold(credit, monkeypatch):
    monkeypatch.setenv("MLRE_WORKERS", "1")
    data, _, _, _ = credit
    calls = []
    result = run_trial(
        6,
        FAMILIES["linear"],
        {},
        data,
        phase="tuning",
        deadline=far(),
        should_prune=lambda step, value: calls.append(step) or False,
    )
    assert result.status == "ok" and len(result.fold_losses) == 5
    assert calls == [0, 1, 2, 3]  # not asked after the last fold: the trial is complete


# --------------------------------------------------------------------------- the search


@pytest.fixture(scope="module")
def searched():
    """A 15-second search on the training part of german_credit, with a holdout it never saw."""
    df = dataset("german_credit")
    contract = audit(df, "credit").contract
    plan = FeaturePlan.from_contract(contract)
    classes = np.array(sorted(df["credit"].unique()), dtype=object)
    y = np.searchsorted(classes.astype(int), df["credit"].to_numpy())
    split = outer_holdout(df, y, task="binary", fraction=0.2, seed=0)
    train = df.iloc[split.train].reset_index(drop=True)
    folds = cv_folds(y[split.train], task="binary", k=5, seed=0)
    data = TrialData(
        train[plan.columns], y[split.train], folds, "binary", 2, plan, get_metric("roc_auc"), 0
    )
    seen: list[TrialResult] = []
    held: dict[int, Any] = {}  # what each candidate held when its trial ended

    def on_trial(t: TrialResult) -> None:
        seen.append(t)
        for s in seen:  # candidates are written out beside the search, as it goes on
            if isinstance(s.pipelines, Spilled) and s.id not in held:
                held[s.id] = (s.pipelines.path, os.path.getsize(s.pipelines.path))

    result, model = run_search(data, 15, on_trial=on_trial, classes=classes, contract=contract)
    return result, model, data, seen, df.iloc[split.test], y[split.test], held


def test_search_returns_an_ensemble_whose_weights_sum_to_one(searched):
    result, model, data, _, _, _, _ = searched
    assert isinstance(model, MlreModel) and model.task == "binary" and model.metric == "roc_auc"
    # a member has weight, or (in a stacked model) a part in the blend the second layer reads
    reads = model.level_one or [0.0] * len(model.members)
    assert model.members and all(
        m.weight > 0 or r > 0 for m, r in zip(model.members, reads, strict=True)
    )
    assert sum(m.weight for m in model.members) == pytest.approx(1.0)
    assert model.members == result.members
    assert all(len(m.pipelines) == len(data.folds) for m in model.members)
    # the ensemble is at least as good out of fold as the best single configuration
    assert result.loss <= result.best_single_loss
    assert result.best_single_loss == min(t.loss for t in result.finished)
    assert set(result.ensemble) <= {t.id for t in result.finished}
    assert sum(result.ensemble.values()) == pytest.approx(1.0)


def test_search_frees_the_fitted_models_the_ensemble_does_not_use(searched):
    result, _, _, _, _, _, _ = searched
    kept = {t.id for t in result.trials if t.pipelines is not None}
    assert kept == set(result.ensemble)
    # how many candidates finish depends on the machine's speed; any the ensemble left out
    # hold nothing any more
    assert all(t.oof is None for t in result.trials if t.id not in kept)


def test_search_keeps_its_candidates_on_disk_until_the_ensemble(searched):
    result, model, _, _, _, _, held = searched
    # candidates waited on disk, not in memory, while later trials were fitted (one the
    # ensemble left out at once was freed and never written, and one that finished in the
    # search's last seconds stays in memory)
    assert held and set(held) <= {t.id for t in result.finished}
    assert all(size > 0 for _, size in held.values())
    # the members came back from those files (the final model predicts with them) and the
    # scratch folder is gone
    assert all(isinstance(p, Pipeline) for m in model.members for p in m.pipelines)
    assert not any(os.path.exists(path) for path, _ in held.values())
    assert not os.path.exists(os.path.dirname(next(iter(held.values()))[0]))


def test_search_keeps_a_leaderboard_of_every_trial(searched):
    result, _, data, seen, _, _, _ = searched
    assert result.trials and seen == result.trials  # on_trial saw each trial as it ended
    # ids are given as trials start, the list is in the order they ended
    assert sorted(t.id for t in result.trials) == list(range(len(result.trials)))
    board = pd.DataFrame([t.row(data.metric) for t in result.trials])
    assert {"trial", "family", "phase", "status", "roc_auc", "fold_scores", "params"} <= set(
        board.columns
    )
    assert set(board["status"]) <= {"ok", "cut", "pruned", "failed"}
    assert set(board["family"]) <= set(FAMILIES)
    assert set(board["phase"]) <= {"portfolio", "tuning", "stacking"}
    ok = board[board["status"] == "ok"]
    assert len(ok) >= 2 and ok["roc_auc"].between(0.6, 1.0).all()
    # the first trial is the proven LightGBM default
    assert board["family"].iloc[0] == "lightgbm" and board["params"].iloc[0] == LGBM_DEFAULT


def test_searched_model_predicts_the_holdout(searched):
    _, model, _, _, holdout, y_holdout, _ = searched
    labels = model.predict(holdout)
    assert set(labels) <= {1, 2}
    proba = model.predict_proba(holdout)
    assert proba.shape == (len(holdout), 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert get_metric("roc_auc")(y_holdout, proba) > 0.7


def test_search_with_no_time_falls_back_to_a_linear_baseline(credit):
    data, df, classes, contract = credit
    result, model = run_search(data, 0, classes=classes, contract=contract)
    assert [(t.family, t.phase, t.status) for t in result.trials] == [("linear", "baseline", "ok")]
    assert [(m.family, m.weight) for m in model.members] == [("linear", 1.0)]
    assert set(model.predict(df.head(20))) <= set(classes)


def test_search_only_uses_the_families_asked_for(credit):
    data, _, classes, contract = credit
    result, model = run_search(
        data, 4, families=["linear", "knn"], classes=classes, contract=contract
    )
    assert {t.family for t in result.trials} <= {"linear", "knn"}
    assert {m.family for m in model.members} <= {"linear", "knn"}
    assert sum(m.weight for m in model.members) == pytest.approx(1.0)


def test_a_candidate_dropped_while_it_is_written_out_stays_dropped(credit):
    from mlre.search.engine import Search

    data = credit[0]
    search = Search(data, time.monotonic() + 60)
    try:
        pipelines = [{"fold": k} for k in range(3)]
        kept = TrialResult(0, "lightgbm", {}, "portfolio", pipelines=pipelines)
        dropped = TrialResult(1, "lightgbm", {}, "portfolio", pipelines=[{"fold": 0}])
        search._write(kept, pipelines)
        assert isinstance(kept.pipelines, Spilled) and kept.pipelines.load() == pipelines
        # the ensemble let this one go while its file was being written: it stays gone
        in_flight = dropped.pipelines
        search._forget(dropped)
        search._write(dropped, in_flight)
        assert dropped.pipelines is None and os.listdir(search.scratch) == ["trial-0.pkl"]
        search._forget(kept)
        assert kept.pipelines is None and os.listdir(search.scratch) == []
    finally:
        search.close()
        search._cleanup()
    assert not os.path.exists(search.scratch)
