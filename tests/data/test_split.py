"""The outer holdout and the search folds on real data: stratified, time-ordered, grouped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import dataset
from mlre.data.split import check_classes, cv_folds, outer_holdout, validation_split
from mlre.errors import InputError


def codes(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0..k-1 codes in sorted order, and the labels."""
    cat = s.astype("category")
    return cat.cat.codes.to_numpy().astype(int), np.asarray(cat.cat.categories, dtype=object)


def assert_partition(train: np.ndarray, test: np.ndarray, n: int) -> None:
    assert len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(n))


# --------------------------------------------------------------------------- outer holdout


def test_stratified_holdout_keeps_the_class_ratio():
    df = dataset("adult")
    y, _ = codes(df["income-per-year"])
    split = outer_holdout(df, y, task="binary", fraction=0.2, seed=0)
    assert split.method == "stratified"
    assert_partition(split.train, split.test, len(df))
    assert len(split.test) == round(0.2 * len(df))
    overall = y.mean()
    assert abs(y[split.train].mean() - overall) < 1e-3
    assert abs(y[split.test].mean() - overall) < 1e-3
    # positions come back sorted, and the same seed gives the same split
    assert (np.diff(split.train) > 0).all() and (np.diff(split.test) > 0).all()
    again = outer_holdout(df, y, task="binary", fraction=0.2, seed=0)
    assert np.array_equal(again.test, split.test)
    other = outer_holdout(df, y, task="binary", fraction=0.2, seed=1)
    assert not np.array_equal(other.test, split.test)


def test_stratified_holdout_keeps_every_class_of_a_multiclass_target():
    df = dataset("hpc_jobs")
    y, _ = codes(df["class"])
    split = outer_holdout(df, y, task="multiclass", fraction=0.25, seed=3)
    assert split.method == "stratified"
    overall = np.bincount(y) / len(y)
    test_share = np.bincount(y[split.test], minlength=4) / len(split.test)
    assert np.abs(test_share - overall).max() < 0.005


def test_a_class_with_one_row_falls_back_to_a_random_holdout():
    df = dataset("hpc_jobs")
    y, _ = codes(df["class"])
    y = y.copy()
    y[0] = 4  # a fifth class with a single row cannot be stratified
    split = outer_holdout(df, y, task="multiclass", fraction=0.2, seed=0)
    assert split.method == "random"
    assert_partition(split.train, split.test, len(df))


def test_regression_holdout_is_random():
    df = dataset("diamonds", rows=5000)
    y = df["price"].to_numpy(dtype=float)
    split = outer_holdout(df, y, task="regression", fraction=0.3, seed=0)
    assert split.method == "random"
    assert len(split.test) == 1500
    assert_partition(split.train, split.test, len(df))


@pytest.mark.parametrize(
    ("name", "column", "target"),
    [
        ("compas_recidivism", "compas_screening_date", "two_year_recid"),
        ("hotel_rates", "arrival_date", "avg_price_per_room"),
    ],
)
def test_time_ordered_holdout_tests_on_the_latest_rows(name: str, column: str, target: str):
    df = dataset(name).sample(frac=1.0, random_state=0).reset_index(drop=True)
    y = df[target].to_numpy()
    task = "regression" if name == "hotel_rates" else "binary"
    split = outer_holdout(df, y, task=task, fraction=0.2, seed=0, time_column=column)
    assert split.method == "time-ordered"
    assert_partition(split.train, split.test, len(df))
    # a fifth of the rows, and the rows of the last training timestamp moved to the test side:
    # one date is never on both sides
    assert round(0.2 * len(df)) <= len(split.test) < 0.25 * len(df)
    when = pd.to_datetime(df[column])
    assert when.iloc[split.test].min() > when.iloc[split.train].max()
    # both parts come in time order
    assert when.iloc[split.train].is_monotonic_increasing
    assert when.iloc[split.test].is_monotonic_increasing
    # the seed plays no part in a time split
    again = outer_holdout(df, y, task=task, fraction=0.2, seed=7, time_column=column)
    assert np.array_equal(again.test, split.test)


def test_grouped_holdout_keeps_schools_whole():
    df = dataset("chem97_alevel")
    y, _ = codes(df["score"].astype(str))
    split = outer_holdout(df, y, task="multiclass", fraction=0.2, seed=0, group_column="school")
    assert split.method == "grouped"
    assert_partition(split.train, split.test, len(df))
    train_schools = set(df["school"].iloc[split.train])
    test_schools = set(df["school"].iloc[split.test])
    assert train_schools and test_schools and not train_schools & test_schools
    # a fifth of the schools is held out
    assert len(test_schools) == pytest.approx(0.2 * df["school"].nunique(), abs=1)


# --------------------------------------------------------------------------- check_classes


def test_check_classes_accepts_a_normal_split():
    df = dataset("german_credit")
    y, classes = codes(df["credit"])
    split = outer_holdout(df, y, task="binary", fraction=0.2, seed=0)
    check_classes(y[split.train], y[split.test], classes)
    check_classes(y[split.train], None, classes)


def test_check_classes_refuses_a_single_training_class():
    df = dataset("german_credit")
    labels = df["credit"].to_numpy()
    classes = np.array(
        sorted(pd.unique(labels)), dtype=object
    )  # numpy integers, as mlre keeps them
    y = np.searchsorted(classes.astype(int), labels)
    with pytest.raises(InputError, match="single class") as err:
        check_classes(y[y == 0], y, classes)
    # the label as the user wrote it, not a numpy repr
    assert err.value.message == "the training part has a single class (1)"
    assert err.value.hint


def test_check_classes_refuses_test_labels_unseen_in_training():
    df = dataset("hpc_jobs")
    y, classes = codes(df["class"])
    large = list(classes).index("L")
    train, test = y[: len(y) // 2], y[len(y) // 2 :]
    with pytest.raises(InputError, match="never seen in training") as err:
        check_classes(train[train != large], test, classes)
    assert "'L'" in err.value.message and err.value.hint
    # unseen in the test part only is fine: the model just never predicts it there
    check_classes(train, test[test != large], classes)


# --------------------------------------------------------------------------- search folds


def test_cv_folds_are_stratified_and_cover_every_row_once():
    df = dataset("adult", rows=10_000)
    y, _ = codes(df["income-per-year"])
    folds = cv_folds(y, task="binary", k=5, seed=0)
    assert len(folds) == 5
    seen = np.concatenate([va for _, va in folds])
    assert np.array_equal(np.sort(seen), np.arange(len(y)))
    for tr, va in folds:
        assert_partition(tr, va, len(y))
        assert abs(y[va].mean() - y.mean()) < 0.005


def test_cv_folds_shrink_k_to_the_smallest_class():
    df = dataset("hpc_jobs")
    y, _ = codes(df["class"])
    y = y.copy()
    y[:3] = 4  # a class with three rows allows three stratified folds, not five
    folds = cv_folds(y, task="multiclass", k=5, seed=0)
    assert len(folds) == 3
    for _, va in folds:
        assert (y[va] == 4).sum() == 1


def test_cv_folds_for_regression():
    y = dataset("diamonds", rows=3000)["price"].to_numpy(dtype=float)
    folds = cv_folds(y, task="regression", k=4, seed=0)
    assert len(folds) == 4
    assert np.array_equal(np.sort(np.concatenate([va for _, va in folds])), np.arange(len(y)))


def test_grouped_cv_folds_keep_groups_disjoint():
    df = dataset("chem97_alevel", rows=6000)
    y, _ = codes(df["score"].astype(str))
    groups = df["school"].astype(str).to_numpy()
    folds = cv_folds(y, task="multiclass", k=5, seed=0, groups=groups)
    assert len(folds) == 5
    for tr, va in folds:
        assert_partition(tr, va, len(y))
        assert not set(groups[tr]) & set(groups[va])
    # stratified by class as well as grouped: every class in every validation fold
    for _, va in folds:
        assert set(y[va]) == set(y)
    # regression by group
    gcse = df["gcsescore"].to_numpy(dtype=float)
    for tr, va in cv_folds(gcse, task="regression", k=5, seed=0, groups=groups):
        assert not set(groups[tr]) & set(groups[va])


def test_grouped_cv_folds_never_ask_for_more_folds_than_groups():
    df = dataset("chem97_alevel")
    df = df[df["school"].isin(df["school"].unique()[:3])].reset_index(drop=True)
    y = df["gcsescore"].to_numpy(dtype=float)
    groups = df["school"].astype(str).to_numpy()
    folds = cv_folds(y, task="regression", k=5, seed=0, groups=groups)
    assert len(folds) == 3
    assert [len(set(groups[va])) for _, va in folds] == [1, 1, 1]


def test_validation_split():
    df = dataset("adult", rows=10_000)
    y, _ = codes(df["income-per-year"])
    [(tr, va)] = validation_split(y, task="binary", fraction=0.2, seed=0)
    assert_partition(tr, va, len(y))
    assert len(va) == 2000
    assert abs(y[va].mean() - y.mean()) < 0.002
    assert (np.diff(tr) > 0).all() and (np.diff(va) > 0).all()
    prices = dataset("diamonds", rows=4000)["price"].to_numpy(dtype=float)
    [(tr, va)] = validation_split(prices, task="regression", fraction=0.25, seed=0)
    assert_partition(tr, va, len(prices))
    assert len(va) == 1000
