"""A/B tests on the randomised NSW experiment (training as the variant, 1978 earnings as the
metric, 1975 earnings as the pre-period covariate) and on simulated experiments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from helpers import dataset, meta
from mlre.causal.abtest import abtest
from mlre.errors import InputError


@pytest.fixture(scope="module")
def nsw() -> pd.DataFrame:
    df = dataset("lalonde_nsw_dw")
    return df.assign(group=np.where(df["treat"] == 1, "training", "control"))


def test_the_difference_and_its_interval_are_welchs(nsw):
    test = abtest(nsw, variant="group", metric="re78")
    [c] = test.comparisons
    known = meta("lalonde_nsw_dw")["known_effect"]
    assert c.control == "control" and c.variant == "training"
    assert c.difference == pytest.approx(known["value"], abs=0.01)
    assert c.se == pytest.approx(known["standard_error"], abs=1)
    welch = stats.ttest_ind(
        nsw.loc[nsw.treat == 1, "re78"], nsw.loc[nsw.treat == 0, "re78"], equal_var=False
    )
    assert c.p_value == pytest.approx(welch.pvalue, rel=1e-6)
    assert c.relative == pytest.approx(c.difference / c.means[1])
    assert c.relative_low < c.relative < c.relative_high


def test_cuped_with_a_pre_period_covariate_narrows_the_interval(nsw):
    rng = np.random.default_rng(0)
    n = 4000
    pre = rng.gamma(2.0, 50.0, n)
    arm = rng.permutation(np.repeat(["A", "B"], n // 2))
    revenue = 0.8 * pre + rng.normal(0, 20, n) + np.where(arm == "B", 3.0, 0.0)
    df = pd.DataFrame({"arm": arm, "revenue": revenue, "pre_revenue": pre})
    plain = abtest(df, variant="arm", metric="revenue").comparisons[0]
    test = abtest(df, variant="arm", metric="revenue", covariate="pre_revenue")
    c = test.comparisons[0]
    assert c.cuped["variance_reduction"] > 0.8
    assert (c.cuped["high"] - c.cuped["low"]) < 0.5 * (plain.high - plain.low)
    assert c.cuped["low"] < 3.0 < c.cuped["high"]
    assert c.cuped["theta"] == pytest.approx(0.8, abs=0.05)
    assert any(f.check == "ab_cuped" for f in test.findings)
    # on the NSW data the 1975 earnings explain part of 1978's
    nsw_test = abtest(nsw, variant="group", metric="re78", covariate="re75")
    assert 0 < nsw_test.comparisons[0].cuped["variance_reduction"] < 0.5


def test_a_sample_ratio_mismatch_is_an_error_finding(nsw):
    test = abtest(nsw, variant="group", metric="re78")  # 185 vs 260 against a 50/50 plan
    [srm] = [f for f in test.findings if f.check == "ab_sample_ratio_mismatch"]
    assert srm.severity.value == "error" and test.srm_p_value < 0.001
    planned = abtest(nsw, variant="group", metric="re78", expected_split=[260, 185])
    assert planned.srm_p_value > 0.5  # control first, as the variants sort
    assert not any(f.check == "ab_sample_ratio_mismatch" for f in planned.findings)


def test_the_minimum_detectable_effect_matches_statsmodels_power():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"v": np.repeat(["control", "new"], 500), "m": rng.normal(10, 2, 1000)})
    test = abtest(df, variant="v", metric="m", target_effect=0.2)
    sd = float(np.sqrt((df.m[:500].var() + df.m[500:].var()) / 2))
    d = NormalIndPower().solve_power(nobs1=500, alpha=0.05, power=0.8, ratio=1.0)
    assert test.mde == pytest.approx(d * sd, rel=0.01)
    n = NormalIndPower().solve_power(effect_size=0.2 / df.m.std(), alpha=0.05, power=0.8)
    assert test.rows_needed == pytest.approx(n, rel=0.02)
    assert any(f.check == "ab_underpowered" for f in test.findings) == (test.power_observed < 0.8)


def test_several_variants_are_each_compared_with_the_control_holm_adjusted():
    rng = np.random.default_rng(3)
    arms = np.repeat(["control", "b", "c"], 800)
    y = rng.normal(0, 1, len(arms)) + np.where(arms == "c", 0.3, 0.0)
    test = abtest(pd.DataFrame({"arm": arms, "y": y}), variant="arm", metric="y")
    assert [c.variant for c in test.comparisons] == ["b", "c"]
    for c in test.comparisons:
        assert c.p_adjusted >= c.p_value
    assert test.comparisons[1].p_adjusted < 0.05


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"variant": "nope", "metric": "re78"}, "variant column 'nope'"),
        ({"variant": "group", "metric": "group"}, "not numeric"),
        ({"variant": "one", "metric": "re78"}, "single variant"),
        ({"variant": "group", "metric": "re78", "control": "x"}, "no variant 'x'"),
        ({"variant": "group", "metric": "re78", "expected_split": [1, 2, 3]}, "2 positive"),
    ],
)
def test_bad_input_is_a_clear_error(nsw, kwargs, words):
    with pytest.raises(InputError, match=words):
        abtest(nsw.assign(one="a"), **kwargs)
