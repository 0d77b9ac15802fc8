"""Honest splits: the outer holdout the search never sees, and the folds the search uses."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import (
    GroupKFold,
    GroupShuffleSplit,
    KFold,
    StratifiedGroupKFold,
    StratifiedKFold,
    train_test_split,
)

from mlre.errors import InputError
from mlre.spec import Task


@dataclass
class Holdout:
    """Row positions of the training part and of the outer holdout, and how they were chosen.

    A time-ordered split gives both in time order, and ``skipped``: the rows of the gap between
    them (in neither part; a refit on every labelled row learns from them too)."""

    train: np.ndarray
    test: np.ndarray
    method: str
    skipped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))


def parse_times(values: pd.Series) -> pd.Series:
    """A column's values as timestamps (NaT where missing or unreadable), in one time zone."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        out = values
    else:
        out = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _time_cut(times: np.ndarray, cut: int) -> int:
    """``cut`` moved back to where the time changes, so that rows of one timestamp stay on
    one side (the later one) of a split; ``cut`` itself when every earlier row shares it."""
    start = cut
    while start > 0 and times[start - 1] == times[start]:
        start -= 1
    return start if start > 0 else cut


def holdout_size(n: int, fraction: float) -> int:
    """Rows an outer holdout of ``fraction`` keeps back from ``n`` (at least one)."""
    return max(1, round(n * fraction))


def outer_holdout(
    df: pd.DataFrame,
    y: np.ndarray,
    *,
    task: Task,
    fraction: float,
    seed: int,
    time_column: str | None = None,
    group_column: str | None = None,
    gap: int = 0,
) -> Holdout:
    """Split off the holdout: latest rows with a time column (after ``gap`` rows left out),
    whole groups with a group column, stratified by class for classification, random
    otherwise."""
    n = len(df)
    positions = np.arange(n)
    n_test = holdout_size(n, fraction)
    if time_column is not None:
        times = parse_times(df[time_column]).to_numpy()
        order = np.argsort(times, kind="stable")
        cut = _time_cut(times[order], n - n_test)
        if cut - gap < MIN_TRAIN_ROWS:
            raise InputError(
                f"a gap of {gap:,} row(s) before the latest {n - cut:,} leaves "
                f"{max(0, cut - gap):,} row(s) to train on",
                hint=f"use a gap under {max(0, cut - MIN_TRAIN_ROWS):,} rows, or more data",
            )
        return Holdout(order[: cut - gap], order[cut:], "time-ordered", order[cut - gap : cut])
    if group_column is not None:
        groups = df[group_column].astype(str).to_numpy()
        splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        train, test = next(splitter.split(positions, y, groups))
        return Holdout(train, test, "grouped")
    stratify = y if task != "regression" and np.bincount(y).min() >= 2 else None
    train, test = train_test_split(
        positions, test_size=n_test, random_state=seed, stratify=stratify, shuffle=True
    )
    return Holdout(
        np.sort(train), np.sort(test), "stratified" if stratify is not None else "random"
    )


#: The fewest training rows a search can cross-validate (two folds of two rows).
MIN_TRAIN_ROWS = 4


def check_enough_rows(
    y: np.ndarray, classes: np.ndarray | None, *, fraction: float | None, binary: bool
) -> None:
    """Refuse a labelled table a search cannot be run on at all, even when forced (the audit's
    own errors, which ``force`` overrides, already stop tables too small to score honestly).

    ``fraction``: the share held out (None: a test table is given). A binary target needs two
    rows of each class: a fold without one of them cannot be scored by ROC AUC."""
    n = len(y)
    held = 0 if fraction is None else holdout_size(n, fraction)
    if classes is not None and binary:
        counts = np.bincount(y, minlength=len(classes))
        lone = [_label(classes[c]) for c in np.flatnonzero(counts == 1)]
        if lone:
            raise InputError(
                f"class(es) {', '.join(lone[:5])} have a single labelled row: they can be "
                "neither learned nor tested",
                hint="drop those rows or merge the class into a related one",
            )
    if n - held < MIN_TRAIN_ROWS:
        where = "" if fraction is None else f" once a {fraction:.0%} holdout is kept back"
        raise InputError(
            f"only {n} labelled row(s): {n - held} training row(s){where}, too few to "
            "cross-validate a search",
            hint=f"give at least {MIN_TRAIN_ROWS + held} labelled rows",
        )


def check_classes(y_train: np.ndarray, y_test: np.ndarray | None, classes: np.ndarray) -> None:
    """Refuse a training part with one class, and test labels never seen in training."""
    present = np.unique(y_train)
    if len(present) < 2:
        raise InputError(
            f"the training part has a single class ({_label(classes[present[0]])})",
            hint="the target needs at least two classes with several rows each",
        )
    if y_test is not None:
        unseen = np.setdiff1d(np.unique(y_test), present)
        if len(unseen):
            raise InputError(
                "the test data has label(s) never seen in training: "
                + ", ".join(_label(classes[u]) for u in unseen[:5]),
                hint="a model cannot predict a class it never saw; add such rows to the training data",
            )


def _label(value: object) -> str:
    """A class label as a person wrote it: ``1``, not ``np.int64(1)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def cv_folds(
    y: np.ndarray,
    *,
    task: Task,
    k: int,
    seed: int,
    groups: np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """k folds for the search: stratified for classification, grouped when there are groups."""
    x = np.zeros(len(y))
    classification = task != "regression"
    if classification:
        k = max(2, min(k, int(np.bincount(y)[np.bincount(y) > 0].min())))
    if groups is not None:
        k = min(k, len(np.unique(groups)))
        splitter = (
            StratifiedGroupKFold(k, shuffle=True, random_state=seed)
            if classification
            else GroupKFold(k)
        )
        return list(splitter.split(x, y, groups))
    splitter = (
        StratifiedKFold(k, shuffle=True, random_state=seed)
        if classification
        else KFold(k, shuffle=True, random_state=seed)
    )
    return list(splitter.split(x, y))


def repeated_folds(
    y: np.ndarray, *, task: Task, k: int, seed: int, repeats: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``repeats`` rounds of ``k`` folds, each round shuffled with its own seed: every row is
    validated once per round (repeated cross-validation, for estimates that vary less)."""
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for r in range(repeats):
        out += cv_folds(y, task=task, k=k, seed=seed + 1000 * r)
    return out


def time_folds(
    times: np.ndarray,
    y: np.ndarray,
    *,
    task: Task,
    k: int,
    gap: int = 0,
    last_share: float | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over rows in time order: the rows split into ``k + 1`` blocks,
    each of the last ``k`` validated by a model of every row before it, less the ``gap`` rows
    just before the block. ``last_share``: one fold instead, validating the latest share.
    A block starts where the time changes (one timestamp is never on both sides); a fold with
    too few rows to train on, or (binary) a validation block of one class, is left out."""
    n = len(times)
    if last_share is not None:
        starts = [n - max(1, round(n * last_share))]
        ends = [n]
    else:
        size = n // (k + 1)
        starts = [n - size * (k - i) for i in range(k)]
        ends = [*starts[1:], n]
    folds = []
    for start, end in zip(starts, ends, strict=True):
        start = _time_cut(times, start)
        train_end = start - gap
        if train_end < 2 or end <= start:
            continue
        valid = np.arange(start, end)
        if task == "binary" and len(np.unique(y[valid])) < 2:
            continue
        folds.append((np.arange(train_end), valid))
    if not folds:
        raise InputError(
            f"no forward fold can be cut from {n:,} training rows with a gap of {gap:,}: each "
            "needs earlier rows to train on"
            + (" and both classes among the rows it validates" if task == "binary" else ""),
            hint="use a smaller gap, or more data",
        )
    return folds


def validation_split(
    y: np.ndarray, *, task: Task, fraction: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One train/validation split, for data too large for k-fold search."""
    positions = np.arange(len(y))
    stratify = y if task != "regression" else None
    train, valid = train_test_split(
        positions, test_size=fraction, random_state=seed, stratify=stratify
    )
    return [(np.sort(train), np.sort(valid))]
