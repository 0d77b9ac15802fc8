"""Attempts to refute an effect estimate: a placebo treatment, a random common cause, subsets
of the data, and how strong an unmeasured confounder would have to be (E-value). A refutation
that fails is a finding."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlre.causal.estimators import Estimate, number
from mlre.findings import Finding, Severity

#: Re-estimates the effect from (adjustment columns, treatment 0/1, outcome, seed).
Reestimate = Callable[[pd.DataFrame, np.ndarray, np.ndarray, int], Estimate]


@dataclass
class Refutation:
    """One attempt to refute the estimate and whether the estimate survived it."""

    name: str
    passed: bool
    new_effect: float
    detail: str
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "refutation": self.name,
            "passed": self.passed,
            "new_effect": self.new_effect,
            "detail": self.detail,
            "evidence": self.evidence,
        }


def placebo(
    X: pd.DataFrame, t: np.ndarray, y: np.ndarray, estimate: Reestimate, seed: int
) -> Refutation:
    """The treatment shuffled among the rows: the effect should vanish (its interval should
    hold zero)."""
    rng = np.random.default_rng(seed)
    fake = rng.permutation(t)
    e = estimate(X, fake, y, seed + 1)
    ok = e.covers(0.0)
    return Refutation(
        "placebo treatment",
        ok,
        e.value,
        f"with a shuffled treatment the effect is {number(e.value)} [{number(e.low)}, {number(e.high)}]"
        + (
            ", consistent with none"
            if ok
            else ", not zero: the estimator finds effects where there are none"
        ),
        e.to_dict(),
    )


def random_common_cause(
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    estimate: Reestimate,
    original: Estimate,
    seed: int,
) -> Refutation:
    """An extra confounder of pure noise: the estimate should stay inside its interval."""
    rng = np.random.default_rng(seed)
    extended = X.assign(random_common_cause=rng.standard_normal(len(X)))
    e = estimate(extended, t, y, seed)
    ok = original.covers(e.value)
    return Refutation(
        "random common cause",
        ok,
        e.value,
        f"with a column of noise added to the confounders the effect is {number(e.value)} "
        f"(was {number(original.value)})"
        + ("" if ok else ": outside the original interval, the estimate is unstable"),
        {"original": original.value, "new": e.value},
    )


def data_subsets(
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    estimate: Reestimate,
    original: Estimate,
    seed: int,
    *,
    fraction: float = 0.8,
    repeats: int = 3,
) -> Refutation:
    """The estimate on random subsets of ``fraction`` of the rows (stratified by treatment):
    each should stay inside the original interval."""
    rng = np.random.default_rng(seed)
    values = []
    for r in range(repeats):
        rows = np.concatenate(
            [
                rng.choice(g, max(2, round(fraction * len(g))), replace=False)
                for g in (np.flatnonzero(t == 0), np.flatnonzero(t == 1))
            ]
        )
        rows.sort()
        sub = estimate(X.iloc[rows].reset_index(drop=True), t[rows], y[rows], seed + r)
        values.append(sub.value)
    inside = [original.covers(v) for v in values]
    ok = all(inside)
    shown = ", ".join(f"{number(v)}" for v in values)
    return Refutation(
        "data subsets",
        ok,
        float(np.mean(values)),
        f"on {repeats} random {fraction:.0%} subsets: {shown}"
        + ("" if ok else "; some fall outside the original interval"),
        {"estimates": values, "fraction": fraction},
    )


def evalue_ratio(rr: float) -> float:
    """The E-value of a risk ratio (VanderWeele & Ding 2017): the strength, as a risk ratio
    with both treatment and outcome, an unmeasured confounder needs to explain it away."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    rr = rr if rr >= 1 else 1 / rr
    return float(rr + np.sqrt(rr * (rr - 1)))


def sensitivity(
    original: Estimate, y: np.ndarray, t: np.ndarray, binary_outcome: bool, baseline: float
) -> Refutation:
    """E-values of the estimate and of its interval's bound nearest no effect. A binary
    outcome uses the risk ratio (baseline risk + effect) / baseline; a numeric one the
    approximate risk ratio exp(0.91 d) of the standardised effect d (VanderWeele & Ding
    2017, sec. 5)."""

    def ratio(effect: float) -> float:
        if binary_outcome:
            return (baseline + effect) / baseline if baseline > 0 else float("nan")
        sd = float(np.std(y[t == 0], ddof=1))
        return float(np.exp(0.91 * effect / sd)) if sd > 0 else float("nan")

    point = evalue_ratio(ratio(original.value))
    crosses = original.low <= 0 <= original.high
    nearest = original.low if original.value > 0 else original.high
    bound = 1.0 if crosses else evalue_ratio(ratio(nearest))
    ok = crosses or bound >= 1.25
    detail = (
        f"E-value {point:.2f} (interval bound {bound:.2f}): to explain the effect away an "
        f"unmeasured confounder would have to raise both the treatment and the outcome "
        f"{point:.2f}-fold"
    )
    if crosses:
        detail += "; the interval already holds no effect"
    elif not ok:
        detail += "; a weak confounder could move the interval to no effect"
    return Refutation(
        "unobserved confounding (E-value)",
        ok,
        original.value,
        detail,
        {"e_value": point, "e_value_interval": bound, "binary_outcome": binary_outcome},
    )


def refutation_findings(refutations: list[Refutation]) -> list[Finding]:
    """A failed refutation is a warning; the rest are recorded."""
    out = []
    for r in refutations:
        out.append(
            Finding(
                severity=Severity.INFO if r.passed else Severity.WARNING,
                check="causal_refutation",
                message=f"{r.name}: {'passed' if r.passed else 'FAILED'}. {r.detail}",
                evidence=r.to_dict(),
            )
        )
    return out
