"""The folds a search validates on: k-fold, repeated on small tables, one split on large ones,
and forward in time when the rows are events in time."""

from __future__ import annotations

import numpy as np

from mlre.data.split import cv_folds, repeated_folds, time_folds, validation_split
from mlre.models.families import n_workers
from mlre.spec import Task

#: Above this many training rows the search uses one validation split instead of k folds.
LARGE = 50_000
#: Up to this many training rows the search's cross-validation is repeated this many times.
SMALL = 2_000
REPEATS = 2


def fold_count(n: int, workers: int) -> int:
    """Folds for ``n`` rows: about 5 up to 20,000 rows and 3 above, rounded to a multiple of the
    workers so that no batch of parallel fits leaves a core idle (4 on two cores: 5 folds
    would take three rounds of fits, the last one on a single core)."""
    base = 5 if n <= 20_000 else 3
    if workers <= 1 or base % workers == 0:
        return base
    multiples = [m for m in range(workers, 11, workers) if m >= 3]
    if not multiples:
        return base
    return min(multiples, key=lambda m: (abs(m - base), m))


def folds_for(
    y: np.ndarray,
    task: Task,
    seed: int,
    groups: np.ndarray | None,
    workers: int | None = None,
    times: np.ndarray | None = None,
    gap: int = 0,
) -> tuple[list, str]:
    """k-fold cross-validation on medium data, repeated on small data (where one round's
    estimate is noisy enough for a search to fit its folds), one validation split on large.
    With ``times`` (the rows in time order) every fold goes forward: expanding windows, or the
    latest rows as the validation split."""
    n = len(y)
    k = fold_count(n, n_workers() if workers is None else workers)
    if times is not None:
        skip = f", {gap:,} row(s) skipped before each" if gap else ""
        if n > LARGE:
            folds = time_folds(times, y, task=task, k=1, gap=gap, last_share=0.2)
            return folds, f"time-ordered validation split (the latest 20%{skip})"
        folds = time_folds(times, y, task=task, k=k, gap=gap)
        return folds, f"{len(folds)} expanding-window folds in time order{skip}"
    if n > LARGE and groups is None:
        return validation_split(y, task=task, fraction=0.2, seed=seed), "validation split (20%)"
    if groups is not None:
        folds = cv_folds(y, task=task, k=k, seed=seed, groups=groups)
        return folds, f"{len(folds)}-fold cross-validation by group"
    repeats = REPEATS if n <= SMALL else 1
    folds = repeated_folds(y, task=task, k=k, seed=seed, repeats=repeats)
    k = len(folds) // repeats
    return folds, (f"{repeats}x" if repeats > 1 else "") + f"{k}-fold cross-validation"


def search_sample(y: np.ndarray, task: Task, limit: int, seed: int) -> np.ndarray:
    """Positions of at most ``limit`` training rows (stratified for classification)."""
    if len(y) <= limit:
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    stratify = y if task != "regression" and np.bincount(y).min() >= 2 else None
    picked, _ = train_test_split(
        np.arange(len(y)), train_size=limit, random_state=seed, stratify=stratify
    )
    return np.sort(picked)
