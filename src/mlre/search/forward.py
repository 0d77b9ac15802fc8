"""What shuffled folds would have claimed: on rows in time order the search validates forward,
and the same configuration, validated on shuffled folds of the same rows, shows how much a
shuffled estimate would have flattered it."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from mlre.data.split import cv_folds
from mlre.models.families import n_workers
from mlre.search.result import SearchResult
from mlre.search.trial import TrialData, fit_fold

#: A shuffled check is run only when its expected time, stretched by this, fits before the
#: deadline.
MARGIN = 1.5


def shuffled_check(data: TrialData, search: SearchResult, deadline: float) -> dict[str, Any] | None:
    """The best single configuration's estimate on shuffled folds of the searched rows, beside
    its forward estimate, with the noise of both (1.96 standard errors of their fold scores);
    None when there is no such configuration or no time for it."""
    ok = [t for t in search.trials if t.status == "ok" and t.phase != "stacking" and t.fold_losses]
    if not ok:
        return None
    best = min(ok, key=lambda t: t.loss)
    k = max(2, len(best.fold_losses))
    folds = cv_folds(data.y, task=data.task, k=k, seed=data.seed)
    # forward folds train on fewer rows than shuffled ones: scale the seconds by the rows
    forward_rows = float(np.mean([len(tr) for tr, _ in data.folds]))
    shuffled_rows = float(np.mean([len(tr) for tr, _ in folds]))
    per_fold = best.fit_seconds / max(1, len(best.fold_losses)) * shuffled_rows / forward_rows
    workers = max(1, min(n_workers(), len(folds)))
    if time.monotonic() + MARGIN * per_fold * len(folds) / workers > deadline:
        return None
    shuffled = replace(data, folds=folds)
    from mlre.search.executor import LocalExecutor

    pool = LocalExecutor(workers)
    try:
        jobs = [
            pool.submit(fit_fold, best.family, best.params, shuffled, i, deadline=deadline)
            for i in range(len(folds))
        ]
        outs = [pool.result(j) for j in jobs]
    finally:
        pool.close()
    oof: np.ndarray | None = None
    losses = []
    for (_, valid), (_, pred, _, _) in zip(folds, outs, strict=True):
        if oof is None:
            oof = np.zeros((len(data.y), *np.shape(pred)[1:]))
        oof[valid] = pred
        losses.append(data.metric.loss(data.y[valid], pred))
    assert oof is not None
    metric = data.metric
    forward = metric.to_score(best.loss)
    score = metric.to_score(metric.loss(data.y, oof))
    se = np.hypot(_se(best.fold_losses), _se(losses))
    flattered = (score - forward) if metric.greater_is_better else (forward - score)
    return {
        "family": best.family,
        "trial": best.id,
        "forward": float(forward),
        "shuffled": float(score),
        "noise": float(1.96 * se),
        # how much better shuffled folds make the same configuration look, as a share of the
        # forward estimate (negative: worse)
        "flattery": float(flattered / max(abs(forward), 1e-12)),
        "beyond_noise": bool(abs(score - forward) > 1.96 * se),
    }


def _se(losses: list[float]) -> float:
    return float(np.std(losses, ddof=1) / np.sqrt(len(losses))) if len(losses) > 1 else 0.0
