"""Data drift between a reference table and a current one, column by column, with the test
that suits the column's type and the samples' size, the population stability index (PSI), the
share of drifted columns, and the figures that show each shift.

The rule (the one Evidently documents for its default preset, written here for mlre's types):
a small sample is judged by a test of no difference (Kolmogorov-Smirnov for numbers,
chi-squared for categories); a large one by how far the distributions are apart (Wasserstein
distance in reference standard deviations, Jensen-Shannon distance), because with many rows
every p-value is tiny and a test calls the most harmless shift drift."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlre.findings import Finding, Severity

#: Above this many reference rows the sample counts as large (distance instead of a p-value).
LARGE = 1000

#: Most categories kept apart; the rarer ones are pooled as "other".
MAX_CATEGORIES = 30


@dataclass
class Thresholds:
    """When a column, and the data set, are called drifted."""

    p_value: float = 0.05
    distance: float = 0.1
    psi_moderate: float = 0.1
    psi_major: float = 0.25
    drift_share: float = 0.5  # of the columns drifted: the data set drifted


@dataclass
class ColumnDrift:
    """How one column moved."""

    column: str
    kind: str  # "numeric" or "categorical"
    test: str  # what decided: "ks", "chi2", "wasserstein", "jensen_shannon"
    statistic: float
    p_value: float | None
    distance: float | None
    psi: float
    drifted: bool
    reference_rows: int
    current_rows: int
    figure: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def psi_band(self) -> str:
        """stable (< 0.1), moderate (0.1-0.25) or major (> 0.25), the usual reading of PSI."""
        return "stable" if self.psi < 0.1 else "moderate" if self.psi <= 0.25 else "major"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (without the figure)."""
        out = {k: v for k, v in self.__dict__.items() if k != "figure"}
        out["psi_band"] = self.psi_band
        return out


def _kind(ref: pd.Series) -> str:
    """numeric for numbers with more than five values; the rest are counted as categories."""
    if pd.api.types.is_bool_dtype(ref.dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(ref.dtype) and ref.nunique() > 5:
        return "numeric"
    return "categorical"


def _psi(ref_share: np.ndarray, cur_share: np.ndarray) -> float:
    eps = 1e-4  # an empty bin would make the logarithm infinite
    r, c = np.clip(ref_share, eps, None), np.clip(cur_share, eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_drift(ref: np.ndarray, cur: np.ndarray, column: str, t: Thresholds) -> ColumnDrift:
    """A number's drift: KS test on small samples, else Wasserstein distance in reference
    standard deviations; PSI over the reference's deciles."""
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    ks = stats.ks_2samp(ref, cur)
    sd = float(np.std(ref))
    distance = float(stats.wasserstein_distance(ref, cur) / sd) if sd > 0 else 0.0
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)))
    edges[0], edges[-1] = -np.inf, np.inf
    ref_share = np.histogram(ref, edges)[0] / max(len(ref), 1)
    cur_share = np.histogram(cur, edges)[0] / max(len(cur), 1)
    small = len(ref) <= LARGE
    drifted = ks.pvalue < t.p_value if small else distance > t.distance
    lo, hi = np.quantile(np.r_[ref, cur], [0.005, 0.995]) if len(ref) + len(cur) else (0, 1)
    bins = {"start": float(lo), "end": float(hi), "size": float(hi - lo) / 40 or 1.0}
    figure = {
        "data": [
            {
                "type": "histogram",
                "x": _sample(ref),
                "name": "reference",
                "opacity": 0.6,
                "histnorm": "probability",
                "xbins": bins,
            },
            {
                "type": "histogram",
                "x": _sample(cur),
                "name": "current",
                "opacity": 0.6,
                "histnorm": "probability",
                "xbins": bins,
            },
        ],
        "layout": {
            "title": f"{column}",
            "barmode": "overlay",
            "template": "plotly_white",
            "height": 300,
        },
    }
    return ColumnDrift(
        column,
        "numeric",
        "ks" if small else "wasserstein",
        float(ks.statistic),
        float(ks.pvalue),
        distance,
        _psi(ref_share, cur_share),
        bool(drifted),
        len(ref),
        len(cur),
        figure,
    )


def categorical_drift(ref: pd.Series, cur: pd.Series, column: str, t: Thresholds) -> ColumnDrift:
    """A category's drift: chi-squared test that both samples share one distribution on small
    references, else Jensen-Shannon distance; PSI over the categories. A category the reference
    never had counts against the current sample."""
    r = ref.astype(str).where(ref.notna(), "(missing)")
    c = cur.astype(str).where(cur.notna(), "(missing)")
    top = r.value_counts().index[:MAX_CATEGORIES]
    levels = [*top, "other"]
    rc = r.where(r.isin(top), "other").value_counts().reindex(levels, fill_value=0).to_numpy()
    cc = c.where(c.isin(top), "other").value_counts().reindex(levels, fill_value=0).to_numpy()
    keep = (rc + cc) > 0
    rc, cc, levels = rc[keep], cc[keep], [lv for lv, k in zip(levels, keep, strict=True) if k]
    ref_share, cur_share = rc / max(rc.sum(), 1), cc / max(cc.sum(), 1)
    # a test of homogeneity of the two samples' counts: the reference is a sample too, and
    # taking its shares as exact would call noise drift twice as often as it should
    chi = stats.chi2_contingency(np.vstack([rc, cc]), correction=False) if len(levels) > 1 else None
    distance = float(jensenshannon(ref_share, cur_share, base=2)) if len(levels) > 1 else 0.0
    small = len(r) <= LARGE
    p = float(chi.pvalue) if chi is not None else 1.0
    drifted = p < t.p_value if small else distance > t.distance
    figure = {
        "data": [
            {"type": "bar", "x": levels, "y": ref_share.tolist(), "name": "reference"},
            {"type": "bar", "x": levels, "y": cur_share.tolist(), "name": "current"},
        ],
        "layout": {
            "title": f"{column}",
            "barmode": "group",
            "template": "plotly_white",
            "height": 300,
        },
    }
    return ColumnDrift(
        column,
        "categorical",
        "chi2" if small else "jensen_shannon",
        float(chi.statistic) if chi is not None else 0.0,
        p,
        distance,
        _psi(ref_share, cur_share),
        bool(drifted),
        len(r),
        len(c),
        figure,
    )


def _sample(values: np.ndarray, n: int = 5000) -> list[float]:
    """At most ``n`` values for a figure (a page of a million points would be unreadable)."""
    if len(values) <= n:
        return values.tolist()
    return np.random.default_rng(0).choice(values, n, replace=False).tolist()


def column_drift(ref: pd.Series, cur: pd.Series, column: str, t: Thresholds) -> ColumnDrift:
    """The drift of one column, by its type."""
    if _kind(ref) == "numeric":
        as_number = pd.to_numeric(cur, errors="coerce")
        return numeric_drift(
            ref.to_numpy(dtype=float, na_value=np.nan),
            as_number.to_numpy(dtype=float, na_value=np.nan),
            column,
            t,
        )
    return categorical_drift(ref, cur, column, t)


@dataclass
class DataDrift:
    """Every column's drift and whether the data set as a whole moved."""

    columns: list[ColumnDrift]
    thresholds: Thresholds
    prediction: ColumnDrift | None = None
    target: ColumnDrift | None = None  # the labels' own drift (prior shift), when both have them

    @property
    def drifted(self) -> list[ColumnDrift]:
        """The drifted columns, the largest PSI first."""
        return sorted((c for c in self.columns if c.drifted), key=lambda c: -c.psi)

    @property
    def share(self) -> float:
        """Share of the columns that drifted."""
        return len(self.drifted) / len(self.columns) if self.columns else 0.0

    @property
    def dataset_drift(self) -> bool:
        """True when at least ``drift_share`` of the columns drifted."""
        return bool(self.columns) and self.share >= self.thresholds.drift_share

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "columns": [c.to_dict() for c in self.columns],
            "drifted": [c.column for c in self.drifted],
            "share_drifted": self.share,
            "dataset_drift": self.dataset_drift,
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "target": None if self.target is None else self.target.to_dict(),
            "thresholds": self.thresholds.__dict__,
        }


def data_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    thresholds: Thresholds | None = None,
) -> DataDrift:
    """Drift of each of ``columns`` (present in both tables) from reference to current."""
    t = thresholds or Thresholds()
    return DataDrift([column_drift(reference[c], current[c], c, t) for c in columns], t)


def drift_findings(d: DataDrift) -> list[Finding]:
    """Each drifted column a warning with its evidence; the data set's drift an error (an
    alert); prediction drift a warning."""
    out = []
    for c in d.drifted:
        how = (
            f"KS p = {c.p_value:.2g}"
            if c.test == "ks"
            else f"chi-squared p = {c.p_value:.2g}"
            if c.test == "chi2"
            else f"Wasserstein distance {c.distance:.2f} SD"
            if c.test == "wasserstein"
            else f"Jensen-Shannon distance {c.distance:.2f}"
        )
        out.append(
            Finding(
                severity=Severity.WARNING,
                check="drift_column",
                column=c.column,
                message=f"{c.column!r} drifted ({how}; PSI {c.psi:.2f}, {c.psi_band})",
                evidence=c.to_dict(),
            )
        )
    if d.dataset_drift:
        out.append(
            Finding(
                severity=Severity.ERROR,
                check="drift_dataset",
                message=f"{len(d.drifted)} of {len(d.columns)} columns drifted ({d.share:.0%}, "
                f"alert at {d.thresholds.drift_share:.0%}): the model now sees different data",
                evidence={"share": d.share, "drifted": [c.column for c in d.drifted]},
                fix="check the performance on recent labels; retrain on recent data (mlre retrain)",
            )
        )
    if d.target is not None and d.target.drifted:
        out.append(
            Finding(
                severity=Severity.WARNING,
                check="drift_target",
                column=d.target.column,
                message=f"the labels' distribution moved (PSI {d.target.psi:.2f}, "
                f"{d.target.psi_band}): the outcomes themselves are no longer as common as in "
                "the reference",
                evidence=d.target.to_dict(),
            )
        )
    if d.prediction is not None and d.prediction.drifted:
        p = d.prediction
        out.append(
            Finding(
                severity=Severity.WARNING,
                check="drift_prediction",
                message=f"the model's predictions drifted (PSI {p.psi:.2f}, {p.psi_band})",
                evidence=p.to_dict(),
            )
        )
    return out
