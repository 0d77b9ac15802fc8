"""The effect estimators on simulated data whose effects are known, and on the LaLonde
experiment whose published difference in means they must reproduce."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from helpers import dataset, meta
from mlre.causal import estimators as est
from mlre.causal.analysis import analyse
from mlre.causal.model import build_model
from mlre.causal.nuisance import cross_fit, plan_for

TRUE_ATE, TRUE_ATT = 2.0, 2.6


def confounded(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """x drives both the treatment and the outcome; the effect grows with x, so the ATT
    (the treated have larger x) exceeds the ATE."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    e = 1 / (1 + np.exp(-(1.2 * x - 0.3)))
    t = (rng.random(n) < e).astype(int)
    effect = 2.0 + 1.0 * x
    y = 1 + 3 * x + 0.5 * z + t * effect + rng.normal(scale=1.0, size=n)
    return pd.DataFrame({"x": x, "z": z, "t": t, "y": y})


def truth(df: pd.DataFrame) -> tuple[float, float]:
    effect = 2.0 + df["x"].to_numpy()
    return float(effect.mean()), float(effect[df["t"].to_numpy() == 1].mean())


@pytest.fixture(scope="module")
def simulated():
    df = confounded()
    model, rows, profiles, _ = build_model(df, treatment="t", outcome="y", confounders=["x", "z"])
    result = analyse(model, rows, profiles, estimand="ATE", families=["linear"], refute=False,
                     bootstrap=20)  # fmt: skip
    return df, result


def test_every_adjusting_estimator_covers_the_true_effect_and_the_naive_one_does_not(simulated):
    df, result = simulated
    ate, att = truth(df)
    naive = result.naive["ATE"]
    assert not naive.covers(ate) and naive.value > ate + 1  # confounding pushes it up
    for estimand, target in (("ATE", ate), ("ATT", att)):
        for e in result.estimates[estimand]:
            if e.method == "dml" and estimand == "ATE":
                continue  # the partially linear model weights rows by e(1-e): checked below
            assert e.covers(target), (estimand, e.method, e.value, e.low, e.high, target)
            assert e.se > 0 and e.low < e.value < e.high
    checks = {f.check for f in result.findings}
    assert "causal_confounding" in checks


def test_the_partially_linear_dml_estimate_is_the_overlap_weighted_effect(simulated):
    df, result = simulated
    x = df["x"].to_numpy()
    e = 1 / (1 + np.exp(-(1.2 * x - 0.3)))
    weights = e * (1 - e)
    overlap_weighted = float(np.sum(weights * (2.0 + x)) / weights.sum())
    dml = result.estimate("dml", "ATE")
    assert dml.covers(overlap_weighted), (dml.value, overlap_weighted)


def test_balance_after_weighting_is_within_the_rule_for_the_confounder(simulated):
    _, result = simulated
    row = next(r for r in result.balance.rows if r["column"] == "x")
    assert abs(row["smd_before"]) > 0.5
    assert abs(row["smd_after"]) < 0.1


def test_doubly_robust_needs_only_one_model_right():
    """A propensity of 0.5 for everyone (wrong) with right outcome models, and right
    propensities with outcome models that predict zero (wrong): both still land on the ATE."""
    df = confounded(4000, seed=3)
    x, t, y = df["x"].to_numpy(), df["t"].to_numpy(), df["y"].to_numpy()
    e_true = 1 / (1 + np.exp(-(1.2 * x - 0.3)))
    mu0, mu1 = 1 + 3 * x, 1 + 3 * x + 2.0 + x
    ate = truth(df)[0]
    wrong_e = est.aipw(y, t, np.full_like(x, 0.5), mu0, mu1, "ATE")
    wrong_mu = est.aipw(y, t, e_true, np.zeros_like(x), np.zeros_like(x), "ATE")
    assert wrong_e.covers(ate) and wrong_mu.covers(ate)
    assert not est.ipw(y, t, np.full_like(x, 0.5), "ATE").covers(ate)


def test_the_naive_interval_is_welchs():
    rng = np.random.default_rng(1)
    y, t = rng.normal(size=300), np.r_[np.ones(100, int), np.zeros(200, int)]
    y[:100] += 0.4
    e = est.naive(y, t, "ATE")
    welch = stats.ttest_ind(y[:100], y[100:], equal_var=False)
    assert e.value == pytest.approx(y[:100].mean() - y[100:].mean())
    assert e.value / e.se == pytest.approx(welch.statistic)


def test_matching_finds_exact_twins_and_its_variance_counts_reused_controls():
    # each treated row has one control with the same propensity: the effect is exact
    e = np.r_[np.linspace(0.2, 0.8, 50), np.linspace(0.2, 0.8, 50)]
    t = np.r_[np.ones(50, int), np.zeros(50, int)]
    y = np.r_[np.arange(50) + 5.0, np.arange(50) * 1.0]
    m = est.matching(y, t, e, "ATT")
    assert m.value == pytest.approx(5.0) and m.rows == 50
    # one control serving every treated row: its variance counts K(K-1) more times
    e2 = np.r_[np.full(20, 0.5), [0.5], np.full(20, 0.01)]
    t2 = np.r_[np.ones(20, int), [0], np.zeros(20, int)]
    y2 = np.r_[np.full(20, 3.0), [1.0], np.linspace(0, 2, 20)]
    reused = est.matching(y2, t2, e2, "ATT", caliper=10)
    assert reused.value == pytest.approx(2.0) and reused.se > 0


def test_lalonde_experiment_estimates_agree_with_the_published_difference():
    """In the randomised NSW sample every estimator lands near the published $1,794 and the
    naive difference reproduces it exactly (with Welch's standard error, $671)."""
    m = meta("lalonde_nsw_dw")
    df = dataset("lalonde_nsw_dw")
    model, rows, profiles, _ = build_model(
        df, treatment=m["treatment"], outcome=m["outcome"], confounders=m["covariates"]
    )
    result = analyse(model, rows, profiles, estimand="ATE", refute=False, bootstrap=20)
    naive = result.naive["ATE"]
    assert naive.value == pytest.approx(m["known_effect"]["value"], abs=0.01)
    assert naive.se == pytest.approx(m["known_effect"]["standard_error"], abs=1)
    for e in result.estimates["ATE"]:
        assert e.covers(m["known_effect"]["value"]), (e.method, e.value, e.low, e.high)
    assert not any(f.check == "causal_confounding" for f in result.findings)


def test_cross_fitting_picks_the_family_with_the_lower_out_of_fold_loss():
    df = confounded(1500, seed=5)
    # a step in the outcome that a linear model cannot follow but boosted trees can
    df["y"] = df["y"] + 8 * (df["z"] > 0.5)
    model, rows, profiles, _ = build_model(df, treatment="t", outcome="y", confounders=["x", "z"])
    X = rows[model.adjustment]
    nu = cross_fit(X, rows["t"].to_numpy(), rows["y"].to_numpy(),
                   plan_for(model.adjustment, profiles), ("linear", "lightgbm"))  # fmt: skip
    assert nu.families["mu0"] == "lightgbm" and nu.families["mu1"] == "lightgbm"
    assert nu.losses["mu0"]["lightgbm"] < nu.losses["mu0"]["linear"]
    assert ((nu.e > 0) & (nu.e < 1)).all()
