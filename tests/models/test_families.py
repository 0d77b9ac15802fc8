"""Every model family on every task with real data: fit, predict, pickle, and serve as MlreModel."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import joblib
import numpy as np
import optuna
import pandas as pd
import pytest
import threadpoolctl
from sklearn.pipeline import Pipeline

from helpers import audit, dataset, encoded
from mlre.evaluate.metrics import get_metric, naive_prediction
from mlre.features import FeaturePlan, make_preprocessor
from mlre.models import FAMILIES, Family, available_families
from mlre.models.families import INTERPRETABLE_ORDER, MAX_ROUNDS, PORTFOLIO_ORDER
from mlre.models.final import Member, MlreModel, align_proba, member_predict

FAMILY_NAMES = [f.name for f in available_families()]
TASKS = ["binary", "multiclass", "regression"]
# a metric each task's fitted families must beat the naive baseline on (not log loss: a
# distance-weighted k-NN gives hard zeros, so its log loss can be worse than the class frequencies)
QUALITY = {"binary": "roc_auc", "multiclass": "roc_auc", "regression": "rmse"}


@dataclass
class Task:
    """A real data set split 70/30, its feature plan and encoded target."""

    task: str
    df: pd.DataFrame
    plan: FeaturePlan
    contract: object
    y: np.ndarray
    classes: np.ndarray | None
    train: np.ndarray
    valid: np.ndarray

    @property
    def n_classes(self) -> int:
        return 0 if self.classes is None else len(self.classes)


def _task(task: str) -> Task:
    name, target, rows = {
        "binary": ("german_credit", "credit", None),
        "multiclass": ("hpc_jobs", "class", 600),
        "regression": ("diamonds", "price", 1500),
    }[task]
    df = dataset(name, rows=rows)
    contract = audit(df, target).contract
    plan = FeaturePlan.from_contract(contract)
    y, classes = encoded(df, target, task)
    cut = int(len(df) * 0.7)
    positions = np.random.default_rng(0).permutation(len(df))
    return Task(task, df, plan, contract, y, classes, positions[:cut], positions[cut:])


@pytest.fixture(scope="module")
def tasks() -> dict[str, Task]:
    return {t: _task(t) for t in TASKS}


@dataclass
class Fitted:
    prep: Pipeline
    est: object
    X_va: pd.DataFrame
    pred: np.ndarray


@pytest.fixture(scope="module")
def fitted(tasks):
    """Fit each (family, task) once with its first portfolio configuration; shared by the tests."""
    cache: dict[tuple[str, str], Fitted] = {}

    def get(family: str, task: str) -> Fitted:
        if (family, task) not in cache:
            fam, t = FAMILIES[family], tasks[task]
            X = t.df[t.plan.columns]
            prep = make_preprocessor(t.plan, fam.style)
            X_tr = prep.fit_transform(X.iloc[t.train])
            X_va = prep.transform(X.iloc[t.valid])
            est = fam.build(task, dict(fam.portfolio[0]), 0)
            deadline = time.monotonic() + 60
            est = fam.fit(est, X_tr, t.y[t.train], X_va, t.y[t.valid], deadline=deadline)
            pred = member_predict(est, X_va, task, t.n_classes)
            cache[family, task] = Fitted(prep, est, X_va, pred)
        return cache[family, task]

    return get


def test_every_family_is_available_and_has_a_portfolio():
    assert set(FAMILY_NAMES) == set(FAMILIES)
    for family in FAMILIES.values():
        assert family.portfolio and family.style in ("trees", "dense", "plain")
    for name, index in [*PORTFOLIO_ORDER, *INTERPRETABLE_ORDER]:
        assert index < len(FAMILIES[name].portfolio), (name, index)
    # the default portfolio is for accuracy; glass-box families wait for an interpretable run
    assert not {name for name, _ in PORTFOLIO_ORDER} & {
        n for n, f in FAMILIES.items() if f.interpretable
    }
    assert available_families(["linear", "knn"]) == [FAMILIES["linear"], FAMILIES["knn"]]
    missing = Family("nope", "dense", "no_such_library_xyz", FAMILIES["linear"].build, None)
    assert not missing.available()


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_fits_and_predicts(family: str, task: str, tasks, fitted):
    t = tasks[task]
    f = fitted(family, task)
    n = len(t.valid)
    y_va = t.y[t.valid]
    if task == "regression":
        assert f.pred.shape == (n,) and np.isfinite(f.pred).all()
        naive = naive_prediction(task, t.y[t.train], n)
    else:
        assert f.pred.shape == (n, t.n_classes)
        assert ((f.pred >= 0) & (f.pred <= 1)).all()
        assert np.allclose(f.pred.sum(axis=1), 1.0)
        assert list(f.est.classes_) == list(range(t.n_classes))
        labels = np.asarray(f.est.predict(f.X_va)).ravel()
        assert set(labels) <= set(range(t.n_classes))
        naive = naive_prediction(task, t.y[t.train], n, t.n_classes)
    metric = get_metric(QUALITY[task])
    assert metric.loss(y_va, f.pred) < metric.loss(y_va, naive)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_fitted_estimator_pickles_and_predicts_the_same(family: str, task: str, tasks, fitted):
    f = fitted(family, task)
    buffer = io.BytesIO()
    joblib.dump(f.est, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    again = member_predict(loaded, f.X_va, task, tasks[task].n_classes)
    np.testing.assert_allclose(again, f.pred, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "catboost"])
def test_boosted_trees_stop_early_and_at_the_deadline(family: str, tasks, fitted):
    fam, t = FAMILIES[family], tasks["binary"]
    X = t.df[t.plan.columns]
    prep = make_preprocessor(t.plan, fam.style)
    X_tr, X_va = prep.fit_transform(X.iloc[t.train]), prep.transform(X.iloc[t.valid])

    def rounds(est) -> int:
        if family == "lightgbm":
            return est.booster_.num_trees()
        if family == "xgboost":
            return est.get_booster().num_boosted_rounds()
        return est.model_.tree_count_

    # early stopping on the validation part: far fewer rounds than the maximum
    assert rounds(fitted(family, "binary").est) < MAX_ROUNDS / 5
    # a deadline already passed: one round, and still a usable model
    est = fam.build("binary", dict(fam.portfolio[0]), 0)
    est = fam.fit(est, X_tr, t.y[t.train], X_va, t.y[t.valid], deadline=time.monotonic() - 1)
    assert rounds(est) == 1
    proba = member_predict(est, X_va, "binary", 2)
    assert proba.shape == (len(t.valid), 2) and np.allclose(proba.sum(axis=1), 1.0)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_search_space_gives_buildable_parameters(family: str, task: str):
    fam = FAMILIES[family]
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    params = fam.space(trial, task)
    assert params and set(params) == set(trial.params)
    est = fam.build(task, params, 0)
    assert hasattr(est, "fit") and hasattr(est, "predict")


class OpenMPProbe:
    """An estimator that records how many OpenMP threads it may use while it fits."""

    def fit(self, X, y):
        self.openmp_threads_ = {
            lib["filepath"]: lib["num_threads"]
            for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "openmp"
        }
        return self

    def predict(self, X):
        return np.zeros(len(X))


@pytest.mark.parametrize("threads", ["1", "2"])
def test_fitting_caps_openmp_threads_at_mlre_threads(threads: str, monkeypatch):
    # HistGradientBoosting has no thread count of its own: on a busy 2-core machine its default of
    # one OpenMP thread per core made a 1-second fit take over a minute
    monkeypatch.setenv("MLRE_THREADS", threads)
    probe = Family("probe", "dense", "sklearn", lambda task, p, seed: OpenMPProbe(), None)
    X = pd.DataFrame({"x": np.arange(10.0)})
    est = probe.fit(probe.build("regression", {}, 0), X, np.arange(10.0), None, None, 0.0)
    assert est.openmp_threads_ and set(est.openmp_threads_.values()) == {int(threads)}


def _member(family: str, task: str, weight: float, fitted, n: int = 1) -> Member:
    f = fitted(family, task)
    pipelines = [Pipeline([("prep", f.prep), ("model", f.est)])] * n
    return Member(family, dict(FAMILIES[family].portfolio[0]), weight, pipelines)


def test_mlre_model_predicts_original_labels_from_classes(tasks, fitted):
    t = tasks["multiclass"]
    members = [
        _member("lightgbm", "multiclass", 0.6, fitted),
        _member("linear", "multiclass", 0.4, fitted, n=2),
    ]
    model = MlreModel("multiclass", members, t.classes, t.contract, "log_loss")
    raw = t.df.iloc[t.valid]
    proba = model.predict_proba(raw)
    assert proba.shape == (len(raw), 4)
    assert np.allclose(proba.sum(axis=1), 1.0)
    expected = (
        0.6 * fitted("lightgbm", "multiclass").pred + 0.4 * fitted("linear", "multiclass").pred
    )
    np.testing.assert_allclose(proba, expected, rtol=1e-9)
    labels = model.predict(raw)
    assert set(labels) <= {"F", "L", "M", "VF"}
    assert list(model.classes_) == ["F", "L", "M", "VF"]
    assert (labels == model.classes_[proba.argmax(axis=1)]).all()
    # the target column and unknown extra columns are ignored; the raw table is the input
    assert (model.predict(raw.drop(columns=["class"])) == labels).all()
    assert list(model.feature_names_in_) == [c.name for c in t.contract.features]
    assert [d["family"] for d in model.describe()] == ["lightgbm", "linear"]
    assert [d["bagged_models"] for d in model.describe()] == [1, 2]
    assert model.fit(raw) is model
    # it pickles as one object
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    assert (joblib.load(buffer).predict(raw) == labels).all()


def test_mlre_model_binary_labels_are_the_data_sets_own(tasks, fitted):
    t = tasks["binary"]
    model = MlreModel(
        "binary", [_member("xgboost", "binary", 1.0, fitted)], t.classes, t.contract, "roc_auc"
    )
    raw = t.df.iloc[t.valid]
    labels = model.predict(raw)
    assert set(labels) <= {1, 2}
    accuracy = (labels == raw["credit"].to_numpy()).mean()
    assert accuracy > 0.65


def test_mlre_model_regression(tasks, fitted):
    t = tasks["regression"]
    members = [
        _member("lightgbm", "regression", 0.5, fitted),
        _member("extra_trees", "regression", 0.5, fitted),
    ]
    model = MlreModel("regression", members, None, t.contract, "rmse")
    raw = t.df.iloc[t.valid]
    pred = model.predict(raw)
    expected = (
        0.5 * fitted("lightgbm", "regression").pred + 0.5 * fitted("extra_trees", "regression").pred
    )
    np.testing.assert_allclose(pred, expected, rtol=1e-9)
    with pytest.raises(AttributeError):
        model.predict_proba(raw)
    with pytest.raises(AttributeError):
        _ = model.classes_


def test_a_fold_missing_a_class_still_gives_every_class_a_column(tasks):
    t = tasks["multiclass"]
    fam = FAMILIES["linear"]
    rare = list(t.classes).index("L")
    train = t.train[t.y[t.train] != rare]
    X = t.df[t.plan.columns]
    prep = make_preprocessor(t.plan, fam.style)
    est = fam.fit(
        fam.build("multiclass", {}, 0),
        prep.fit_transform(X.iloc[train]),
        t.y[train],
        None,
        None,
        deadline=time.monotonic() + 60,
    )
    proba = member_predict(est, prep.transform(X.iloc[t.valid]), "multiclass", 4)
    assert proba.shape == (len(t.valid), 4)
    assert (proba[:, rare] == 0).all() and np.allclose(proba.sum(axis=1), 1.0)
    assert np.array_equal(align_proba(np.eye(2), np.array([0, 3]), 4)[:, [0, 3]], np.eye(2))


def test_catboost_fits_and_predicts_with_missing_categorical_values():
    from mlre.models.adapters import CatBoostModel

    rng = np.random.default_rng(0)
    levels = pd.Categorical(rng.choice(["a", "b", None], size=300), categories=["a", "b"])
    X = pd.DataFrame({"c": levels, "x": rng.normal(size=300)})
    y = ((X["c"] == "a").to_numpy() ^ (X["x"].to_numpy() > 0)).astype(int)
    model = CatBoostModel("binary", {"iterations": 30}, 0).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (300, 2) and np.isfinite(proba).all()


def test_catboost_on_a_small_table_returns_freed_memory_at_once():
    """The allocator option is set before CatBoost's first import on a small table (in a fresh
    interpreter: it is read once), never on a large one, and a user's own value is kept."""
    import os
    import subprocess
    import sys

    script = (
        "import os, sys, numpy as np, pandas as pd\n"
        "from mlre.models.adapters import CatBoostModel\n"
        "rows = int(sys.argv[1])\n"
        "X = pd.DataFrame({'x': np.arange(rows) % 7})\n"
        "CatBoostModel('binary', {'iterations': 2}, 0).fit(X, np.arange(rows) % 2)\n"
        "print(os.environ.get('MIMALLOC_PURGE_DELAY'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MIMALLOC_PURGE_DELAY"}

    def run(rows: int, **extra: str) -> str:
        done = subprocess.run([sys.executable, "-c", script, str(rows)], env=env | extra,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return done.stdout.strip().splitlines()[-1]

    assert run(500) == "0"
    assert run(30_000) == "None"
    assert run(500, MIMALLOC_PURGE_DELAY="25") == "25"
