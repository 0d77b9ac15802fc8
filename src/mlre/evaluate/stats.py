"""Statistical tests for "is B really better than A?", as the literature recommends them.

Scores from repeated k-fold cross-validation are not independent (the training sets overlap), so
the plain paired t-test is far too confident. The corrected resampled t-test (Nadeau & Bengio,
2003) widens the variance by the test/train size ratio; the Bayesian correlated t-test (Corani &
Benavoli, 2015) is its Bayesian twin and answers "how probable is a practically relevant
improvement?" with a region of practical equivalence (ROPE). Across data sets: Friedman's test with
the Nemenyi critical difference (Demšar, 2006) and the Bayesian signed-rank test (Benavoli et al.,
2017). Holm's step-down correction when one baseline meets several ideas.

The closed forms are a few lines each and are written here (baycomp, their reference
implementation, draws in a slow Python loop and needs matplotlib); tests hold them to baycomp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class CorrectedTTest:
    """The corrected resampled t-test of paired differences (B minus A)."""

    mean: float
    low: float  # confidence interval of the mean difference
    high: float
    t: float
    df: int
    p_value: float
    effect_size: float  # mean difference over its standard deviation (Cohen's d_z)


def corrected_ttest(
    differences: np.ndarray, test_train_ratio: float, confidence: float = 0.95
) -> CorrectedTTest:
    """Nadeau & Bengio's test: variance times (1/n + n_test/n_train), n - 1 degrees of freedom.

    ``test_train_ratio`` is 1/(k-1) for k-fold cross-validation; 0 gives the ordinary paired
    t-test.
    """
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n < 2:
        raise ValueError("the test needs at least two paired scores")
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    se = sd * np.sqrt(1.0 / n + test_train_ratio)
    df = n - 1
    if se == 0.0:  # every difference equal: no doubt about the sign, none about the size
        if mean == 0.0:
            return CorrectedTTest(0.0, 0.0, 0.0, 0.0, df, 1.0, 0.0)
        inf = float(np.copysign(np.inf, mean))
        return CorrectedTTest(mean, mean, mean, inf, df, 0.0, inf)
    t = mean / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.5 + confidence / 2, df) * se)
    return CorrectedTTest(mean, mean - half, mean + half, float(t), df, p, mean / sd)


@dataclass(frozen=True)
class BayesProbabilities:
    """Posterior probabilities that A is practically better, that they are equivalent (within the
    ROPE) and that B is practically better."""

    a_better: float
    equivalent: float
    b_better: float


def bayes_correlated_ttest(
    differences: np.ndarray, test_train_ratio: float, rope: float = 0.0
) -> BayesProbabilities:
    """The Bayesian correlated t-test: the mean difference's posterior is Student's t with n - 1
    degrees of freedom, centred on the observed mean, scale sd * sqrt(1/n + n_test/n_train)."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n < 2:
        raise ValueError("the test needs at least two paired scores")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    scale = sd * np.sqrt(1.0 / n + test_train_ratio)
    if scale == 0.0:
        below, above = float(mean < -rope), float(mean > rope)
    else:
        below = float(stats.t.cdf(-rope, n - 1, mean, scale))
        above = float(stats.t.sf(rope, n - 1, mean, scale))
    return BayesProbabilities(below, max(0.0, 1.0 - below - above), above)


def wilcoxon_p(differences: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value (None when every difference is zero)."""
    d = np.asarray(differences, dtype=float)
    if not np.any(d != 0):
        return None
    return float(stats.wilcoxon(d, zero_method="wilcox").pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [float(p) for p in multipletests(p_values, method="holm")[1]]


def bayes_signed_rank(
    a: np.ndarray,
    b: np.ndarray,
    rope: float = 0.0,
    *,
    prior: float = 0.5,
    samples: int = 50_000,
    seed: int | None = 0,
) -> BayesProbabilities:
    """The Bayesian signed-rank test over data sets (one score per data set for A and for B).

    The differences, with a pseudo-observation at zero weighted ``prior``, get Dirichlet
    posterior weights; each draw puts the mass of the pairwise (Walsh) averages of differences
    below -rope, inside and above +rope, and the probabilities are how often each region holds
    the most. Draws are made all at once (baycomp makes them one at a time in Python).
    """
    d = np.concatenate([[0.0], np.asarray(b, dtype=float) - np.asarray(a, dtype=float)])
    weights = np.ones(len(d))
    weights[0] = prior
    sums = d[:, None] + d[None, :]

    def step(x: np.ndarray, threshold: float) -> np.ndarray:
        return (x > threshold).astype(float) + 0.5 * (x == threshold)

    draws = np.random.RandomState(seed).dirichlet(weights, samples)
    above = np.einsum("ki,ij,kj->k", draws, step(sums, 2 * rope), draws)
    if rope > 0:
        below = np.einsum("ki,ij,kj->k", draws, step(-sums, 2 * rope), draws)
        mass = np.column_stack([below, 1.0 - below - above, above])
        counts = np.bincount(mass.argmax(axis=1), minlength=3) / samples
        return BayesProbabilities(float(counts[0]), float(counts[1]), float(counts[2]))
    mass = np.column_stack([1.0 - above, np.zeros(samples), above])
    counts = np.bincount(mass.argmax(axis=1), minlength=3) / samples
    return BayesProbabilities(float(counts[0]), 0.0, float(counts[2]))


@dataclass(frozen=True)
class RankTest:
    """Friedman's test over data sets and the Nemenyi critical difference of mean ranks."""

    names: list[str]
    mean_ranks: list[float]  # 1 = best
    statistic: float | None
    p_value: float | None
    critical_difference: float
    n_datasets: int


def friedman_nemenyi(scores: np.ndarray, names: list[str], alpha: float = 0.05) -> RankTest:
    """``scores``: one row per data set, one column per system, higher is better.

    Two systems differ significantly when their mean ranks differ by more than the critical
    difference q_alpha * sqrt(k (k + 1) / (6 N)), q_alpha the studentised range quantile / sqrt 2.
    """
    scores = np.asarray(scores, dtype=float)
    n, k = scores.shape
    if k < 2 or n < 2:
        raise ValueError("ranking needs at least two systems on at least two data sets")
    ranks = np.vstack([stats.rankdata(-row) for row in scores])
    statistic = p = None
    if k >= 3:
        result = stats.friedmanchisquare(*scores.T)
        statistic, p = float(result.statistic), float(result.pvalue)
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    cd = float(q * np.sqrt(k * (k + 1) / (6.0 * n)))
    return RankTest(names, [float(r) for r in ranks.mean(axis=0)], statistic, p, cd, n)
