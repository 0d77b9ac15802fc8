"""The compiled path reads private internals of scikit-learn, LightGBM, XGBoost, CatBoost and
PyTorch only behind one guard per library. Each guard accepts what the installed version fits (an
upgrade that moves those internals fails here, naming the library and its version), and a model
whose internals are not as expected keeps its pipeline: a warning, and the pipeline's answers."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from helpers import audit, awkward, dataset, encoded
from mlre.features import FeaturePlan, make_preprocessor
from mlre.models import FAMILIES
from mlre.models.compiled import (
    catboost_rows,
    compile_pipeline,
    forests,
    hist_gb,
    lgbm,
    mlp_rows,
    xgb,
)
from mlre.models.compiled.predictor import LIBRARY_NAMES, library_version
from mlre.models.final import Member, MlreModel, member_predict

CASES = {
    "binary": ("german_credit", "credit", 300),
    "multiclass": ("hpc_jobs", "class", 300),
    "regression": ("hotel_rates", "avg_price_per_room", 400),  # has a date column
}


def _xgb_problem(est: Any, task: str) -> str | None:
    return xgb.description_problem(json.loads(est.get_booster().save_raw("json")))


#: Per family: the library whose internals its compiled form reads (by module), and what its
#: guard finds wrong in a fitted estimator of it (None: nothing).
GUARDS: dict[str, tuple[str, Callable[[Any, str], str | None]]] = {
    "hist_gb": ("sklearn", lambda est, task: hist_gb.internals_problem(est)),
    "random_forest": ("sklearn", lambda est, task: forests.internals_problem(est.steps[-1][1])),
    "extra_trees": ("sklearn", lambda est, task: forests.internals_problem(est.steps[-1][1])),
    "xgboost": ("xgboost", _xgb_problem),
    "lightgbm": ("lightgbm", lambda est, task: lgbm.internals_problem(est.booster_)),
    "catboost": ("catboost", catboost_rows.internals_problem),
    "mlp": ("torch", lambda est, task: mlp_rows.internals_problem(est)),
}


@functools.cache
def _fit(task: str, family: str):
    """A fitted pipeline of ``family`` (its first portfolio configuration) on a small sample,
    with the held-out rows and what a model needs around it."""
    name, target, rows = CASES[task]
    df = dataset(name, rows=rows)
    contract = audit(df, target).contract
    plan = FeaturePlan.from_contract(contract)
    y, classes = encoded(df, target, task)
    fam = FAMILIES[family]
    prep = make_preprocessor(plan, fam.style)
    cut = int(len(df) * 0.7)
    X = df[plan.columns]
    X_tr, X_va = prep.fit_transform(X.iloc[:cut]), prep.transform(X.iloc[cut:])
    est = fam.build(task, dict(fam.portfolio[0]), 0)
    est = fam.fit(est, X_tr, y[:cut], X_va, y[cut:], deadline=time.monotonic() + 60)
    if family in ("random_forest", "extra_trees"):
        est.steps[-1][1].n_jobs = 1  # trees added in order: the same sums, bit for bit
    pipeline = Pipeline([("prep", prep), ("model", est)])
    return df.iloc[cut:].drop(columns=[target]), pipeline, contract, classes, plan


def _available(family: str) -> None:
    if not FAMILIES[family].available():
        pytest.skip(f"{FAMILIES[family].requires} is not installed")


@pytest.mark.parametrize("task", list(CASES))
@pytest.mark.parametrize("family", list(GUARDS))
def test_each_guard_accepts_what_the_installed_library_fits(family: str, task: str, caplog):
    _available(family)
    _, pipeline, _, _, _ = _fit(task, family)
    module, problem_of = GUARDS[family]
    problem = problem_of(pipeline.named_steps["model"], task)
    assert problem is None, (
        f"{LIBRARY_NAMES.get(module, module)} {library_version(module)} has moved internals "
        f"that mlre.models.compiled reads for {family}: {problem}"
    )
    with caplog.at_level(logging.WARNING, logger="mlre.models.compiled"):
        compiled = compile_pipeline(pipeline, task)
    assert compiled is not None and not caplog.records


def _hist_gb_without_its_tree_routine(monkeypatch, est: Any) -> None:
    # a scikit-learn that moved the routine walking one tree (its own estimator imported it
    # before, so the pipeline still predicts)
    from sklearn.ensemble._hist_gradient_boosting import _predictor

    monkeypatch.delattr(_predictor, "_predict_from_raw_data")


def _forest_trees_without_an_array(monkeypatch, est: Any) -> None:
    # a scikit-learn whose trees no longer have one of the node arrays the walk reads
    monkeypatch.setattr(forests, "TREE_ARRAYS", (*forests.TREE_ARRAYS, "moved_node_array"))


def _xgboost_description_without_split_types(monkeypatch, est: Any) -> None:
    # an XGBoost whose JSON description no longer has each node's split type
    import xgboost

    save_raw = xgboost.Booster.save_raw

    def moved(self, raw_format: str = "ubj") -> bytearray:
        raw = save_raw(self, raw_format)
        if raw_format != "json":
            return raw
        model = json.loads(raw)
        for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
            del tree["split_type"]
        return bytearray(json.dumps(model).encode())

    monkeypatch.setattr(xgboost.Booster, "save_raw", moved)


class _Without:
    """A library handle without some of its functions."""

    def __init__(self, lib: Any, hidden: set[str]) -> None:
        self.lib, self.hidden = lib, hidden

    def __getattr__(self, name: str) -> Any:
        if name in self.hidden:
            raise AttributeError(name)
        return getattr(self.lib, name)


def _lightgbm_without_the_single_row_call(monkeypatch, est: Any) -> None:
    # a LightGBM whose C library no longer has the prepared single-row call
    import lightgbm.basic

    hidden = {"LGBM_BoosterPredictForMatSingleRowFastInit"}
    monkeypatch.setattr(lightgbm.basic, "_LIB", _Without(lightgbm.basic._LIB, hidden))


def _catboost_without_thread_counts(monkeypatch, est: Any) -> None:
    # a CatBoost whose predict calls no longer take a thread count
    model = est.model_
    own = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda data: own(data))


def _mlp_with_a_network_that_is_no_module(monkeypatch, est: Any) -> None:
    # a network that answers as before but is not a torch.nn.Module
    net = est.net_
    monkeypatch.setattr(est, "net_", lambda dense, cats: net(dense, cats))


#: Per family: what makes the internals its compiled form reads unlike what it expects, with
#: the pipeline still predicting as fitted.
BREAKS = {
    "hist_gb": _hist_gb_without_its_tree_routine,
    "random_forest": _forest_trees_without_an_array,
    "extra_trees": _forest_trees_without_an_array,
    "xgboost": _xgboost_description_without_split_types,
    "lightgbm": _lightgbm_without_the_single_row_call,
    "catboost": _catboost_without_thread_counts,
    "mlp": _mlp_with_a_network_that_is_no_module,
}


@pytest.mark.parametrize("family", list(BREAKS))
def test_a_model_whose_internals_moved_keeps_its_pipeline_and_its_answers(
    family: str, monkeypatch, caplog
):
    _available(family)
    raw, pipeline, contract, classes, plan = _fit("binary", family)
    X = awkward(raw, plan)

    def served(model: MlreModel) -> list[np.ndarray]:
        rows = [model.predict_proba(X.iloc[[i]]) for i in range(0, len(X), 10)]
        return [model.predict_proba(X), *rows]

    compiled = MlreModel("binary", [Member(family, {}, 1.0, [pipeline])], classes, contract, "x")
    before = served(compiled)
    assert compiled._compiled()[0] is not None
    BREAKS[family](monkeypatch, pipeline.named_steps["model"])
    model = MlreModel("binary", [Member(family, {}, 1.0, [pipeline])], classes, contract, "x")
    with caplog.at_level(logging.WARNING, logger="mlre.models.compiled"):
        after = served(model)
    assert model._compiled() == [None]
    module = GUARDS[family][0]
    named = f"{LIBRARY_NAMES.get(module, module)} {library_version(module)}: "
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert named in caplog.text and "through its pipeline" in caplog.text
    expected = member_predict(pipeline, X, "binary", 2)
    expected = expected / expected.sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(after[0], expected)
    for got, was in zip(after, before, strict=True):
        np.testing.assert_array_equal(got, was)
