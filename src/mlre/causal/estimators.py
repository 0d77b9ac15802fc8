"""Estimators of the average treatment effect on everyone (ATE) and on the treated (ATT), from
cross-fitted nuisance predictions, each with a 95% confidence interval.

Written here rather than taken from DoWhy: DoWhy 0.14 pins scipy <= 1.15.3 on Python < 3.13
(mlre runs on newer scipy) and pulls cvxpy and causal-learn. The formulas are the textbook ones
(references at each function); the nuisance models are mlre's own zoo, and EconML serves the
heterogeneous effects (``heterogeneity.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))

LABELS = {
    "naive": "difference in means (no adjustment)",
    "regression": "regression adjustment",
    "ipw": "inverse propensity weighting",
    "aipw": "doubly robust (AIPW)",
    "dml": "double machine learning",
    "matching": "propensity-score matching",
}

#: The estimators that adjust, in the order they are shown.
ESTIMATORS = ("regression", "ipw", "aipw", "dml", "matching")


def number(v: float | None) -> str:
    """A number for people: thousands separated, four significant digits below 1,000."""
    if v is None or not np.isfinite(v):
        return "-"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


@dataclass
class Estimate:
    """One estimator's answer for one estimand."""

    method: str
    estimand: str
    value: float
    se: float
    low: float
    high: float
    interval: str  # how the interval was made
    rows: int
    note: str = ""

    @property
    def label(self) -> str:
        """The estimator in words."""
        return LABELS.get(self.method, self.method)

    @property
    def p_value(self) -> float:
        """Two-sided p-value of no effect (normal approximation)."""
        if not self.se > 0:
            return float("nan")
        return float(2 * stats.norm.sf(abs(self.value / self.se)))

    def covers(self, value: float) -> bool:
        """True when ``value`` lies inside the 95% interval."""
        return bool(self.low <= value <= self.high)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "method": self.method,
            "label": self.label,
            "estimand": self.estimand,
            "estimate": self.value,
            "se": self.se,
            "ci_low": self.low,
            "ci_high": self.high,
            "p_value": self.p_value,
            "interval": self.interval,
            "rows": self.rows,
            "note": self.note,
        }


def _normal(
    method: str, estimand: str, value: float, se: float, rows: int, how: str, note: str = ""
) -> Estimate:
    return Estimate(
        method,
        estimand,
        float(value),
        float(se),
        float(value - Z95 * se),
        float(value + Z95 * se),
        how,
        rows,
        note,
    )


def _from_scores(method: str, estimand: str, psi: np.ndarray, value: float, how: str) -> Estimate:
    """An estimate whose standard error is that of the mean of its influence values ``psi``."""
    n = len(psi)
    return _normal(method, estimand, value, float(np.std(psi, ddof=1) / np.sqrt(n)), n, how)


def naive(y: np.ndarray, t: np.ndarray, estimand: str) -> Estimate:
    """Difference in means of the treated and the untreated, with Welch's standard error."""
    y1, y0 = y[t == 1], y[t == 0]
    se = float(np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0)))
    return _normal("naive", estimand, y1.mean() - y0.mean(), se, len(y), "Welch")


def regression(
    y: np.ndarray, t: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, estimand: str
) -> float:
    """Regression adjustment (g-computation): the outcome models' predicted difference, over
    everyone (ATE) or over the treated, against their own outcomes (ATT)."""
    if estimand == "ATT":
        return float(np.mean((y - mu0)[t == 1]))
    return float(np.mean(mu1 - mu0))


def ipw(y: np.ndarray, t: np.ndarray, e: np.ndarray, estimand: str) -> Estimate:
    """Inverse propensity weighting with normalised (Hajek) weights; the standard error treats
    the propensity as known (Lunceford & Davidian 2004), which is conservative for the ATE."""
    if estimand == "ATT":
        w1, w0 = np.ones_like(e), e / (1 - e)
    else:
        w1, w0 = 1 / e, 1 / (1 - e)
    a1, a0 = t * w1, (1 - t) * w0
    m1, m0 = np.sum(a1 * y) / a1.sum(), np.sum(a0 * y) / a0.sum()
    psi = a1 * (y - m1) / a1.mean() - a0 * (y - m0) / a0.mean()
    return _from_scores("ipw", estimand, psi, m1 - m0, "analytic")


def aipw_scores(
    y: np.ndarray, t: np.ndarray, e: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, estimand: str
) -> tuple[float, np.ndarray]:
    """The doubly robust estimate and its influence values: Robins, Rotnitzky & Zhao (1994) for
    the ATE; for the ATT the orthogonal score of Chernozhukov et al. (2018, sec. 5.1)."""
    if estimand == "ATT":
        p = t.mean()
        residual = y - mu0
        theta = float(np.sum(t * residual - (1 - t) * e / (1 - e) * residual) / t.sum())
        psi = (t * residual - (1 - t) * e / (1 - e) * residual - t * theta) / p
        return theta, psi
    phi = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
    return float(phi.mean()), phi - phi.mean()


def aipw(
    y: np.ndarray, t: np.ndarray, e: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, estimand: str
) -> Estimate:
    """Augmented inverse propensity weighting on one cross-fit: consistent when either the
    propensity or the outcome models are right."""
    theta, psi = aipw_scores(y, t, e, mu0, mu1, estimand)
    return _from_scores("aipw", estimand, psi, theta, "analytic (influence function)")


def dml_one(
    y: np.ndarray, t: np.ndarray, e: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, estimand: str
) -> tuple[float, float]:
    """One cross-fit of double machine learning: for the ATE the partially linear model's
    residual-on-residual estimate (Robinson 1988; Chernozhukov et al. 2018, sec. 4.1), for the
    ATT the interactive model's orthogonal score. Returns (estimate, standard error)."""
    if estimand == "ATT":
        theta, psi = aipw_scores(y, t, e, mu0, mu1, estimand)
    else:
        m = e * mu1 + (1 - e) * mu0  # E[y | x]
        v, u = t - e, y - m
        theta = float(np.sum(v * u) / np.sum(v * v))
        psi = (u - theta * v) * v / np.mean(v * v)
    return theta, float(np.std(psi, ddof=1) / np.sqrt(len(psi)))


def dml(fits: list[tuple[float, float]], estimand: str, rows: int) -> Estimate:
    """Double machine learning over repeated cross-fits: the median estimate, and a standard
    error that also counts the spread between splits (Chernozhukov et al. 2018, sec. 3.4)."""
    thetas = np.array([f[0] for f in fits])
    ses = np.array([f[1] for f in fits])
    theta = float(np.median(thetas))
    se = float(np.sqrt(np.median(ses**2 + (thetas - theta) ** 2)))
    model = "partially linear" if estimand == "ATE" else "interactive"
    return _normal(
        "dml",
        estimand,
        theta,
        se,
        rows,
        f"analytic, median of {len(fits)} cross-fits",
        note=f"{model} model",
    )


def matching(
    y: np.ndarray,
    t: np.ndarray,
    e: np.ndarray,
    estimand: str,
    *,
    neighbours: int = 1,
    caliper: float = 0.2,
) -> Estimate:
    """Nearest-neighbour matching on the logit of the propensity, with replacement, within a
    caliper of ``caliper`` standard deviations; Abadie & Imbens (2006) standard error with the
    conditional variances from the nearest same-group neighbour."""
    logit = np.log(e / (1 - e))
    width = caliper * float(np.std(logit))
    m = neighbours
    used = np.ones(len(y), dtype=bool)
    k_used = np.zeros(len(y))  # how often each row serves as someone's match
    imputed = y.astype(float).copy()  # the missing potential outcome of each row
    directions = [(1, 0)] if estimand == "ATT" else [(1, 0), (0, 1)]
    for src, dst in directions:
        rows, pool = np.flatnonzero(t == src), np.flatnonzero(t == dst)
        order = np.argsort(logit[pool])
        sorted_pool = logit[pool][order]
        for i in rows:
            idx = _nearest(sorted_pool, logit[i], m)
            near = pool[order[idx]]
            if np.abs(logit[near] - logit[i]).max() > width:
                used[i] = False
                continue
            imputed[i] = y[near].mean()
            np.add.at(k_used, near, 1)
    if estimand == "ATT":
        focus = (t == 1) & used
        effect = (y - imputed)[focus]
    else:
        focus = used
        effect = np.where(t == 1, y - imputed, imputed - y)[focus]
    if focus.sum() < 2:
        return _normal(
            "matching",
            estimand,
            float("nan"),
            float("nan"),
            int(focus.sum()),
            "Abadie-Imbens",
            "no row found a match within the caliper",
        )
    tau = float(effect.mean())
    sigma2 = _own_group_variance(y, t, logit)
    n = int(focus.sum())
    # what the squared effects miss of each row's reuse as a match (Abadie & Imbens 2006, thm 7)
    if estimand == "ATT":
        extra = np.where(t == 0, k_used * (k_used - 1) / m**2, 0.0)
    else:
        extra = k_used * (k_used - 1) / m**2 + 2 * k_used / m
    variance = (np.sum((effect - tau) ** 2) + np.sum(extra * sigma2)) / n**2
    dropped = int(((t == 1) if estimand == "ATT" else np.ones_like(used)).sum() - n)
    note = f"{dropped:,} rows without a match within the caliper" if dropped else ""
    return _normal("matching", estimand, tau, float(np.sqrt(variance)), n, "Abadie-Imbens", note)


def _nearest(sorted_values: np.ndarray, x: float, m: int) -> np.ndarray:
    """Positions of the ``m`` values nearest ``x`` in a sorted array."""
    pos = int(np.searchsorted(sorted_values, x))
    lo, hi = max(0, pos - m), min(len(sorted_values), pos + m)
    window = np.arange(lo, hi)
    return window[np.argsort(np.abs(sorted_values[window] - x), kind="stable")[:m]]


def _own_group_variance(y: np.ndarray, t: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Each row's conditional outcome variance, from its nearest neighbour in its own group:
    (y_i - y_j)^2 / 2 (Abadie & Imbens 2006, sec. 4)."""
    out = np.zeros(len(y))
    for arm in (0, 1):
        rows = np.flatnonzero(t == arm)
        if len(rows) < 2:
            continue
        order = rows[np.argsort(score[rows], kind="stable")]
        ys = y[order]
        left = np.r_[np.inf, np.abs(np.diff(score[order]))]
        right = np.r_[np.abs(np.diff(score[order])), np.inf]
        partner = np.where(left <= right, np.r_[ys[0], ys[:-1]], np.r_[ys[1:], ys[-1]])
        out[order] = (ys - partner) ** 2 / 2
    return out


def bootstrap(
    statistic: Callable[[np.ndarray], Any],
    *,
    replicates: int,
    seed: int,
    deadline: float,
    stratify: np.ndarray,
) -> list[Any]:
    """``statistic`` of row positions resampled within each group of ``stratify``, until
    ``replicates`` are done or the deadline passes; at least 10 are always drawn."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(stratify == g) for g in np.unique(stratify)]
    out = []
    for b in range(replicates):
        if b >= 10 and time.monotonic() > deadline:
            break
        rows = np.concatenate([rng.choice(g, len(g)) for g in groups])
        out.append(statistic(rows))
    return out


def from_bootstrap(
    method: str, estimand: str, value: float, draws: np.ndarray, rows: int
) -> Estimate:
    """A normal interval from the bootstrap standard error (steadier than percentiles from
    few replicates)."""
    se = float(np.std(draws, ddof=1))
    return _normal(method, estimand, value, se, rows, f"bootstrap ({len(draws)} refits)")
