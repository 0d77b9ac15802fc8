"""One causal analysis from a checked table: nuisance models, every estimator for the ATE and
the ATT, diagnostics, refutations and (with effect modifiers) heterogeneous effects."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlre.causal import estimators as est
from mlre.causal.diagnostics import (
    Balance,
    Overlap,
    agreement_findings,
    balance,
    balance_findings,
    overlap,
    overlap_findings,
)
from mlre.causal.model import CausalModel
from mlre.causal.nuisance import DEFAULT_FAMILIES, Nuisance, cross_fit, plan_for
from mlre.data.profile import ColumnProfile
from mlre.errors import InputError
from mlre.features.pipeline import FeaturePlan
from mlre.findings import Finding, Findings, Severity

if TYPE_CHECKING:
    from mlre.causal.heterogeneity import Heterogeneity
    from mlre.causal.refute import Refutation

ESTIMANDS = ("ATE", "ATT")

#: Cross-fits double machine learning takes the median over.
DML_SPLITS = 3

#: Longest the regression adjustment's bootstrap refits may take (at least 10 are made).
RA_BOOTSTRAP_SECONDS = 60.0

Step = Callable[[str], None]


@dataclass
class CausalResult:
    """Everything one analysis found."""

    model: CausalModel
    estimand: str
    estimates: dict[str, list[est.Estimate]]
    naive: dict[str, est.Estimate]
    overlaps: dict[str, Overlap]
    balance: Balance
    nuisance: Nuisance
    refutations: list[Refutation] = field(default_factory=list)
    heterogeneity: Heterogeneity | None = None
    findings: Findings = field(default_factory=Findings)
    propensity: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: str | None = None

    @property
    def primary(self) -> est.Estimate | None:
        """The headline estimate: the doubly robust one for the chosen estimand."""
        return next((e for e in self.estimates.get(self.estimand, []) if e.method == "aipw"), None)

    def estimate(self, method: str, estimand: str | None = None) -> est.Estimate | None:
        """One estimator's answer (``naive`` included)."""
        estimand = estimand or self.estimand
        if method == "naive":
            return self.naive.get(estimand)
        return next((e for e in self.estimates.get(estimand, []) if e.method == method), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.model.to_dict(),
            "estimand": self.estimand,
            "primary": None if self.primary is None else self.primary.to_dict(),
            "estimates": {
                k: [self.naive[k].to_dict(), *(e.to_dict() for e in v)]
                for k, v in self.estimates.items()
            },
            "overlap": {k: o.to_dict() for k, o in self.overlaps.items()},
            "balance": self.balance.rows,
            "nuisance": {
                "families": self.nuisance.families,
                "out_of_fold_loss": self.nuisance.losses,
                "folds": self.nuisance.folds,
            },
            "refutations": [r.to_dict() for r in self.refutations],
            "heterogeneity": None if self.heterogeneity is None else self.heterogeneity.to_dict(),
            "findings": self.findings.to_list(),
            "seconds": self.seconds,
            "run_id": self.run_id,
        }


def _dml_fits(
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    plan: Any,
    first: Nuisance,
    seed: int,
    step: Step,
) -> list[Nuisance]:
    """The cross-fits double machine learning aggregates: the first one and fresh splits with
    the families it chose."""
    fits = [first]
    for r in range(1, DML_SPLITS):
        step(f"double machine learning: cross-fit {r + 1} of {DML_SPLITS}")
        fits.append(
            cross_fit(X, t, y, plan, first.families, folds=first.folds, seed=seed + 1000 * r)
        )
    return fits


def _ra_bootstrap(
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    plan: Any,
    families: dict[str, str],
    keeps: dict[str, np.ndarray],
    *,
    replicates: int,
    seconds: float,
    seed: int,
) -> dict[str, np.ndarray]:
    """Regression adjustment on bootstrap resamples, the outcome models refitted each time."""
    from mlre.causal.nuisance import ZooModel

    def one(rows: np.ndarray) -> dict[str, float]:
        Xb, tb, yb = X.iloc[rows], t[rows], y[rows]
        mu = {}
        for arm, key in ((0, "mu0"), (1, "mu1")):
            sel = tb == arm
            model = ZooModel(families[key], "regression", plan, seed).fit(Xb[sel], yb[sel])
            mu[key] = model.predict(Xb)
        return {
            k: est.regression(
                yb[keep[rows]], tb[keep[rows]], mu["mu0"][keep[rows]], mu["mu1"][keep[rows]], k
            )
            for k, keep in keeps.items()
        }

    draws = est.bootstrap(
        one, replicates=replicates, seed=seed, deadline=time.monotonic() + seconds, stratify=t
    )
    return {k: np.array([d[k] for d in draws]) for k in keeps}


def estimate_all(
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    plan: Any,
    nuisance: Nuisance,
    overlaps: dict[str, Overlap],
    *,
    seed: int,
    bootstrap: int,
    bootstrap_seconds: float,
    step: Step,
) -> dict[str, list[est.Estimate]]:
    """Every adjusting estimator for every estimand with overlap."""
    fits = _dml_fits(X, t, y, plan, nuisance, seed, step)
    step("regression adjustment: bootstrap")
    keeps = {k: o.keep for k, o in overlaps.items()}
    draws = _ra_bootstrap(
        X,
        t,
        y,
        plan,
        nuisance.families,
        keeps,
        replicates=bootstrap,
        seconds=bootstrap_seconds,
        seed=seed,
    )
    out: dict[str, list[est.Estimate]] = {}
    e_all = nuisance.clipped_e()
    for k, o in overlaps.items():
        keep = o.keep
        yk, tk, ek = y[keep], t[keep], e_all[keep]
        m0, m1 = nuisance.mu0[keep], nuisance.mu1[keep]
        ra = est.regression(yk, tk, m0, m1, k)
        dml_parts = [
            est.dml_one(yk, tk, np.clip(f.e[keep], 1e-3, 1 - 1e-3), f.mu0[keep], f.mu1[keep], k)
            for f in fits
        ]
        out[k] = [
            est.from_bootstrap("regression", k, ra, draws[k], int(keep.sum())),
            est.ipw(yk, tk, ek, k),
            est.aipw(yk, tk, ek, m0, m1, k),
            est.dml(dml_parts, k, int(keep.sum())),
            est.matching(yk, tk, ek, k),
        ]
    return out


def analyse(
    model: CausalModel,
    data: pd.DataFrame,
    profiles: dict[str, ColumnProfile],
    *,
    estimand: str = "ATE",
    families: tuple[str, ...] | list[str] = DEFAULT_FAMILIES,
    trim: float = 0.01,
    refute: bool = True,
    bootstrap: int = 50,
    seed: int = 0,
    step: Step | None = None,
) -> CausalResult:
    """The whole analysis; InputError when the data cannot answer the question (no overlap)."""
    step = step or (lambda _: None)
    started = time.monotonic()
    if estimand not in ESTIMANDS:
        raise InputError(f"unknown estimand {estimand!r}", hint="use ATE or ATT")
    if not 0 <= trim < 0.5:
        raise InputError(f"--trim must be in [0, 0.5), got {trim}")
    X = data[model.adjustment]
    t = data[model.treatment].to_numpy(dtype=int)
    y = data[model.outcome].to_numpy(dtype=float)
    plan = plan_for(model.adjustment, profiles)
    step("nuisance models")
    nuisance = cross_fit(X, t, y, plan, tuple(families), seed=seed, step=step)
    e = nuisance.clipped_e()
    overlaps, findings = _overlaps(t, e, estimand, trim, model.treatment)
    estimates = estimate_all(
        X,
        t,
        y,
        plan,
        nuisance,
        overlaps,
        seed=seed,
        bootstrap=bootstrap,
        bootstrap_seconds=RA_BOOTSTRAP_SECONDS,
        step=step,
    )
    naive = {k: est.naive(y, t, k) for k in overlaps}
    bal = balance(X, t, e, overlaps[estimand])
    findings += balance_findings(bal, estimand)
    result = CausalResult(model, estimand, estimates, naive, overlaps, bal, nuisance)
    findings += agreement_findings(
        naive[estimand], estimates[estimand], result.primary, bal.worst(after=False)
    )
    if refute and result.primary is not None:
        findings += _refute(result, X, t, y, profiles, trim=trim, seed=seed, step=step)
    if model.modifiers and "ATE" in overlaps:
        findings += _effect_heterogeneity(result, X, t, y, e, plan, seed=seed, step=step)
    findings += _nuisance_findings(nuisance)
    result.findings = Findings(findings)
    result.propensity = {"treated": e[t == 1].tolist(), "untreated": e[t == 0].tolist()}
    result.seconds = time.monotonic() - started
    return result


def _overlaps(
    t: np.ndarray, e: np.ndarray, estimand: str, trim: float, treatment: str
) -> tuple[dict[str, Overlap], list[Finding]]:
    """The overlap of treated and untreated rows for each estimand that has one (the headline
    first; InputError when it has none), and what it says."""
    findings: list[Finding] = []
    overlaps: dict[str, Overlap] = {}
    for k in sorted(ESTIMANDS, key=lambda k: k != estimand):  # the headline first
        try:
            overlaps[k] = overlap(t, e, k, trim)
        except InputError as err:
            if k == estimand:
                raise
            findings.append(
                Finding(
                    severity=Severity.WARNING,
                    check="causal_overlap",
                    message=f"the {k} cannot be estimated: {err.message}",
                )
            )
    for o in overlaps.values():
        findings += overlap_findings(o, t, treatment)
    return overlaps, findings


def _refute(
    result: CausalResult,
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    profiles: dict[str, ColumnProfile],
    *,
    trim: float,
    seed: int,
    step: Step,
) -> list[Finding]:
    """Try to break the primary estimate (placebo treatment, a random common cause, subsets of
    the data, sensitivity to a hidden confounder); the refutations go into ``result``."""
    from mlre.causal import refute as ref

    estimand, nuisance = result.estimand, result.nuisance

    def again(Xr: pd.DataFrame, tr: np.ndarray, yr: np.ndarray, s: int) -> est.Estimate:
        plan_r = plan_for(list(Xr.columns), profiles | _extra_profiles(Xr, profiles))
        nu = cross_fit(Xr, tr, yr, plan_r, nuisance.families, folds=nuisance.folds, seed=s)
        er = nu.clipped_e()
        try:
            keep = overlap(tr, er, estimand, trim).keep
        except InputError:
            return est.Estimate("aipw", estimand, np.nan, np.nan, np.nan, np.nan, "", 0)
        return est.aipw(yr[keep], tr[keep], er[keep], nu.mu0[keep], nu.mu1[keep], estimand)

    primary = result.primary
    if primary is None:
        raise ValueError("there is no primary estimate to refute")
    step("refutation: placebo treatment")
    result.refutations.append(ref.placebo(X, t, y, again, seed + 7))
    step("refutation: random common cause")
    result.refutations.append(ref.random_common_cause(X, t, y, again, primary, seed + 11))
    step("refutation: data subsets")
    result.refutations.append(ref.data_subsets(X, t, y, again, primary, seed + 13))
    keep = result.overlaps[estimand].keep
    baseline = float(
        np.mean(nuisance.mu0[keep & (t == 1)]) if estimand == "ATT" else y[t == 0].mean()
    )
    binary = result.model.binary_outcome
    result.refutations.append(ref.sensitivity(primary, y, t, binary, baseline))
    return ref.refutation_findings(result.refutations)


def _effect_heterogeneity(
    result: CausalResult,
    X: pd.DataFrame,
    t: np.ndarray,
    y: np.ndarray,
    e: np.ndarray,
    plan: FeaturePlan,
    *,
    seed: int,
    step: Step,
) -> list[Finding]:
    """How the effect varies along the model's modifiers, over the rows the ATE keeps; it goes
    into ``result``."""
    from mlre.causal.heterogeneity import heterogeneity, heterogeneity_findings

    step("heterogeneous effects: causal forest")
    nuisance = result.nuisance
    keep = result.overlaps["ATE"].keep
    m0, m1 = nuisance.mu0[keep], nuisance.mu1[keep]
    theta, psi = est.aipw_scores(y[keep], t[keep], e[keep], m0, m1, "ATE")
    scores = psi + theta  # each row's doubly robust effect
    result.heterogeneity = heterogeneity(
        X[keep].reset_index(drop=True),
        t[keep],
        y[keep],
        plan,
        result.model.modifiers,
        scores,
        nuisance.families,
        seed=seed,
    )
    return heterogeneity_findings(result.heterogeneity)


def _extra_profiles(
    X: pd.DataFrame, profiles: dict[str, ColumnProfile]
) -> dict[str, ColumnProfile]:
    """Profiles of columns a refutation added (numeric noise)."""
    from mlre.data.profile import profile_column

    return {c: profile_column(X[c], c, False) for c in X.columns if c not in profiles}


def _nuisance_findings(n: Nuisance) -> list[Finding]:
    words = {"e": "propensity", "mu0": "outcome without treatment", "mu1": "outcome with it"}
    chosen = ", ".join(f"{words[k]}: {v}" for k, v in n.families.items())
    return [
        Finding(
            severity=Severity.INFO,
            check="causal_nuisance",
            message=f"nuisance models chosen by out-of-fold loss over {n.folds} folds: {chosen}",
            evidence={"losses": n.losses},
        )
    ]
