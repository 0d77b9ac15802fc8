"""Comparisons across many data sets: Friedman's test with the Nemenyi critical difference of
mean ranks, and the Bayesian signed-rank test of the baseline against each other candidate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlre.evaluate.compare import CompareResult
from mlre.evaluate.stats import RankTest, bayes_signed_rank, friedman_nemenyi
from mlre.findings import Finding, Severity

#: Relative differences within this share of the baseline's score count as equivalent.
RELATIVE_ROPE = 0.01


@dataclass
class PairAcross:
    """One candidate against the baseline over the data sets."""

    baseline: str
    candidate: str
    wins: int
    losses: int
    ties: int
    mean_relative: float  # mean relative improvement over the baseline (0.01 = 1% better)
    rank_gap: float  # baseline's mean rank minus the candidate's (> 0: candidate ranks better)
    significant: bool  # the gap exceeds the critical difference
    p_better: float
    p_equivalent: float
    p_worse: float
    sentence: str = ""


@dataclass
class AcrossResult:
    """Each data set's comparison, and the tests over all of them."""

    names: list[str]
    datasets: dict[str, CompareResult]
    skipped: dict[str, str]
    ranks: RankTest | None = None
    pairs: list[PairAcross] = field(default_factory=list)
    run_id: str | None = None

    @property
    def baseline(self) -> str:
        return self.names[0]

    def table(self) -> dict[str, dict[str, float]]:
        """Mean score of every candidate on every data set that all of them finished."""
        out = {}
        for name, result in self.datasets.items():
            by = {c.name: c for c in result.candidates}
            if all(n in by and by[n].ok for n in self.names):
                out[name] = {n: float(by[n].scores.mean()) for n in self.names}
        return out

    def findings(self) -> list[Finding]:
        out = [
            Finding(severity=Severity.INFO, check="compare_across", message=p.sentence)
            for p in self.pairs
        ]
        for name, reason in self.skipped.items():
            out.append(
                Finding(
                    severity=Severity.WARNING,
                    check="compare_dataset_skipped",
                    message=f"{name} left out: {reason}",
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """The comparison over data sets, JSON-ready."""
        return {
            "candidates": self.names,
            "scores": self.table(),
            "metrics": {n: r.metric for n, r in self.datasets.items()},
            "skipped": self.skipped,
            "ranks": None if self.ranks is None else dict(self.ranks.__dict__),
            "pairs": [dict(p.__dict__) for p in self.pairs],
        }


def analyse(result: AcrossResult, *, alpha: float = 0.05, seed: int = 0) -> None:
    """Fill in the rank test and each candidate's comparison with the baseline."""
    table = result.table()
    if len(table) < 2:
        return
    names = result.names
    datasets = list(table)
    greater = [result.datasets[d].greater_is_better for d in datasets]
    # on every data set, higher is better after this turn
    scores = np.array(
        [
            [table[d][n] * (1 if g else -1) for n in names]
            for d, g in zip(datasets, greater, strict=True)
        ]
    )
    result.ranks = friedman_nemenyi(scores, names, alpha=alpha)
    base = scores[:, 0]
    scale = np.maximum(np.abs(base), 1e-12)
    for j, name in enumerate(names[1:], start=1):
        relative = (scores[:, j] - base) / scale
        probs = bayes_signed_rank(np.zeros(len(relative)), relative, RELATIVE_ROPE, seed=seed)
        gap = result.ranks.mean_ranks[0] - result.ranks.mean_ranks[j]
        pair = PairAcross(
            baseline=names[0],
            candidate=name,
            wins=int((relative > 0).sum()),
            losses=int((relative < 0).sum()),
            ties=int((relative == 0).sum()),
            mean_relative=float(relative.mean()),
            rank_gap=float(gap),
            significant=abs(gap) > result.ranks.critical_difference,
            p_better=probs.b_better,
            p_equivalent=probs.equivalent,
            p_worse=probs.a_better,
        )
        pair.sentence = _sentence(pair, result.ranks, len(datasets))
        result.pairs.append(pair)


def _sentence(p: PairAcross, ranks: RankTest, n: int) -> str:
    better = "better" if p.mean_relative > 0 else "worse"
    cd = ranks.critical_difference
    significance = (
        f"a significant difference (critical difference {cd:.2f})"
        if p.significant
        else f"within the critical difference {cd:.2f}, not significant"
    )
    return (
        f"{p.candidate} beats {p.baseline} on {p.wins} of {n} data sets and loses on {p.losses}; "
        f"on average {abs(p.mean_relative):.1%} {better}; mean rank "
        f"{ranks.mean_ranks[ranks.names.index(p.candidate)]:.2f} against "
        f"{ranks.mean_ranks[0]:.2f}, {significance}; Bayesian signed-rank test: probability "
        f"{p.candidate} is practically better {p.p_better:.2f}, equivalent {p.p_equivalent:.2f}, "
        f"worse {p.p_worse:.2f} (equivalent within {RELATIVE_ROPE:.0%})"
    )


def critical_difference_figure(ranks: RankTest) -> dict[str, Any]:
    """Demšar's critical-difference diagram as a Plotly figure: systems on the mean-rank axis (1
    best, on the left), a bar joining each group whose ranks are within the critical difference."""
    from mlre.report.figures import PALETTE

    order = np.argsort(ranks.mean_ranks)
    names = [ranks.names[i] for i in order]
    values = [ranks.mean_ranks[i] for i in order]
    k = len(names)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "markers+text",
            "x": values,
            "y": [0] * k,
            "text": [f"{n} ({v:.2f})" for n, v in zip(names, values, strict=True)],
            "textposition": ["top center" if i % 2 == 0 else "bottom center" for i in range(k)],
            "marker": {"size": 11, "color": [PALETTE[i % len(PALETTE)] for i in range(k)]},
            "showlegend": False,
            "hoverinfo": "text",
        }
    ]
    # maximal groups of systems that cannot be told apart
    groups: list[tuple[int, int]] = []
    for i in range(k):
        j = max(m for m in range(i, k) if values[m] - values[i] <= ranks.critical_difference)
        if j > i and not any(a <= i and j <= b for a, b in groups):
            groups.append((i, j))
    for level, (a, b) in enumerate(groups, start=1):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x": [values[a], values[b]],
                "y": [-0.25 * level, -0.25 * level],
                "line": {"color": "#555", "width": 5},
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
    cd = ranks.critical_difference
    data.append(
        {
            "type": "scatter",
            "mode": "lines+text",
            "x": [1, 1 + cd],
            "y": [0.6, 0.6],
            "text": ["", f"CD = {cd:.2f}"],
            "textposition": "middle right",
            "line": {"color": "#D55E00", "width": 3},
            "showlegend": False,
        }
    )
    return {
        "data": data,
        "layout": {
            "title": {"text": f"Mean rank over {ranks.n_datasets} data sets (lower is better)"},
            "xaxis": {"range": [0.8, k + 0.2], "dtick": 1, "title": {"text": "mean rank"}},
            "yaxis": {"visible": False, "range": [-0.3 - 0.25 * len(groups), 0.9]},
            "height": 260 + 25 * len(groups),
            "template": "plotly_white",
            "margin": {"l": 30, "r": 30, "t": 50, "b": 50},
        },
    }


def across_html(result: AcrossResult) -> str:
    """The scores, the ranks and the critical-difference diagram as one self-contained page."""
    from mlre.report.page import figure_page

    table = result.table()
    rows = [
        [name, result.datasets[name].metric, *(f"{row[n]:.4f}" for n in result.names)]
        for name, row in table.items()
    ]
    intro = " ".join(p.sentence for p in result.pairs) or "fewer than two data sets compared"
    figures = [] if result.ranks is None else [critical_difference_figure(result.ranks)]
    return figure_page(
        f"{', '.join(result.names)} over {len(table)} data sets",
        intro,
        ["data set", "metric", *result.names],
        rows,
        figures,
    )
