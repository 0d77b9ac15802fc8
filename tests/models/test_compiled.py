"""The compiled prediction path gives the pipelines' own predictions, bit for bit, on real data
with the inputs serving meets: single rows, missing values, unseen categories, numbers as text."""

from __future__ import annotations

import io
import json
import time

import joblib
import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from helpers import audit, awkward, dataset, encoded
from mlre.features import FeaturePlan, make_preprocessor
from mlre.models import FAMILIES
from mlre.models.compiled import compile_pipeline
from mlre.models.final import Member, MlreModel, member_predict
from mlre.serve.protocol import records_frame

CASES = {
    "binary": ("german_credit", "credit", 600),
    "multiclass": ("hpc_jobs", "class", 600),
    "regression": ("hotel_rates", "avg_price_per_room", 1500),  # has a date column
}


def _fit(task: str, family: str, seed: int = 0, numeric_only: bool = False):
    name, target, rows = CASES[task]
    df = dataset(name, rows=rows)
    if numeric_only:
        df = df[[*df.drop(columns=[target]).select_dtypes("number").columns, target]]
    contract = audit(df, target).contract
    plan = FeaturePlan.from_contract(contract)
    y, classes = encoded(df, target, task)
    fam = FAMILIES[family]
    prep = make_preprocessor(plan, fam.style)
    cut = int(len(df) * 0.7)
    X = df[plan.columns]
    X_tr = prep.fit_transform(X.iloc[:cut])
    X_va = prep.transform(X.iloc[cut:])
    est = fam.build(task, dict(fam.portfolio[0]), seed)
    est = fam.fit(est, X_tr, y[:cut], X_va, y[cut:], deadline=time.monotonic() + 60)
    return (
        df.iloc[cut:].drop(columns=[target]),
        Pipeline([("prep", prep), ("model", est)]),
        (
            contract,
            classes,
            plan,
        ),
    )


@pytest.mark.parametrize("task", list(CASES))
@pytest.mark.parametrize("family", ["lightgbm", "xgboost", "hist_gb", "catboost"])
def test_compiled_boosters_predict_what_their_pipelines_predict(task: str, family: str):
    raw, pipeline, (contract, classes, plan) = _fit(task, family)
    compiled = compile_pipeline(pipeline, task)
    assert compiled is not None and compiled.kind == family
    n_classes = 0 if classes is None else len(classes)
    model = MlreModel(task, [Member(family, {}, 1.0, [pipeline])], classes, contract, "x")
    model.predict(raw.iloc[:1])
    if family == "xgboost":  # a few rows walk its trees in numpy, except multiclass models
        engaged = model._compiled()[0].predictor.forest is not None
        assert engaged == (task != "multiclass")
    if family == "lightgbm":  # one row goes through LightGBM's prepared single-row call
        assert model._compiled()[0].predictor.single_row is not None
    for X in (raw, awkward(raw, plan)):
        expected = member_predict(pipeline, X, task, n_classes)
        got = model.predict(X) if task == "regression" else model.predict_proba(X)
        if task != "regression":
            expected = expected / expected.sum(axis=1, keepdims=True)
        np.testing.assert_array_equal(got, expected)
        # in batches a service's batcher makes (every row through the few-rows paths)
        batches = [X.iloc[i : i + 5] for i in range(0, len(X), 5)]
        got = np.concatenate([
            model.predict(b) if task == "regression" else model.predict_proba(b) for b in batches
        ])  # fmt: skip
        np.testing.assert_array_equal(got, expected)
        # one row at a time, as a service sees them
        for i in range(0, len(X), max(1, len(X) // 15)):
            one = X.iloc[[i]]
            row = model.predict(one) if task == "regression" else model.predict_proba(one)
            np.testing.assert_array_equal(row[0], expected[i])
            # and as a service reads it: the JSON values, untyped (JSON keeps ten decimals, so
            # the pipeline's own answer on the same values is what to match)
            served = records_frame(json.loads(one.to_json(orient="records", date_format="iso")))
            assert set(served.dtypes) == {np.dtype(object)}
            row = model.predict(served) if task == "regression" else model.predict_proba(served)
            own = member_predict(pipeline, served, task, n_classes)
            own = own if task == "regression" else own / own.sum(axis=1, keepdims=True)
            np.testing.assert_array_equal(row[0], own[0])


def test_other_pipelines_are_not_compiled_and_keep_their_own_path():
    raw, pipeline, (contract, classes, _) = _fit("binary", "knn")
    assert compile_pipeline(pipeline, "binary") is None
    _, booster, _ = _fit("binary", "lightgbm")
    model = MlreModel(
        "binary",
        [Member("knn", {}, 0.5, [pipeline]), Member("lightgbm", {}, 0.5, [booster])],
        classes,
        contract,
        "roc_auc",
    )
    expected = 0.5 * member_predict(pipeline, raw, "binary", 2) + 0.5 * member_predict(
        booster, raw, "binary", 2
    )
    np.testing.assert_allclose(model.predict_proba(raw), expected, rtol=1e-12)


def test_the_compiled_form_is_not_pickled_and_is_rebuilt_after_loading():
    raw, pipeline, (contract, classes, _) = _fit("binary", "xgboost")
    model = MlreModel("binary", [Member("xgboost", {}, 1.0, [pipeline])], classes, contract, "x")
    before = model.predict_proba(raw)
    assert "compiled_" in model.__dict__
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert "compiled_" not in loaded.__dict__
    np.testing.assert_array_equal(loaded.predict_proba(raw), before)


def test_an_ensemble_builds_one_matrix_per_column_plan_and_predicts_what_its_pipelines_do():
    raw, lgbm, (contract, classes, plan) = _fit("binary", "lightgbm")
    _, xgb, _ = _fit("binary", "xgboost")
    _, hgb, _ = _fit("binary", "hist_gb")
    compiled = [compile_pipeline(p, "binary") for p in (lgbm, xgb, hgb)]
    # the two boosters read the same columns the same way; HistGradientBoosting its own codes
    assert compiled[0].matrix_key == compiled[1].matrix_key != compiled[2].matrix_key
    members = [Member("lightgbm", {}, 0.5, [lgbm]), Member("xgboost", {}, 0.3, [xgb]),
               Member("hist_gb", {}, 0.2, [hgb])]  # fmt: skip
    model = MlreModel("binary", members, classes, contract, "roc_auc")
    for X in (raw, awkward(raw, plan)):
        expected = sum(m.weight * member_predict(m.pipelines[0], X, "binary", 2) for m in members)
        expected = expected / expected.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-12)
        for i in range(0, len(X), 20):
            np.testing.assert_allclose(model.predict_proba(X.iloc[[i]])[0], expected[i], rtol=1e-12)


def test_hist_gradient_boosting_without_categorical_columns_is_compiled_too():
    raw, pipeline, (contract, classes, plan) = _fit("binary", "hist_gb", numeric_only=True)
    assert not plan.categorical
    compiled = compile_pipeline(pipeline, "binary")
    assert compiled is not None
    model = MlreModel("binary", [Member("hist_gb", {}, 1.0, [pipeline])], classes, contract, "x")
    expected = member_predict(pipeline, raw, "binary", 2)
    np.testing.assert_array_equal(
        model.predict_proba(raw), expected / expected.sum(axis=1)[:, None]
    )


def test_a_forest_too_large_to_flatten_is_walked_tree_by_tree(monkeypatch):
    from mlre.models.compiled import HistForest

    monkeypatch.setattr(HistForest, "FLAT_BYTES", 0)
    raw, pipeline, (contract, classes, plan) = _fit("multiclass", "hist_gb")
    model = MlreModel(
        "multiclass", [Member("hist_gb", {}, 1.0, [pipeline])], classes, contract, "x"
    )
    X = awkward(raw, plan)
    expected = member_predict(pipeline, X, "multiclass", len(classes))
    expected = expected / expected.sum(axis=1, keepdims=True)
    got = np.concatenate([model.predict_proba(X.iloc[i : i + 3]) for i in range(0, len(X), 3)])
    np.testing.assert_array_equal(got, expected)
    assert model._compiled()[0].predictor.forest.flat is None


def test_an_xgboost_walk_that_does_not_end_at_a_leaf_leaves_the_answer_to_the_booster():
    raw, pipeline, (contract, classes, _) = _fit("binary", "xgboost")
    model = MlreModel("binary", [Member("xgboost", {}, 1.0, [pipeline])], classes, contract, "x")
    expected = member_predict(pipeline, raw, "binary", 2)
    expected = expected / expected.sum(axis=1, keepdims=True)
    model.predict_proba(raw.iloc[:1])
    forest = model._compiled()[0].predictor.forest
    forest.flat.depth = 1  # as if a tree were read wrong: walks stop short of the leaves
    assert forest.predict(model._compiled()[0].matrix(model._compiled()[0].coerce(raw))) is None
    got = np.concatenate([model.predict_proba(raw.iloc[i : i + 4]) for i in range(0, len(raw), 4)])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(("task", "family"), [("binary", "xgboost"), ("regression", "xgboost"),
                                              ("binary", "hist_gb"), ("multiclass", "hist_gb")])  # fmt: skip
def test_the_row_by_row_walk_reaches_the_leaves_the_level_walk_reaches(task: str, family: str):
    # one row decides every node at once, more rows walk a level per step: both must end at
    # the same leaf of every tree, missing values and unseen categories included
    raw, pipeline, (contract, classes, plan) = _fit(task, family)
    model = MlreModel(task, [Member(family, {}, 1.0, [pipeline])], classes, contract, "x")
    model.predict(raw.iloc[:1])
    compiled = model._compiled()[0]
    X = awkward(raw, plan)
    M = compiled.matrix(compiled.coerce(X))
    if family == "xgboost":
        flat, M = compiled.predictor.forest.flat, M.astype(np.float32)
    else:
        flat = compiled.predictor.forest.flat_trees()
    assert np.isnan(M).any() and flat.table is not None
    by_row = np.vstack([flat.row(x) for x in M])
    np.testing.assert_array_equal(by_row, flat.by_level(M))
    assert flat.leaves(M[:1]).shape == (1, len(flat.roots))


def test_lightgbm_single_rows_from_many_threads_get_their_own_answers_and_the_config_is_freed():
    # a prepared configuration serves one call at a time; a thread finding it busy takes
    # LightGBM's ordinary call, so concurrent single-row requests each get their own answer
    import gc
    from concurrent.futures import ThreadPoolExecutor

    raw, pipeline, (contract, classes, _) = _fit("multiclass", "lightgbm")
    model = MlreModel(
        "multiclass", [Member("lightgbm", {}, 1.0, [pipeline])], classes, contract, "x"
    )
    expected = member_predict(pipeline, raw, "multiclass", len(classes))
    expected = expected / expected.sum(axis=1, keepdims=True)
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(model.predict_proba, [raw.iloc[[i]] for i in range(len(raw))]))
    np.testing.assert_array_equal(np.vstack(rows), expected)
    single = model._compiled()[0].predictor.single_row
    assert single is not None and single.freed.alive
    freed = single.freed
    del model, single
    gc.collect()
    assert not freed.alive


@pytest.mark.parametrize("task", list(CASES))
@pytest.mark.parametrize("family", ["random_forest", "extra_trees"])
def test_forests_predict_what_their_pipelines_predict_without_joblib(task, family, monkeypatch):
    import warnings

    from mlre.models.compiled import Forest

    raw, pipeline, (contract, classes, plan) = _fit(task, family)
    forest = pipeline.named_steps["model"][-1]
    n_classes = 0 if classes is None else len(classes)
    X = awkward(raw, plan)

    def served(model):
        f = model.predict if task == "regression" else model.predict_proba
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "fitted with feature names" on every call
            ones = np.concatenate([np.atleast_1d(f(X.iloc[[i]])) for i in range(len(X))])
            fives = np.concatenate([f(X.iloc[i : i + 5]) for i in range(0, len(X), 5)])
            return ones.reshape(fives.shape), fives, f(X)

    def expected():
        out = member_predict(pipeline, X, task, n_classes)
        return out if task == "regression" else out / out.sum(axis=1, keepdims=True)

    # with one worker the forest adds its trees in order, as the flat walk does: bit for bit
    forest.n_jobs = 1
    model = MlreModel(task, [Member(family, {}, 1.0, [pipeline])], classes, contract, "x")
    model.predict(X.iloc[:1])
    compiled = model._compiled()[0]
    assert compiled is not None and compiled.kind == "forest"
    assert compiled.predictor.flat is not None
    for got in served(model):
        np.testing.assert_array_equal(got, expected())
    # with more workers its order of addition varies between calls: equal up to rounding
    forest.n_jobs = 2
    model = MlreModel(task, [Member(family, {}, 1.0, [pipeline])], classes, contract, "x")
    for got in served(model):
        np.testing.assert_allclose(got, expected(), rtol=1e-12, atol=1e-15)
    # a forest too large to flatten keeps its own walk, with one worker for small batches
    monkeypatch.setattr(Forest, "FLAT_BYTES", 0)
    forest.n_jobs = 1
    model = MlreModel(task, [Member(family, {}, 1.0, [pipeline])], classes, contract, "x")
    model.predict(X.iloc[:1])
    assert model._compiled()[0].predictor.flat is None
    for got in served(model):
        np.testing.assert_array_equal(got, expected())
    assert forest.n_jobs == 1 and hasattr(forest, "feature_names_in_")  # the fitted one as it was


@pytest.mark.parametrize("task", list(CASES))
@pytest.mark.parametrize("family", ["linear", "sparse_linear"])
def test_linear_models_are_compiled_and_predict_what_their_pipelines_predict(task, family):
    from mlre.models.compiled import OneHotLookup

    raw, pipeline, (contract, classes, plan) = _fit(task, family)
    n_classes = 0 if classes is None else len(classes)
    model = MlreModel(task, [Member(family, {}, 1.0, [pipeline])], classes, contract, "x")
    f = model.predict if task == "regression" else model.predict_proba

    def own(X):
        out = member_predict(pipeline, X, task, n_classes)
        return out if task == "regression" else out / out.sum(axis=1, keepdims=True)

    f(raw.iloc[:1])
    compiled = model._compiled()[0]
    assert compiled is not None and compiled.kind == "dense"
    # the categorical part is a lookup, the numeric part its own steps on arrays
    kinds = {type(part).__name__ for part in compiled.array_parts()}
    assert "OneHotLookup" in kinds and "NumericSteps" in kinds
    assert ("DatedPart" in kinds) == bool(plan.datetime)  # hotel_rates has a date column
    assert any(isinstance(part, OneHotLookup) for part in compiled.array_parts())
    _same_as_its_pipeline(model, own, raw)
    _same_as_its_pipeline(model, own, awkward(raw, plan))
    # the pipeline itself is as it was fitted (the compiled form works on copies)
    assert hasattr(pipeline.named_steps["model"], "feature_names_in_")


def _same_as_its_pipeline(model: MlreModel, own, X) -> None:
    """``model`` (one pipeline) predicts what ``own`` (that pipeline) does, bit for bit, for a
    table, single rows and rows as JSON gives them, with no warning. Each comparison is between
    calls of one size: a matrix product's rounding may depend on how many rows it has."""
    import warnings

    f = model.predict if model.task == "regression" else model.predict_proba
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "fitted with feature names" on every call
        np.testing.assert_array_equal(f(X), own(X))
        for i in range(0, len(X), max(1, len(X) // 40)):
            np.testing.assert_array_equal(f(X.iloc[[i]]), own(X.iloc[[i]]))
    served = records_frame(json.loads(X.iloc[:40].to_json(orient="records", date_format="iso")))
    np.testing.assert_array_equal(f(served), own(served))


@pytest.mark.parametrize("task", list(CASES))
def test_the_mlp_is_compiled_and_predicts_what_its_pipeline_predicts(task: str):
    if not FAMILIES["mlp"].available():
        pytest.skip(f"{FAMILIES['mlp'].requires} is not installed")
    raw, pipeline, (contract, classes, plan) = _fit(task, "mlp")
    n_classes = 0 if classes is None else len(classes)
    model = MlreModel(task, [Member("mlp", {}, 1.0, [pipeline])], classes, contract, "x")

    def own(X):
        out = member_predict(pipeline, X, task, n_classes)
        return out if task == "regression" else out / out.sum(axis=1, keepdims=True)

    model.predict(raw.iloc[:1])
    assert model._compiled()[0] is not None and model._compiled()[0].kind == "mlp"
    _same_as_its_pipeline(model, own, raw)
    _same_as_its_pipeline(model, own, awkward(raw, plan))


def test_a_one_hot_lookup_gives_the_encoder_output_for_known_rare_missing_and_unknown_levels():
    from mlre.models.compiled import OneHotLookup

    _, pipeline, _ = _fit("binary", "linear")
    stack = pipeline.named_steps["prep"].named_steps["columns"]
    (part,) = [twin for twin in stack.array_parts() if OneHotLookup.of(twin) is not None]
    encoder = part.steps[-1][1]
    # this data folds some levels into "infrequent": the lookup must know where they go
    assert any(c is not None for c in encoder.infrequent_categories_)
    lookup = OneHotLookup.of(part)
    rng = np.random.default_rng(0)
    levels = [[*c, np.nan, "never seen", "__missing__"] for c in encoder.categories_]
    values = np.array(
        [[rng.choice(np.array(c, dtype=object)) for c in levels] for _ in range(300)], dtype=object
    )
    np.testing.assert_array_equal(lookup.transform(values), part.transform(values))
    np.testing.assert_array_equal(lookup.transform(values[:1]), part.transform(values[:1]))


@pytest.mark.parametrize("scaled", [True, False])
def test_numeric_steps_give_the_imputer_and_scaler_output_for_holes_and_empty_columns(scaled):
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlre.features.transformers import array_copy
    from mlre.models.compiled import NumericSteps

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 5)) * [1.0, 10.0, 1e-3, 1e6, 1.0]
    X[rng.random(X.shape) < 0.2] = np.nan
    X[:, 2] = np.nan  # a column never observed (kept, filled with 0)
    X[:, 4] = rng.normal(size=300)  # a column with no holes (no indicator)
    steps = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
    part = array_copy(make_pipeline(*steps, *([StandardScaler()] if scaled else [])).fit(X))
    numeric = NumericSteps.of(part)
    assert numeric is not None
    Y = rng.normal(size=(200, 5)) * 100
    Y[rng.random(Y.shape) < 0.3] = np.nan
    for rows in (Y, Y[:1], Y[7:9]):
        np.testing.assert_array_equal(numeric.transform(rows), part.transform(rows))
    # an imputer with a constant fill keeps its own steps
    constant = make_pipeline(SimpleImputer(strategy="constant", fill_value=-1.0)).fit(X)
    assert NumericSteps.of(array_copy(constant)) is None


@pytest.mark.parametrize("family", ["lightgbm", "linear"])
def test_a_member_fitted_on_a_log_target_is_compiled_and_predicts_what_its_pipeline_does(family):
    from mlre.search.trial import fit_family

    df = dataset("diamonds", rows=1500)
    contract = audit(df, "price").contract
    plan = FeaturePlan.from_contract(contract)
    X, y = df[plan.columns], df["price"].to_numpy(dtype=float)
    params = dict(FAMILIES[family].portfolio[0]) | {"target_transform": "log1p"}
    pipeline, _ = fit_family(family, params, plan, "regression", X.iloc[:1000], y[:1000],
                             X.iloc[1000:], y[1000:], 0, time.monotonic() + 60)  # fmt: skip
    compiled = compile_pipeline(pipeline, "regression")
    assert compiled is not None and compiled.kind.endswith("on a log target")
    model = MlreModel("regression", [Member(family, params, 1.0, [pipeline])], None, contract, "x")
    raw = X.iloc[1000:]
    for rows in (raw, awkward(raw, plan)):
        expected = pipeline.predict(rows)
        assert np.median(expected) > 100  # prices, not their logarithms
        np.testing.assert_array_equal(model.predict(rows), expected)
        for i in range(0, len(rows), 50):  # one row, as a service sees it
            one = rows.iloc[[i]]
            np.testing.assert_array_equal(model.predict(one), pipeline.predict(one))
