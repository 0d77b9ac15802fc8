"""Heterogeneous effects (CATE) along the effect modifiers a user names: EconML's causal forest
(honest, with per-row intervals) on top of mlre's nuisance models, and for each modifier the
doubly robust effect per group with a test of whether the groups differ."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mlre.causal.nuisance import ZooModel
from mlre.features.pipeline import FeaturePlan, make_preprocessor
from mlre.findings import Finding, Severity


@dataclass
class GroupEffect:
    """The doubly robust effect within one group of a modifier."""

    modifier: str
    group: str
    rows: int
    effect: float
    low: float
    high: float


@dataclass
class Heterogeneity:
    """How the effect varies along the modifiers."""

    modifiers: list[str]
    cate_mean: float
    cate_quantiles: dict[str, float]
    share_positive: float  # rows whose CATE interval lies above zero
    share_negative: float
    importance: dict[str, float]
    tests: dict[str, float]  # modifier -> p-value that its groups share one effect
    groups: list[GroupEffect] = field(default_factory=list)
    rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "modifiers": self.modifiers,
            "rows": self.rows,
            "cate_mean": self.cate_mean,
            "cate_quantiles": self.cate_quantiles,
            "share_interval_above_zero": self.share_positive,
            "share_interval_below_zero": self.share_negative,
            "importance": self.importance,
            "heterogeneity_p_values": self.tests,
            "groups": [g.__dict__ for g in self.groups],
        }


def _encode(X: pd.DataFrame, plan: FeaturePlan) -> tuple[np.ndarray, list[str]]:
    """Numbers for EconML, and the source column of each output column."""
    prep = make_preprocessor(plan, "plain")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = prep.fit_transform(X)
    sources = []
    for name in map(str, out.columns):
        source = next((c for c in sorted(plan.columns, key=len, reverse=True) if c in name), name)
        sources.append(source)
    return out.to_numpy(dtype=float), sources


def _subplan(plan: FeaturePlan, columns: list[str]) -> FeaturePlan:
    keep = set(columns)
    return FeaturePlan(
        numeric=[c for c in plan.numeric if c in keep],
        boolean=[c for c in plan.boolean if c in keep],
        datetime=[c for c in plan.datetime if c in keep],
        categorical=[c for c in plan.categorical if c in keep],
    )


def modifier_groups(s: pd.Series, max_groups: int = 8) -> pd.Series:
    """Group labels of an effect modifier, at most ``max_groups`` of them so that each holds
    enough rows for its own effect: quartile bands of a number with many values, otherwise its
    most common values (the rest as 'other'); every row has a group."""
    if pd.api.types.is_numeric_dtype(s.dtype) and s.nunique() > max_groups:
        bands = pd.qcut(s, 4, duplicates="drop")
        return bands.astype(str).where(s.notna(), "missing")
    labels = s.astype(str).where(s.notna(), "missing")
    top = labels.value_counts().index[: max_groups - 1]
    return labels.where(labels.isin(top), "other")


def group_effects(
    X: pd.DataFrame, modifiers: list[str], scores: np.ndarray
) -> tuple[list[GroupEffect], dict[str, float]]:
    """Mean doubly robust score per group of each modifier (95% intervals), and per modifier
    the chi-squared test that every group has the same effect."""
    out, tests = [], {}
    for m in modifiers:
        labels = modifier_groups(X[m])
        means, ses = [], []
        for g in sorted(labels.unique()):
            s = scores[(labels == g).to_numpy()]
            if len(s) < 5:
                continue
            se = float(np.std(s, ddof=1) / np.sqrt(len(s)))
            means.append(float(s.mean()))
            ses.append(se)
            out.append(
                GroupEffect(
                    m, g, len(s), float(s.mean()), s.mean() - 1.96 * se, s.mean() + 1.96 * se
                )
            )
        if len(means) >= 2 and all(se > 0 for se in ses):
            w = 1 / np.square(ses)
            pooled = float(np.sum(w * np.array(means)) / w.sum())
            chi2 = float(np.sum(w * (np.array(means) - pooled) ** 2))
            tests[m] = float(stats.chi2.sf(chi2, len(means) - 1))
    return out, tests


def heterogeneity(
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    plan: FeaturePlan,
    modifiers: list[str],
    scores: np.ndarray,
    families: dict[str, str],
    *,
    seed: int = 0,
    trees: int = 200,
) -> Heterogeneity:
    """CATE of every row from a causal forest over the modifiers (the other adjusted columns
    as controls), with the chosen nuisance families; group effects from ``scores``."""
    from econml.dml import CausalForestDML

    from mlre.models.families import n_threads

    x_num, x_sources = _encode(X, _subplan(plan, modifiers))
    others = [c for c in plan.columns if c not in modifiers]
    w_num = _encode(X, _subplan(plan, others))[0] if others else None
    forest = CausalForestDML(
        model_y=ZooModel(families.get("mu0", "lightgbm"), "regression", seed=seed),
        model_t=ZooModel(families.get("e", "lightgbm"), "binary", seed=seed),
        discrete_treatment=True,
        cv=3,
        n_estimators=trees,
        min_samples_leaf=10,
        random_state=seed,
        n_jobs=n_threads(),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forest.fit(y, t, X=x_num, W=w_num)
        cate = forest.effect(x_num).ravel()
        low, high = (a.ravel() for a in forest.effect_interval(x_num, alpha=0.05))
        raw = np.asarray(forest.feature_importances_, dtype=float).ravel()
    importance: dict[str, float] = {m: 0.0 for m in modifiers}
    for value, source in zip(raw, x_sources, strict=False):
        if source in importance:
            importance[source] += float(value)
    total = sum(importance.values()) or 1.0
    importance = {k: v / total for k, v in sorted(importance.items(), key=lambda kv: -kv[1])}
    groups, tests = group_effects(X, modifiers, scores)
    return Heterogeneity(
        modifiers=modifiers,
        cate_mean=float(cate.mean()),
        cate_quantiles={q: float(np.quantile(cate, float(q))) for q in ("0.1", "0.5", "0.9")},
        share_positive=float(np.mean(low > 0)),
        share_negative=float(np.mean(high < 0)),
        importance=importance,
        tests=tests,
        groups=groups,
        rows=len(y),
    )


def heterogeneity_findings(h: Heterogeneity, alpha: float = 0.05) -> list[Finding]:
    """Which modifiers the effect varies with (groups differ at ``alpha``), or that it does
    not detectably vary."""
    varying = [m for m, p in h.tests.items() if p < alpha]
    lead = next(iter(h.importance), None)
    if varying:
        shown = ", ".join(f"{m} (p = {h.tests[m]:.3g})" for m in varying)
        message = f"the effect differs between groups of {shown}"
    else:
        message = "no modifier shows a difference in effect between its groups beyond chance"
    if lead is not None:
        message += (
            f"; in the causal forest {lead} drives most of the variation "
            f"({h.importance[lead]:.0%} of the importance)"
        )
    return [
        Finding(
            severity=Severity.INFO,
            check="causal_heterogeneity",
            message=message,
            evidence={"p_values": h.tests, "importance": h.importance},
        )
    ]
