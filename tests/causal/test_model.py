"""The stated causal model checked against the table: what is refused and why, what 'auto'
adjusts for, and how the model is put in words and drawn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import dataset, meta
from mlre.causal.analysis import analyse
from mlre.causal.model import build_model
from mlre.errors import InputError


def table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 65, n),
            "x": x,
            "region": rng.choice(["north", "south", "east"], n),
            "t": t,
            "y": 2 * x + t + rng.normal(size=n),
        }
    )


def test_a_treatment_with_more_than_two_values_says_what_is_supported():
    df = table().assign(dose=lambda d: d["age"] % 7)
    with pytest.raises(InputError) as err:
        build_model(df, treatment="dose", outcome="y", confounders=["x"])
    assert "only a binary treatment" in err.value.message
    assert "7 values" in err.value.message and "0 to 6" in err.value.message
    assert "dose > 0" in err.value.hint
    df["arm"] = df["region"]
    with pytest.raises(InputError, match="a category with 3 values"):
        build_model(df, treatment="arm", outcome="y", confounders=["x"])


def test_a_constant_treatment_is_refused():
    with pytest.raises(InputError, match="constant"):
        build_model(table().assign(t=1), treatment="t", outcome="y", confounders=["x"])


def test_a_missing_confounder_is_named_with_the_nearest_column():
    with pytest.raises(InputError) as err:
        build_model(table(), treatment="t", outcome="y", confounders=["x", "regoin"])
    assert "'regoin'" in err.value.message and "region" in err.value.hint


def test_a_non_numeric_outcome_is_refused():
    df = table().assign(y=lambda d: np.where(d["y"] > 0, "good", "bad"))
    with pytest.raises(InputError) as err:
        build_model(df, treatment="t", outcome="y", confounders=["x"])
    assert "not numeric" in err.value.message and "0/1" in err.value.hint


def test_no_overlap_at_all_is_refused_with_the_reason():
    df = table()
    df["x"] = np.where(df["t"] == 1, 5.0, -5.0) + np.random.default_rng(1).normal(size=len(df))
    model, rows, profiles, _ = build_model(df, treatment="t", outcome="y", confounders=["x"])
    with pytest.raises(InputError) as err:
        analyse(model, rows, profiles, families=["linear"], refute=False, bootstrap=10)
    assert "no overlap" in err.value.message and "propensity AUC" in err.value.message


def test_string_and_boolean_treatments_are_read_as_treated_or_not():
    df = table()
    for column, treated in (
        (np.where(df["t"] == 1, "yes", "no"), "yes"),
        (df["t"] == 1, True),
    ):
        model, rows, _, _ = build_model(
            df.assign(t=column), treatment="t", outcome="y", confounders=["x"]
        )
        assert model.treated_value == treated and rows["t"].sum() == df["t"].sum()
    ambiguous = df.assign(t=np.where(df["t"] == 1, "new page", "old page"))
    with pytest.raises(InputError, match="say which value") as err:
        build_model(ambiguous, treatment="t", outcome="y", confounders=["x"])
    assert "--treated-value" in err.value.hint
    model, _, _, _ = build_model(
        ambiguous, treatment="t", outcome="y", confounders=["x"], treated_value="new page"
    )
    assert model.control_value == "old page"


def test_auto_confounders_leave_out_a_column_that_labels_the_groups():
    """In the CPS version of LaLonde, data_id names the source sample of each row, which is
    the treatment itself: it is left out, with a warning."""
    m = meta("lalonde_dw_cps")
    df = dataset("lalonde_dw_cps")
    model, _, _, findings = build_model(df, treatment=m["treatment"], outcome=m["outcome"],
                                        confounders="auto")  # fmt: skip
    assert sorted(model.confounders) == sorted(m["covariates"])
    [label] = [f for f in findings if f.check == "causal_group_label"]
    assert label.column == "data_id" and label.evidence["auc"] == 1.0


def test_the_model_in_words_and_as_a_graph():
    model, _, _, _ = build_model(
        table(), treatment="t", outcome="y", confounders=["x", "age"], modifiers=["region"]
    )
    words = " ".join(model.words())
    assert "no unmeasured confounding" in words and "overlap" in words
    assert "region" in words
    svg = model.graph_svg()
    assert svg.startswith("<svg") and svg.count("<line") == len(model.edges())
    assert ("x", "t") in model.edges() and ("region", "y") in model.edges()
    assert "treatment: t" in svg and "outcome: y" in svg
