"""Feature plans and preprocessing pipelines on real data: dates, categories, flags, text numbers."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest

from helpers import audit, awkward, dataset, meta
from mlre.features import FeaturePlan, make_preprocessor
from mlre.features.transformers import CategoryEncoder, ColumnCoercer

COMPAS = "two_year_recid"
OTHER = CategoryEncoder.OTHER


def plan_for(df: pd.DataFrame, target: str, **kwargs) -> FeaturePlan:
    return FeaturePlan.from_contract(audit(df, target).contract, **kwargs)


@pytest.fixture(scope="module")
def compas() -> tuple[pd.DataFrame, FeaturePlan]:
    df = dataset("compas_recidivism")
    return df, plan_for(df, COMPAS)


@pytest.fixture(scope="module")
def ames() -> tuple[pd.DataFrame, FeaturePlan]:
    df = dataset("ames_housing")
    return df, plan_for(df, "price")


# --------------------------------------------------------------------------- the plan


def test_plan_groups_compas_columns_by_role(compas):
    df, plan = compas
    assert set(plan.datetime) == set(meta("compas_recidivism")["datetime_columns"])
    assert {"sex", "race", "age_cat", "c_charge_degree", "score_text"} <= set(plan.categorical)
    assert {"age", "priors_count", "decile_score"} <= set(plan.numeric)
    assert plan.text == ["c_charge_desc"] and plan.ignored == {}
    assert COMPAS not in plan.columns
    assert plan.columns == [
        *plan.numeric, *plan.boolean, *plan.datetime, *plan.categorical, *plan.text
    ]  # fmt: skip
    assert set(plan.columns) | set(plan.ignored) == set(df.columns) - {COMPAS}


def test_plan_leaves_out_identifiers_and_excluded_columns(ames):
    df, plan = ames
    assert plan.ignored == {"Order": "identifier", "PID": "identifier"}
    assert "Central.Air" in plan.boolean
    excluded = plan_for(df, "price", exclude=["Neighborhood", "Lot.Area"])
    assert excluded.ignored["Neighborhood"] == "excluded by the spec"
    assert excluded.ignored["Lot.Area"] == "excluded by the spec"
    assert "Neighborhood" not in excluded.columns and "Lot.Area" not in excluded.columns


# --------------------------------------------------------------------------- both styles


@pytest.mark.parametrize("style", ["trees", "dense"])
@pytest.mark.parametrize("data", ["compas", "ames"])
def test_both_styles_fit_on_one_part_and_transform_another(style, data, request):
    df, plan = request.getfixturevalue(data)
    train, test = df.iloc[: len(df) * 2 // 3], df.iloc[len(df) * 2 // 3 :]
    prep = make_preprocessor(plan, style)
    out_train = prep.fit_transform(train)
    out_test = prep.transform(test)
    assert isinstance(out_train, pd.DataFrame)
    assert list(out_test.columns) == list(out_train.columns)
    assert out_train.index.equals(train.index) and out_test.index.equals(test.index)
    # ignored columns never reach the model
    for col in plan.ignored:
        assert not any(name.startswith(col) for name in out_train.columns)
    if style == "dense":
        assert (out_train.dtypes == "float64").all()
        assert not out_train.isna().any().any() and not out_test.isna().any().any()
        # scaled numbers: mean 0 on the part the scaler saw
        assert abs(out_train[plan.numeric[0]].mean()) < 1e-6
    else:
        cats = [c for c in out_train.columns if isinstance(out_train[c].dtype, pd.CategoricalDtype)]
        assert set(cats) == set(plan.categorical)
        numeric = out_train.drop(columns=cats)
        assert (numeric.dtypes == "float64").all()
    # the fitted pipeline survives pickling (it is saved inside the model)
    buffer = io.BytesIO()
    joblib.dump(prep, buffer)
    buffer.seek(0)
    pd.testing.assert_frame_equal(joblib.load(buffer).transform(test), out_test)


def test_trees_style_expands_dates_into_calendar_parts(compas):
    df, plan = compas
    out = make_preprocessor(plan, "trees").fit_transform(df)
    first = pd.Timestamp(df["compas_screening_date"].iloc[0])
    assert out["compas_screening_date__year"].iloc[0] == first.year
    assert out["compas_screening_date__month"].iloc[0] == first.month
    assert out["compas_screening_date__day"].iloc[0] == first.day
    assert out["compas_screening_date__day_of_week"].iloc[0] == first.day_of_week
    # days since the earliest training date: the trend, not the raw timestamp
    start = pd.to_datetime(df["compas_screening_date"]).min()
    assert out["compas_screening_date__days"].iloc[0] == (first - start).days
    assert out["compas_screening_date__days"].min() == 0
    assert out["compas_screening_date__weekend"].iloc[0] == float(first.day_of_week >= 5)
    assert out["compas_screening_date__quarter"].iloc[0] == first.quarter
    # an hour part only for columns that carry a time of day
    assert "c_jail_in__hour" in out.columns
    assert "compas_screening_date__hour" not in out.columns
    # a missing date stays missing for the trees
    missing = df["c_arrest_date"].isna().to_numpy()
    assert out["c_arrest_date__days"].isna().to_numpy().tolist() == missing.tolist()


def test_trees_style_keeps_training_levels_and_pools_the_rest(ames):
    df, plan = ames
    out = make_preprocessor(plan, "trees").fit_transform(df)
    hood = out["Neighborhood"]
    counts = df["Neighborhood"].value_counts()
    rare = counts[counts < 5].index
    assert len(rare) and (hood[df["Neighborhood"].isin(rare)] == OTHER).all()
    assert OTHER in hood.cat.categories
    assert set(hood.cat.categories) == set(counts[counts >= 5].index) | {OTHER}
    # missing stays missing, it is not pooled into __other__
    assert hood.notna().all()
    alley = out["Alley"]
    assert alley.isna().sum() == df["Alley"].isna().sum() > 0


def test_unseen_categories_become_other_for_trees_and_do_not_break_dense(compas):
    df, plan = compas
    new = df.sample(20, random_state=1).copy()
    new["race"] = ["Martian", "Venusian"] * 10
    new["c_charge_degree"] = np.nan
    trees = make_preprocessor(plan, "trees").fit(df)
    out = trees.transform(new)
    assert (out["race"] == OTHER).all()
    assert list(out["race"].cat.categories) == list(trees.transform(df)["race"].cat.categories)
    assert out["c_charge_degree"].isna().all()
    dense = make_preprocessor(plan, "dense").fit(df)
    out = dense.transform(new)
    assert list(out.columns) == list(dense.transform(df.head()).columns)
    assert not out.isna().any().any()
    race = [c for c in out.columns if c.startswith("race_")]
    assert race and (out[race].sum(axis=1) == 0).all()


def test_numbers_stored_as_text_are_coerced(compas):
    df, plan = compas
    sample = df.sample(50, random_state=2)
    as_text = sample.copy()
    for col in ["age", "priors_count", "decile_score"]:
        as_text[col] = as_text[col].astype(str)
    as_text.loc[as_text.index[0], "age"] = "unknown"
    for style in ("trees", "dense"):
        prep = make_preprocessor(plan, style).fit(df)
        expected, got = prep.transform(sample), prep.transform(as_text)
        assert got.dtypes.equals(expected.dtypes)
        pd.testing.assert_frame_equal(got.iloc[1:], expected.iloc[1:])
        if style == "trees":
            assert np.isnan(got["age"].iloc[0])
        else:
            assert np.isfinite(got["age"].iloc[0])


def test_a_numeric_column_read_as_text_trains_as_numbers():
    df = dataset("diamonds", rows=2000)
    df["carat"] = df["carat"].map(lambda v: f"{v:.2f}")
    plan = plan_for(df, "price")
    assert "carat" in plan.numeric
    out = make_preprocessor(plan, "trees").fit_transform(df)
    assert out["carat"].dtype == "float64"
    assert np.allclose(out["carat"], df["carat"].astype(float))


def test_yes_no_strings_become_flags():
    df = dataset("resume_callback")
    plan = plan_for(df, "call")
    flags = ["honors", "volunteer", "military", "holes", "email", "computer"]
    assert set(flags) <= set(plan.boolean)
    out = make_preprocessor(plan, "trees").fit_transform(df)
    for col in flags:
        assert set(out[col].unique()) <= {0.0, 1.0}
        assert (out[col] == 1.0).tolist() == (df[col] == "yes").tolist()
    # other spellings at serving time, and a token that is not a flag
    coerce = ColumnCoercer(boolean=["honors"]).fit(df)
    new = pd.DataFrame({"honors": [" Yes", "NO", "true", "F", "1", "0", "maybe", None]})
    got = coerce.transform(new)["honors"].tolist()
    assert got[:6] == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    assert np.isnan(got[6]) and np.isnan(got[7])
    dense = make_preprocessor(plan, "dense").fit(df)
    with_unknown = df.head(8).copy()
    with_unknown["honors"] = new["honors"].to_numpy()
    assert not dense.transform(with_unknown).isna().any().any()


def test_dates_with_time_zones_and_real_datetimes_give_the_same_features(compas):
    df, plan = compas
    sample = df.head(30).copy()
    prep = make_preprocessor(plan, "trees").fit(df)
    expected = prep.transform(sample)
    parsed = sample.copy()
    parsed["compas_screening_date"] = pd.to_datetime(parsed["compas_screening_date"])
    pd.testing.assert_frame_equal(prep.transform(parsed), expected)
    zoned = sample.copy()
    zoned["compas_screening_date"] = zoned["compas_screening_date"] + "T02:00:00+02:00"
    got = prep.transform(zoned)
    # 02:00 at UTC+2 is midnight UTC: the same calendar day
    cols = [c for c in expected.columns if c.startswith("compas_screening_date__")]
    pd.testing.assert_frame_equal(got[cols], expected[cols])


def test_dense_style_one_hot_encodes_and_pools_rare_levels(ames):
    df, plan = ames
    out = make_preprocessor(plan, "dense").fit_transform(df)
    hood = [c for c in out.columns if c.startswith("Neighborhood_")]
    assert "Neighborhood_NAmes" in hood
    assert (out[hood].sum(axis=1) == 1).all()  # exactly one level per row, rare ones pooled
    assert not any(c.endswith(("_Landmrk", "_GrnHill")) for c in hood)
    # a missing category is a level of its own
    assert "Alley___missing__" in out.columns
    assert (out["Alley___missing__"] == df["Alley"].isna().astype(float)).all()


@pytest.mark.parametrize("data", ["compas", "ames"])
def test_a_few_rows_go_through_the_dense_stack_as_arrays_with_the_same_values(data, request):
    # up to SMALL_ROWS rows, the imputers, scaler and one-hot encoder run on numpy arrays (their
    # pandas output costs more than they do on a served row): the values must be the same
    import warnings

    from mlre.data.contract import SMALL_ROWS

    df, plan = request.getfixturevalue(data)
    target = COMPAS if data == "compas" else "price"
    X = df.drop(columns=[target])
    prep = make_preprocessor(plan, "dense").fit(X.iloc[:600])
    stack = prep.named_steps["columns"]
    rows = awkward(X.iloc[600:], plan)
    whole = prep.transform(rows)  # more than SMALL_ROWS rows: the pandas path
    assert len(rows) > SMALL_ROWS and "array_parts_" not in stack.__dict__

    def named() -> list[bool]:
        steps = [s for _, f, _ in stack.parts_ for _, s in getattr(f, "steps", [])]
        return [hasattr(s, "feature_names_in_") for s in steps]

    before = named()
    with warnings.catch_warnings():
        # no "fitted with feature names" from the copies
        warnings.filterwarnings("error", message=".*feature names.*")
        pieces = [prep.transform(rows.iloc[i : i + 7]) for i in range(0, 140, 7)]
    assert any(t is not None for t in stack.array_parts_)
    few = pd.concat(pieces)
    pd.testing.assert_frame_equal(few, whole.iloc[:140], check_exact=True)
    # the fitted parts keep their column names (and pandas output); the copies are not pickled
    assert named() == before and any(before)
    coerced = prep.named_steps["coerce"].transform(rows.iloc[:3])
    assert isinstance(stack.parts_[0][1].transform(coerced[stack.parts_[0][2]]), pd.DataFrame)
    buffer = io.BytesIO()
    joblib.dump(prep, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert "array_parts_" not in loaded.named_steps["columns"].__dict__
    pd.testing.assert_frame_equal(loaded.transform(rows.iloc[:3]), whole.iloc[:3], check_exact=True)
