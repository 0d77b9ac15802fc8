"""The search job: sampling large training parts, refitting the chosen models on every row."""

from __future__ import annotations

import time

import numpy as np

import mlre
from helpers import audit, dataset
from mlre.evaluate.metrics import get_metric
from mlre.features import FeaturePlan
from mlre.search.engine import run_search
from mlre.search.folds import folds_for
from mlre.search.job import encode_target, refit_on_all
from mlre.search.trial import TrialData

ADULT = "income-per-year"


def test_a_large_training_part_is_searched_on_a_sample():
    result = mlre.run(dataset("adult", rows=9000), target=ADULT, time_budget=25, track=False,
                      search_rows=2000, families=["linear"])  # fmt: skip
    assert "on a 2,000-row sample of 7,200" in result.scheme["search"]
    assert result.holdout_score > 0.8


def _searched(rows: int):
    df = dataset("adult", rows=6000)
    contract = audit(df.head(1000), ADULT).contract
    plan = FeaturePlan.from_contract(contract)
    enc = encode_target(df[ADULT], "binary")
    X, y = df[plan.columns], enc.y
    metric = get_metric("roc_auc")
    folds, _ = folds_for(y[:rows], "binary", 0, None)
    sample = TrialData(X.iloc[:rows], y[:rows], folds, "binary", 2, plan, metric, 0)
    search, model = run_search(sample, 8, families=["lightgbm"], classes=enc.classes,
                               contract=contract)  # fmt: skip
    full = TrialData(X, y, [], "binary", 2, plan, metric, 0)
    return search, model, full


def test_refit_on_all_rows_replaces_the_bagged_fold_models():
    search, model, full = _searched(1500)
    before = model.predict_proba(full.X.iloc[:50])
    assert refit_on_all(model, search, full, 1500, time.monotonic() + 120)
    assert all(len(m.pipelines) == 1 for m in model.members)
    after = model.predict_proba(full.X.iloc[:50])
    assert not np.allclose(before, after) and np.allclose(after.sum(axis=1), 1)


def test_no_refit_when_time_is_short():
    search, model, full = _searched(1500)
    folds_before = [len(m.pipelines) for m in model.members]
    assert not refit_on_all(model, search, full, 1500, time.monotonic() - 1)
    assert [len(m.pipelines) for m in model.members] == folds_before


def test_fold_count_keeps_every_worker_busy():
    from mlre.search.folds import fold_count

    # one worker: 5 folds on small data, 3 on medium
    assert (fold_count(1_000, 1), fold_count(30_000, 1)) == (5, 3)
    # two workers: 4 folds is two full rounds of parallel fits, where 5 would take three
    assert (fold_count(1_000, 2), fold_count(30_000, 2)) == (4, 4)
    assert fold_count(1_000, 8) == 8
    # more workers than sensible folds: the size-based count stays
    assert fold_count(1_000, 16) == 5


def test_folds_for_gives_every_row_one_validation_fold_per_round():
    y = np.arange(5_000) % 2
    folds, scheme = folds_for(y, "binary", 0, None, workers=2)
    assert scheme == "4-fold cross-validation" and len(folds) == 4
    seen = np.concatenate([va for _, va in folds])
    assert sorted(seen) == list(range(5_000))
    # few rows: the cross-validation is repeated, each round shuffled its own way
    small, scheme = folds_for(y[:1_000], "binary", 0, None, workers=2)
    assert scheme == "2x4-fold cross-validation" and len(small) == 8
    for round_ in (small[:4], small[4:]):
        assert sorted(np.concatenate([va for _, va in round_])) == list(range(1_000))
    assert not np.array_equal(small[0][1], small[4][1])
