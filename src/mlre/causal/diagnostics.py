"""Diagnostics of an effect estimate, as findings: overlap of the propensities (and the rows
trimmed for it), covariate balance before and after weighting, confounding of the naive
comparison, and disagreement between estimators."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlre.causal.estimators import number
from mlre.errors import InputError
from mlre.findings import Finding, Severity

#: |standardised mean difference| above this is imbalance (Austin 2009; Stuart 2010).
SMD_LIMIT = 0.1

#: Fewest treated and untreated rows an estimate is made from.
MIN_ARM = 10


@dataclass
class Overlap:
    """Where the propensities of the two groups overlap, and which rows an estimand keeps."""

    estimand: str
    keep: np.ndarray
    trim: float
    auc: float
    treated_dropped: int
    control_dropped: int
    effective_controls: float  # Kish's effective sample size of the weighted controls

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "estimand": self.estimand,
            "trim": self.trim,
            "rows_kept": int(self.keep.sum()),
            "treated_dropped": self.treated_dropped,
            "control_dropped": self.control_dropped,
            "propensity_auc": self.auc,
            "effective_controls": self.effective_controls,
        }


def overlap(t: np.ndarray, e: np.ndarray, estimand: str, trim: float) -> Overlap:
    """Rows with common support for ``estimand``: for the ATT the treated whose propensity is
    at most 1 - trim (every untreated row may serve, weighted by e/(1-e)); for the ATE the rows
    with trim <= e <= 1 - trim (Crump et al. 2009). InputError when no overlap is left."""
    from sklearn.metrics import roc_auc_score

    keep = (t == 0) | (e <= 1 - trim) if estimand == "ATT" else (e >= trim) & (e <= 1 - trim)
    treated_left, controls_left = int((keep & (t == 1)).sum()), int((keep & (t == 0)).sum())
    auc = float(roc_auc_score(t, e))
    separated = e[t == 1].min() > e[t == 0].max() or e[t == 0].min() > e[t == 1].max()
    if separated or treated_left < MIN_ARM or controls_left < MIN_ARM:
        raise InputError(
            "no overlap: the treated and the untreated share no common ground in the "
            f"confounders (propensity AUC {auc:.3f}; after trimming at {trim:g}: "
            f"{treated_left} treated, {controls_left} untreated rows)",
            hint="a confounder may determine the treatment outright (a group label): leave it "
            "out, or compare within a population where both happen",
        )
    w = np.where(t == 0, e / (1 - e), 0.0)[keep] if estimand == "ATT" else None
    if w is None:
        w = np.where(t == 0, 1 / (1 - e), 0.0)[keep]
    ess = float(w.sum() ** 2 / np.sum(w**2)) if np.sum(w**2) > 0 else 0.0
    return Overlap(
        estimand,
        keep,
        trim,
        auc,
        int((t == 1).sum()) - treated_left,
        int((t == 0).sum()) - controls_left,
        ess,
    )


def overlap_findings(o: Overlap, t: np.ndarray, treatment: str) -> list[Finding]:
    """A warning when rows had to be trimmed or the weighted controls count for few."""
    out = []
    if o.treated_dropped or o.control_dropped:
        who = (
            f"{o.treated_dropped:,} of {int(t.sum()):,} treated rows have no comparable untreated "
            "rows"
            if o.estimand == "ATT"
            else f"{o.treated_dropped + o.control_dropped:,} of {len(t):,} rows have a "
            f"propensity outside [{o.trim:g}, {1 - o.trim:g}]"
        )
        out.append(
            Finding(
                severity=Severity.WARNING,
                check="causal_overlap",
                column=treatment,
                message=f"limited overlap for the {o.estimand}: {who}; they were trimmed, so "
                "the estimate speaks for the rows that remain",
                evidence=o.to_dict(),
                fix="look at who was trimmed; a narrower population may be the honest question",
            )
        )
    controls = int((t == 0).sum())
    if o.effective_controls < max(20.0, 0.05 * controls):
        out.append(
            Finding(
                severity=Severity.WARNING,
                check="causal_effective_sample",
                message=f"after weighting, the {controls:,} untreated rows count as only "
                f"{o.effective_controls:.0f}: the estimate rests on few comparable people",
                evidence={"effective_controls": round(o.effective_controls, 1)},
            )
        )
    return out


@dataclass
class Balance:
    """Standardised mean differences of each adjusted column, before and after weighting."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def worst(self, after: bool = True) -> float:
        """The largest |SMD| after (or before) weighting."""
        key = "smd_after" if after else "smd_before"
        return max((abs(r[key]) for r in self.rows), default=0.0)


def _design(X: pd.DataFrame) -> pd.DataFrame:
    """Numbers for balance: numeric columns as they are, categories as one column per level."""
    parts = []
    for c in X.columns:
        s = X[c]
        if pd.api.types.is_bool_dtype(s.dtype):
            parts.append(s.astype(float).rename(c))
        elif pd.api.types.is_numeric_dtype(s.dtype):
            parts.append(pd.to_numeric(s, errors="coerce").rename(c))
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            parts.append((s.astype("int64") / 86_400e9).rename(c))
        else:
            top = s.astype(str).value_counts().index[:20]
            parts += [(s.astype(str) == v).astype(float).rename(f"{c}={v}") for v in top]
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=X.index)


def _smd(x: np.ndarray, t: np.ndarray, w: np.ndarray) -> float:
    ok = ~np.isnan(x)
    x, t, w = x[ok], t[ok], w[ok]
    if t.sum() == 0 or (1 - t).sum() == 0:
        return 0.0
    m1 = np.average(x[t == 1], weights=w[t == 1])
    m0 = np.average(x[t == 0], weights=w[t == 0]) if w[t == 0].sum() > 0 else np.nan
    # the unweighted pooled spread, so that weighting cannot shrink the yardstick
    s = np.sqrt((x[t == 1].var() + x[t == 0].var()) / 2)
    return float((m1 - m0) / s) if s > 0 else 0.0


def balance(X: pd.DataFrame, t: np.ndarray, e: np.ndarray, o: Overlap) -> Balance:
    """|SMD| per column before weighting (all rows) and after (kept rows, the estimand's
    weights: 1 for the treated and e/(1-e) for the untreated for the ATT, 1/e and 1/(1-e) for
    the ATE)."""
    design = _design(X)
    keep = o.keep
    w = (
        np.where(t == 1, 1.0, e / (1 - e))
        if o.estimand == "ATT"
        else np.where(t == 1, 1 / e, 1 / (1 - e))
    )
    rows = []
    ones = np.ones(len(t))
    for c in design.columns:
        x = design[c].to_numpy(dtype=float)
        rows.append(
            {
                "column": c,
                "smd_before": _smd(x, t, ones),
                "smd_after": _smd(x[keep], t[keep], w[keep]),
            }
        )
    return Balance(rows)


def balance_findings(b: Balance, estimand: str) -> list[Finding]:
    """Imbalance left after weighting is a warning; what weighting fixed is recorded."""
    bad = [r for r in b.rows if abs(r["smd_after"]) > SMD_LIMIT]
    before = [r for r in b.rows if abs(r["smd_before"]) > SMD_LIMIT]
    out = [
        Finding(
            severity=Severity.INFO,
            check="causal_balance",
            message=f"before weighting {len(before)} of {len(b.rows)} adjusted columns differ "
            f"between the groups (|SMD| > {SMD_LIMIT}, largest {b.worst(False):.2f}); after "
            f"weighting for the {estimand}, {len(bad)} (largest {b.worst():.2f})",
            evidence={"smd": b.rows},
        )
    ]
    if bad:
        names = ", ".join(f"{r['column']} ({r['smd_after']:+.2f})" for r in bad[:6])
        out.append(
            Finding(
                severity=Severity.WARNING,
                check="causal_imbalance",
                message=f"still imbalanced after weighting: {names}; the propensity model may "
                "miss how these columns drive the treatment",
                evidence={"columns": [r["column"] for r in bad]},
                fix="rely on the doubly robust estimates, which also model the outcome",
            )
        )
    return out


def agreement_findings(
    naive: Any, estimates: list[Any], primary: Any, balance_before: float
) -> list[Finding]:
    """Confounding (the naive difference outside the primary estimate's interval) and
    disagreement between adjusting estimators beyond what their intervals allow."""
    out = []
    if primary is not None and np.isfinite(primary.value) and not primary.covers(naive.value):
        out.append(
            Finding(
                severity=Severity.WARNING,
                check="causal_confounding",
                message=f"the naive difference in means ({number(naive.value)}) lies outside the "
                f"adjusted {primary.estimand}'s 95% interval [{number(primary.low)}, "
                f"{number(primary.high)}]: the raw comparison is confounded (largest |SMD| "
                f"before adjustment {balance_before:.2f})",
                evidence={"naive": naive.value, "adjusted": primary.value},
                fix="quote the adjusted estimate, never the raw difference",
            )
        )
    good = [e for e in estimates if np.isfinite(e.value) and e.se > 0]
    pairs = []
    for i, a in enumerate(good):
        for b in good[i + 1 :]:
            gap = abs(a.value - b.value)
            if gap > 1.96 * np.sqrt(a.se**2 + b.se**2):
                pairs.append((a.method, b.method, gap))
    if pairs:
        shown = "; ".join(f"{a} vs {b} ({number(g)} apart)" for a, b, g in pairs[:4])
        out.append(
            Finding(
                severity=Severity.WARNING,
                check="causal_disagreement",
                message=f"estimators disagree beyond their uncertainty: {shown}. Some rest on a "
                "model that fits badly; the doubly robust ones need only one of the two models "
                "right",
                evidence={"pairs": [list(p) for p in pairs]},
            )
        )
    return out
