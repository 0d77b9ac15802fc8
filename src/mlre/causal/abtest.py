"""A/B tests: the difference in a metric's mean between variants with its interval, CUPED
variance reduction with a pre-period covariate, a sample-ratio-mismatch check, and the power
and minimum detectable effect of the test as run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlre.causal.estimators import number
from mlre.causal.model import require_columns
from mlre.errors import InputError
from mlre.findings import Finding, Severity

#: Below this p-value the split of users between variants is called a sample-ratio mismatch
#: (the usual threshold: Fabijan et al. 2019).
SRM_ALPHA = 0.001


@dataclass
class Comparison:
    """One variant against the control."""

    variant: str
    control: str
    rows: tuple[int, int]
    means: tuple[float, float]
    difference: float
    se: float
    low: float
    high: float
    p_value: float
    relative: float  # difference / control mean
    relative_low: float
    relative_high: float
    cuped: dict[str, float] | None = None  # the same, adjusted by the covariate
    p_adjusted: float | None = None  # Holm, when several variants share one control

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(self.__dict__)


@dataclass
class ABTest:
    """The whole test: comparisons, the split check, power, findings."""

    variant_column: str
    metric: str
    covariate: str | None
    alpha: float
    counts: dict[str, int]
    expected_share: dict[str, float]
    srm_p_value: float
    comparisons: list[Comparison]
    mde: float  # smallest absolute difference the test had `power` to detect
    mde_relative: float
    power: float
    power_observed: float  # power against the difference actually seen
    rows_needed: int | None  # per variant, to detect `target_effect`
    target_effect: float | None
    findings: list[Finding] = field(default_factory=list)
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("comparisons", "findings")}
        out["comparisons"] = [c.to_dict() for c in self.comparisons]
        out["findings"] = [f.model_dump(mode="json") for f in self.findings]
        return out


def _numeric(df: pd.DataFrame, column: str, what: str) -> np.ndarray:
    require_columns(df, [column], what)
    s = df[column]
    if pd.api.types.is_bool_dtype(s.dtype):
        s = s.astype(float)
    if not pd.api.types.is_numeric_dtype(s.dtype):
        raise InputError(
            f"the {what} {column!r} is not numeric",
            hint="an A/B metric is a number per row (revenue) or 0/1 (converted)",
        )
    return s.to_numpy(dtype=float)


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(difference a - b, standard error, Welch degrees of freedom)."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1)) if se > 0 else 1.0
    return float(a.mean() - b.mean()), se, float(df)


def compare_arms(y_v: np.ndarray, y_c: np.ndarray, alpha: float) -> dict[str, float]:
    """Difference in means, Welch interval and p-value, and the relative lift with a
    delta-method interval."""
    diff, se, dof = _welch(y_v, y_c)
    q = float(stats.t.ppf(1 - alpha / 2, dof))
    p = float(2 * stats.t.sf(abs(diff / se), dof)) if se > 0 else float("nan")
    m_c = float(y_c.mean())
    rel = diff / m_c if m_c else float("nan")
    # Var(a/b - 1) by the delta method, the arms independent
    var_rel = (
        (y_v.var(ddof=1) / len(y_v)) / m_c**2
        + (y_v.mean() ** 2) * (y_c.var(ddof=1) / len(y_c)) / m_c**4
        if m_c
        else float("nan")
    )
    se_rel = float(np.sqrt(var_rel))
    return {
        "difference": diff,
        "se": se,
        "low": diff - q * se,
        "high": diff + q * se,
        "p_value": p,
        "relative": rel,
        "relative_low": rel - q * se_rel,
        "relative_high": rel + q * se_rel,
    }


def cuped(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The metric less its prediction from the pre-period covariate (Deng et al. 2013), theta
    pooled over all variants; returns (adjusted metric, theta, share of variance removed)."""
    ok = ~np.isnan(x)
    theta = float(np.cov(y[ok], x[ok])[0, 1] / np.var(x[ok], ddof=1)) if np.var(x[ok]) > 0 else 0
    filled = np.where(ok, x, np.nanmean(x))
    adjusted = y - theta * (filled - filled.mean())
    reduction = 1 - adjusted.var() / y.var() if y.var() > 0 else 0.0
    return adjusted, theta, float(reduction)


def abtest(
    df: pd.DataFrame,
    *,
    variant: str,
    metric: str,
    covariate: str | None = None,
    control: str | None = None,
    expected_split: list[float] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    target_effect: float | None = None,
) -> ABTest:
    """Analyse an experiment with one row per unit: ``variant`` holds its arm, ``metric`` its
    outcome, ``covariate`` (optional) the same metric before the experiment."""
    require_columns(df, [variant], "variant")
    if not 0 < alpha < 0.5 or not 0 < power < 1:
        raise InputError("alpha must be in (0, 0.5) and power in (0, 1)")
    labels, y, x, keep = _units(df, variant, metric, covariate)
    names = sorted(pd.unique(labels), key=str)
    control = _control_arm(variant, names, control)
    counts = {n: int((labels == n).sum()) for n in names}
    small = [n for n, c in counts.items() if c < 2]
    if small:
        raise InputError(f"variant {small[0]!r} has fewer than two rows")
    expected = _expected_shares(names, expected_split)
    n = sum(counts.values())
    srm_p = float(
        stats.chisquare([counts[k] for k in names], [expected[k] * n for k in names]).pvalue
    )
    adjusted, theta, reduction = cuped(y, x) if x is not None else (None, 0.0, 0.0)
    comparisons = _compare_variants(labels, y, names, control, alpha)
    if adjusted is not None:
        _add_cuped(comparisons, labels, adjusted, alpha, theta, reduction)
    if len(comparisons) > 1:
        _adjust_for_many(comparisons, alpha)
    # power and the minimum detectable effect of the test as run (on the adjusted metric when
    # there is one: that is the test whose interval is reported)
    base = adjusted if adjusted is not None else y
    first = comparisons[0]
    mde, power_seen, needed = _power_as_run(
        base, labels, counts, first, alpha, power, target_effect
    )
    test = ABTest(
        variant_column=variant,
        metric=metric,
        covariate=covariate,
        alpha=alpha,
        counts=counts,
        expected_share=expected,
        srm_p_value=srm_p,
        comparisons=comparisons,
        mde=mde,
        mde_relative=mde / abs(first.means[1]) if first.means[1] else float("nan"),
        power=power,
        power_observed=power_seen,
        rows_needed=needed,
        target_effect=target_effect,
    )
    test.findings = _findings(test, int((~keep).sum()))
    return test


def _units(
    df: pd.DataFrame, variant: str, metric: str, covariate: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """The units with an arm and a metric: their arms, metric and covariate (when given), and
    which rows of ``df`` they are."""
    y_all = _numeric(df, metric, "metric")
    x_all = _numeric(df, covariate, "covariate") if covariate else None
    arms = df[variant].astype(str).where(df[variant].notna(), None)
    keep = arms.notna().to_numpy() & ~np.isnan(y_all)
    x = x_all[keep] if x_all is not None else None
    return arms[keep].to_numpy(), y_all[keep], x, keep


def _control_arm(variant: str, names: list[str], control: str | None) -> str:
    """The control among two or more variants: the one given, else one named like a control,
    else the first."""
    if len(names) < 2:
        raise InputError(
            f"{variant!r} holds a single variant ({names[0] if names else 'none'}): nothing to "
            "compare",
        )
    if control is None:
        return next((n for n in names if n.lower() in ("control", "a", "0", "baseline")), names[0])
    if str(control) not in names:
        raise InputError(f"no variant {control!r}", hint="variants: " + ", ".join(names))
    return str(control)


def _expected_shares(names: list[str], expected_split: list[float] | None) -> dict[str, float]:
    """Each variant's intended share of the units: as given (normalised), else equal."""
    if expected_split is None:
        return {n: 1 / len(names) for n in names}
    if len(expected_split) != len(names) or min(expected_split) <= 0:
        raise InputError(
            f"--expected-split needs {len(names)} positive shares (for "
            f"{', '.join(names)}), got {expected_split}"
        )
    total = float(sum(expected_split))
    return {n: s / total for n, s in zip(names, expected_split, strict=True)}


def _compare_variants(
    labels: np.ndarray, y: np.ndarray, names: list[str], control: str, alpha: float
) -> list[Comparison]:
    """Each variant's metric against the control's."""
    y_c = y[labels == control]
    comparisons = []
    for name in (k for k in names if k != control):
        y_v = y[labels == name]
        r = compare_arms(y_v, y_c, alpha)
        comparisons.append(
            Comparison(
                name,
                control,
                (len(y_v), len(y_c)),
                (float(y_v.mean()), float(y_c.mean())),
                difference=r["difference"],
                se=r["se"],
                low=r["low"],
                high=r["high"],
                p_value=r["p_value"],
                relative=r["relative"],
                relative_low=r["relative_low"],
                relative_high=r["relative_high"],
            )
        )
    return comparisons


def _add_cuped(
    comparisons: list[Comparison],
    labels: np.ndarray,
    adjusted: np.ndarray,
    alpha: float,
    theta: float,
    reduction: float,
) -> None:
    """The same comparisons on the CUPED-adjusted metric."""
    for c in comparisons:
        a = compare_arms(adjusted[labels == c.variant], adjusted[labels == c.control], alpha)
        c.cuped = a | {"theta": theta, "variance_reduction": reduction}


def _adjust_for_many(comparisons: list[Comparison], alpha: float) -> None:
    """Holm-adjusted p-values, for several variants tested against one control."""
    from statsmodels.stats.multitest import multipletests

    ps = [(c.cuped or {}).get("p_value", c.p_value) for c in comparisons]
    for c, p in zip(comparisons, multipletests(ps, alpha=alpha, method="holm")[1], strict=True):
        c.p_adjusted = float(p)


def _power_as_run(
    base: np.ndarray,
    labels: np.ndarray,
    counts: dict[str, int],
    first: Comparison,
    alpha: float,
    power: float,
    target_effect: float | None,
) -> tuple[float, float, int | None]:
    """The first comparison's minimum detectable effect at ``power``, its power against the
    difference seen, and the rows per variant that would detect ``target_effect``."""
    se = float(
        np.sqrt(
            base[labels == first.variant].var(ddof=1) / counts[first.variant]
            + base[labels == first.control].var(ddof=1) / counts[first.control]
        )
    )
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    mde = float((z_a + z_b) * se)
    seen = abs((first.cuped or {}).get("difference", first.difference))
    power_seen = float(stats.norm.sf(z_a - seen / se) + stats.norm.cdf(-z_a - seen / se))
    needed = None
    if target_effect is not None:
        if target_effect == 0:
            raise InputError("--target-effect must not be zero")
        pooled = float(base.var(ddof=1))
        needed = int(np.ceil(2 * pooled * (z_a + z_b) ** 2 / target_effect**2))
    return mde, power_seen, needed


def _findings(test: ABTest, dropped: int) -> list[Finding]:
    out = []
    if test.srm_p_value < SRM_ALPHA:
        shares = ", ".join(
            f"{k} {v / sum(test.counts.values()):.1%} (expected {test.expected_share[k]:.1%})"
            for k, v in test.counts.items()
        )
        out.append(
            Finding(
                severity=Severity.ERROR,
                check="ab_sample_ratio_mismatch",
                message=f"sample-ratio mismatch: {shares}, p = {test.srm_p_value:.2g}. The "
                "assignment or the logging is broken; the comparison cannot be trusted",
                evidence={"counts": test.counts, "p_value": test.srm_p_value},
                fix="find where units were lost or duplicated before reading the result",
            )
        )
    for c in test.comparisons:
        r = c.cuped or c.__dict__
        p = c.p_adjusted if c.p_adjusted is not None else r["p_value"]
        significant = p < test.alpha
        word = "higher" if r["difference"] > 0 else "lower"
        adjusted = " (CUPED-adjusted)" if c.cuped else ""
        message = (
            f"{c.variant} vs {c.control}: {test.metric} {word} by {number(abs(r['difference']))} "
            f"({r['relative']:+.2%}){adjusted}, 95% CI [{number(r['low'])}, {number(r['high'])}], "
            f"p = {p:.3g}: "
            + ("a real difference" if significant else "not distinguishable from no difference")
        )
        out.append(
            Finding(
                severity=Severity.INFO,
                check="ab_result",
                message=message,
                evidence=c.to_dict(),
            )
        )
        if c.cuped:
            out.append(
                Finding(
                    severity=Severity.INFO,
                    check="ab_cuped",
                    message=f"CUPED with {test.covariate} removed "
                    f"{c.cuped['variance_reduction']:.0%} of the metric's variance; the "
                    f"interval is {1 - (c.cuped['high'] - c.cuped['low']) / (c.high - c.low):.0%}"
                    " narrower than without it",
                    evidence={"theta": c.cuped["theta"]},
                )
            )
    if test.power_observed < test.power and not any(
        (c.p_adjusted if c.p_adjusted is not None else (c.cuped or c.__dict__)["p_value"])
        < test.alpha
        for c in test.comparisons
    ):
        out.append(
            Finding(
                severity=Severity.WARNING,
                check="ab_underpowered",
                message=f"the test could detect only differences of {number(test.mde)} "
                f"({test.mde_relative:.1%}) or more with {test.power:.0%} power; a smaller "
                "real effect would likely be missed",
                evidence={"mde": test.mde, "power_observed": test.power_observed},
                fix="run longer, or use a pre-period covariate (--covariate) to cut variance",
            )
        )
    if dropped:
        out.append(
            Finding(
                severity=Severity.INFO,
                check="ab_missing",
                message=f"{dropped:,} rows without a variant or a metric value were left out",
            )
        )
    return out
