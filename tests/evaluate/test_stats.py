"""The statistical tests against their reference implementations and published figures."""

from __future__ import annotations

import baycomp
import numpy as np
import pytest
from scipy import stats

from mlre.evaluate.stats import (
    bayes_correlated_ttest,
    bayes_signed_rank,
    corrected_ttest,
    friedman_nemenyi,
    holm,
    wilcoxon_p,
)

RNG = np.random.default_rng(7)
# 10 repetitions of 10-fold cross-validation: two models' scores, paired by fold
A = 0.80 + 0.02 * RNG.standard_normal(100)
B = A + 0.004 + 0.01 * RNG.standard_normal(100)


def test_without_correction_it_is_the_paired_t_test():
    result = corrected_ttest(B - A, test_train_ratio=0.0)
    reference = stats.ttest_rel(B, A)
    assert result.t == pytest.approx(reference.statistic, abs=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, abs=1e-10)
    low, high = stats.t.interval(0.95, 99, loc=np.mean(B - A), scale=stats.sem(B - A))
    assert (result.low, result.high) == pytest.approx((low, high), abs=1e-12)


def test_the_correction_is_nadeau_and_bengios_as_baycomp_computes_it():
    mean, var, df = baycomp.CorrelatedTTest.compute_statistics(A, B, runs=10)
    result = corrected_ttest(B - A, test_train_ratio=1 / 9)
    assert result.mean == pytest.approx(mean, abs=1e-12)
    assert result.df == df
    assert result.t == pytest.approx(mean / np.sqrt(var), abs=1e-9)
    # wider than the naive test: overlapping training sets make fold scores correlated
    assert result.p_value > corrected_ttest(B - A, test_train_ratio=0.0).p_value
    assert result.effect_size == pytest.approx(np.mean(B - A) / np.std(B - A, ddof=1))


@pytest.mark.parametrize("rope", [0.0, 0.002, 0.01])
def test_bayesian_correlated_t_test_agrees_with_baycomp(rope):
    ours = bayes_correlated_ttest(B - A, test_train_ratio=1 / 9, rope=rope)
    theirs = baycomp.CorrelatedTTest.probs(A, B, rope=rope, runs=10)
    if rope == 0:
        assert (ours.a_better, ours.b_better) == pytest.approx(theirs, abs=1e-6)
        assert ours.equivalent == pytest.approx(0.0, abs=1e-12)
    else:
        assert (ours.a_better, ours.equivalent, ours.b_better) == pytest.approx(theirs, abs=1e-6)


@pytest.mark.parametrize("rope", [0.0, 0.01])
def test_bayesian_signed_rank_agrees_with_baycomp(rope):
    rng = np.random.default_rng(3)
    a = rng.uniform(0.6, 0.9, 25)
    b = a + rng.normal(0.01, 0.02, 25)
    ours = bayes_signed_rank(a, b, rope=rope, samples=20_000, seed=11)
    theirs = baycomp.SignedRankTest.probs(a, b, rope=rope, nsamples=20_000, random_state=11)
    if rope == 0:
        assert (ours.a_better, ours.b_better) == pytest.approx(theirs, abs=1e-6)
    else:
        assert (ours.a_better, ours.equivalent, ours.b_better) == pytest.approx(theirs, abs=1e-6)


def test_identical_scores_are_no_evidence_either_way():
    same = corrected_ttest(np.zeros(20), test_train_ratio=1 / 9)
    assert same.p_value == 1.0 and same.mean == 0.0
    assert wilcoxon_p(np.zeros(20)) is None
    probs = bayes_correlated_ttest(np.zeros(20), test_train_ratio=1 / 9, rope=0.01)
    assert probs.equivalent == 1.0


def test_wilcoxon_is_scipys():
    assert wilcoxon_p(B - A) == pytest.approx(stats.wilcoxon(B - A).pvalue)


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []


def test_nemenyi_critical_difference_matches_demsar():
    # Demšar (2006): four classifiers on 14 data sets, q_0.05 = 2.569 and CD = 1.25
    scores = np.random.default_rng(0).random((14, 4))
    result = friedman_nemenyi(scores, ["a", "b", "c", "d"])
    assert result.critical_difference == pytest.approx(2.569 * np.sqrt(4 * 5 / (6 * 14)), abs=2e-3)
    assert result.critical_difference == pytest.approx(1.25, abs=6e-3)
    reference = stats.friedmanchisquare(*scores.T)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)


def test_mean_ranks_put_the_best_system_first_and_share_ties():
    scores = np.array([[0.9, 0.8, 0.7], [0.9, 0.7, 0.8], [0.9, 0.8, 0.8]])
    result = friedman_nemenyi(scores, ["a", "b", "c"])
    assert result.mean_ranks == pytest.approx([1.0, (2 + 3 + 2.5) / 3, (3 + 2 + 2.5) / 3])
