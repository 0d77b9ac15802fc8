"""The causal analysis and the A/B test as self-contained HTML pages, and their figures."""

from __future__ import annotations

from typing import Any

from mlre.causal.estimators import number
from mlre.report.page import Section, sections_page

LAYOUT = {"template": "plotly_white", "height": 380, "margin": {"l": 60, "r": 20, "t": 50}}


def _vline(x: float, color: str = "#999", dash: str = "dot") -> dict[str, Any]:
    """A vertical line across the plot at ``x``."""
    return {
        "type": "line",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "yref": "paper",
        "line": {"color": color, "dash": dash},
    }


def _intervals(
    name: str, labels: list[str], values: list[float], lows: list[float], highs: list[float]
) -> dict[str, Any]:
    """Points with asymmetric 95% interval bars, one row per label."""
    return {
        "type": "scatter",
        "mode": "markers",
        "name": name,
        "y": labels,
        "x": values,
        "error_x": {
            "type": "data",
            "symmetric": False,
            "array": [h - v for v, h in zip(values, highs, strict=True)],
            "arrayminus": [v - lo for v, lo in zip(values, lows, strict=True)],
        },
    }


def _figure(data: list[dict[str, Any]], **layout: Any) -> dict[str, Any]:
    return {"data": data, "layout": LAYOUT | layout}


def propensity_figure(propensity: dict[str, list[float]], trim: float) -> dict[str, Any]:
    """Overlaid histograms of the propensity in each group, the trimming bounds marked."""
    bins = {"start": 0, "end": 1, "size": 0.025}
    data = [
        {
            "type": "histogram",
            "x": propensity[g],
            "name": g,
            "opacity": 0.6,
            "xbins": bins,
            "histnorm": "probability",
        }
        for g in ("untreated", "treated")
    ]
    return _figure(
        data,
        title="Overlap: propensity of treatment by group",
        barmode="overlay",
        shapes=[_vline(trim), _vline(1 - trim)],
        xaxis={"title": "estimated P(treated | confounders)"},
        yaxis={"title": "share of the group"},
    )


def love_figure(rows: list[dict[str, Any]], limit: float) -> dict[str, Any]:
    """Standardised mean differences before and after weighting (a Love plot)."""
    rows = sorted(rows, key=lambda r: abs(r["smd_before"]))
    names = [r["column"] for r in rows]
    data = [
        {
            "type": "scatter",
            "mode": "markers",
            "name": name,
            "y": names,
            "x": [abs(r[key]) for r in rows],
            "marker": {"size": 9, "symbol": symbol},
        }
        for name, key, symbol in (
            ("before", "smd_before", "circle-open"),
            ("after weighting", "smd_after", "circle"),
        )
    ]
    return _figure(
        data,
        title="Covariate balance (|standardised mean difference|)",
        shapes=[_vline(limit, "#c62828")],
        height=max(300, 28 * len(rows) + 120),
        xaxis={"title": "|SMD|"},
    )


def estimates_figure(result: Any, known: float | None = None) -> dict[str, Any]:
    """Every estimate with its 95% interval, per estimand (a forest plot); ``known`` (a
    benchmark's answer) as a dashed line."""
    data = []
    for k, items in result.estimates.items():
        rows = [result.naive[k], *items]
        data.append(
            _intervals(
                k,
                [f"{e.label} ({k})" for e in rows],
                [e.value for e in rows],
                [e.low for e in rows],
                [e.high for e in rows],
            )
        )
    shapes = [_vline(0, dash="solid")]
    if known is not None:
        shapes.append(_vline(known, "#2e7d32", "dash"))
    return _figure(
        data,
        title="Estimates with 95% intervals",
        shapes=shapes,
        height=520,
        margin={"l": 330, "r": 20, "t": 50},
    )


def groups_figure(h: Any) -> dict[str, Any]:
    """Doubly robust effect per group of each modifier."""
    data = []
    for m in h.modifiers:
        gs = [g for g in h.groups if g.modifier == m]
        data.append(
            _intervals(
                m,
                [f"{m}: {g.group}" for g in gs],
                [g.effect for g in gs],
                [g.low for g in gs],
                [g.high for g in gs],
            )
        )
    return _figure(
        data,
        title="Effect by group of each modifier (95% intervals)",
        height=max(320, 26 * len(h.groups) + 120),
        margin={"l": 220, "r": 20, "t": 50},
    )


def _fmt(v: float) -> str:
    return number(v)


def causal_page(result: Any, known: float | None = None) -> str:
    """The analysis as one page: the model in words and as a graph, the estimates, the
    diagnostics, the refutations, the heterogeneous effects and every finding."""
    m = result.model
    primary = result.primary
    head = (
        f"{result.estimand} of {m.treatment} on {m.outcome}: {_fmt(primary.value)} "
        f"(95% CI {_fmt(primary.low)} to {_fmt(primary.high)}, doubly robust)"
        if primary is not None
        else "no estimate"
    )
    sections = [
        Section("The causal model", m.words(), markup=m.graph_svg()),
        _estimates_section(result, known),
        _overlap_section(result),
    ]
    if result.refutations:
        sections.append(_refutations_section(result.refutations))
    if result.heterogeneity is not None:
        sections.append(_heterogeneity_section(result.heterogeneity))
    sections.append(
        Section(
            "Findings",
            header=["severity", "check", "finding"],
            rows=[[f.severity.value, f.check, f.message] for f in result.findings],
        )
    )
    return sections_page(f"Causal effect of {m.treatment} on {m.outcome}", head, sections)


def _estimates_section(result: Any, known: float | None) -> Section:
    """Every estimator's answer for each estimand, as a table and a figure."""
    rows = []
    for k, items in result.estimates.items():
        for e in [result.naive[k], *items]:
            rows.append(
                [
                    e.label,
                    k,
                    _fmt(e.value),
                    f"[{_fmt(e.low)}, {_fmt(e.high)}]",
                    f"{e.p_value:.3g}",
                    f"{e.rows:,}",
                    e.interval,
                    e.note,
                ]
            )
    return Section(
        "Estimates",
        [
            "Each estimator answers for the average effect on everyone (ATE) and on the "
            "treated (ATT), on the rows with overlap. The doubly robust estimators are "
            "right when either the propensity or the outcome model is."
        ],
        ["estimator", "estimand", "effect", "95% CI", "p", "rows", "interval", "note"],
        rows,
        [estimates_figure(result, known)],
    )


def _overlap_section(result: Any) -> Section:
    """The nuisance models chosen, the overlap of each estimand and the covariate balance."""
    families = result.nuisance.families
    return Section(
        "Overlap and balance",
        [
            f"Propensity model: {families['e']}; outcome models: "
            f"{families['mu0']} (untreated), "
            f"{families['mu1']} (treated), chosen by out-of-fold loss."
        ],
        [
            "estimand",
            "rows kept",
            "treated trimmed",
            "untreated trimmed",
            "propensity AUC",
            "effective untreated rows",
        ],
        [
            [
                k,
                f"{int(o.keep.sum()):,}",
                o.treated_dropped,
                o.control_dropped,
                f"{o.auc:.3f}",
                f"{o.effective_controls:,.0f}",
            ]
            for k, o in result.overlaps.items()
        ],
        [
            propensity_figure(result.propensity, next(iter(result.overlaps.values())).trim),
            love_figure(result.balance.rows, 0.1),
        ],
    )


def _refutations_section(refutations: list[Any]) -> Section:
    """Each attempt to break the estimate and whether it held."""
    return Section(
        "Refutations",
        ["Attempts to break the estimate; one that fails is a reason for doubt."],
        ["test", "result", "new effect", "detail"],
        [
            [r.name, "passed" if r.passed else "FAILED", _fmt(r.new_effect), r.detail]
            for r in refutations
        ],
    )


def _heterogeneity_section(h: Any) -> Section:
    """How the effect varies: the causal forest's summary, each modifier's weight and test."""
    q = h.cate_quantiles
    return Section(
        "Heterogeneous effects",
        [
            f"Causal forest over {', '.join(h.modifiers)} on {h.rows:,} rows: mean "
            f"CATE {_fmt(h.cate_mean)}; 10th/50th/90th percentile {_fmt(q['0.1'])} / "
            f"{_fmt(q['0.5'])} / {_fmt(q['0.9'])}; interval above zero for "
            f"{h.share_positive:.0%} of rows, below for {h.share_negative:.0%}."
        ],
        ["modifier", "importance", "p (groups share one effect)"],
        [[k, f"{v:.0%}", f"{h.tests.get(k, float('nan')):.3g}"] for k, v in h.importance.items()],
        [groups_figure(h)],
    )


def abtest_page(test: Any) -> str:
    """The A/B test as one page."""
    rows = []
    for c in test.comparisons:
        for kind, r in (("raw", c.__dict__), ("CUPED", c.cuped)):
            if r is None:
                continue
            rows.append(
                [
                    f"{c.variant} vs {c.control}",
                    kind,
                    _fmt(r["difference"]),
                    f"[{_fmt(r['low'])}, {_fmt(r['high'])}]",
                    f"{r['relative']:+.2%}",
                    f"{r['p_value']:.3g}",
                ]
            )
    kinds = ["raw", "CUPED"] if test.covariate else ["raw"]
    names = [f"{c.variant} vs {c.control}" for c in test.comparisons]
    data = []
    for kind in kinds:
        res = [c.cuped if kind == "CUPED" else c.__dict__ for c in test.comparisons]
        data.append(
            _intervals(
                kind,
                names,
                [r["difference"] for r in res],
                [r["low"] for r in res],
                [r["high"] for r in res],
            )
        )
    figure = _figure(data, title=f"Difference in {test.metric} (95% intervals)")
    counts = ", ".join(f"{k}: {v:,}" for k, v in test.counts.items())
    sections = [
        Section(
            "Result",
            [f"Rows per variant: {counts}; sample-ratio check p = {test.srm_p_value:.3g}."],
            ["comparison", "metric", "difference", "95% CI", "relative", "p"],
            rows,
            [figure],
        ),
        Section(
            "Power",
            [
                f"With {test.power:.0%} power at alpha {test.alpha:g} the test could detect a "
                f"difference of {_fmt(test.mde)} ({test.mde_relative:.1%} of the control mean);"
                f" its power against the difference seen was {test.power_observed:.0%}."
                + (
                    f" To detect {_fmt(test.target_effect)} it needs {test.rows_needed:,} rows "
                    "per variant."
                    if test.rows_needed
                    else ""
                )
            ],
        ),
        Section(
            "Findings",
            header=["severity", "check", "finding"],
            rows=[[f.severity.value, f.check, f.message] for f in test.findings],
        ),
    ]
    return sections_page(f"A/B test: {test.metric} by {test.variant_column}", "", sections)
