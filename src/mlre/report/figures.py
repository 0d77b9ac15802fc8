"""Plotly figures of the report data, as plain figure dicts (``{"data": ..., "layout": ...}``):
the page draws them with the Plotly library embedded once, so no figure needs the network."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

Figure = dict[str, Any]

#: Colours that stay distinct in print and for the common forms of colour blindness.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def _layout(title: str, x: str, y: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 15}},
        "xaxis": {"title": {"text": x}, "automargin": True},
        "yaxis": {"title": {"text": y}, "automargin": True},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "height": 360,
        "legend": {"orientation": "h", "y": -0.25},
        "template": "plotly_white",
        **extra,
    }


def _line(name: str, x: list[float], y: list[float], i: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": x,
        "y": y,
        "line": {"color": PALETTE[i % len(PALETTE)]},
        **extra,
    }


def _hbar(
    title: str, x_title: str, values: list[float], labels: list[str], colours: Any, **extra: Any
) -> Figure:
    """A horizontal bar chart, first label at the bottom, tall enough for every label."""
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "x": values,
                "y": labels,
                "marker": {"color": colours},
                **extra,
            }
        ],
        "layout": _layout(title, x_title, "", height=max(260, 26 * len(values) + 100)),
    }


def diagnostic(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The diagnostic called ``name`` in the report data, if it was computed."""
    return next((d for d in data["diagnostics"] if d["name"] == name), None)


def leaderboard(data: dict[str, Any]) -> Figure | None:
    """Every finished trial's search score, in the order they ran, coloured by family."""
    metric = data["metric"]
    rows = [r for r in data["selection"]["leaderboard"] if r.get(metric) is not None]
    if not rows:
        return None
    families = sorted({r["family"] for r in rows})
    traces = []
    for i, fam in enumerate(families):
        mine = sorted((r for r in rows if r["family"] == fam), key=lambda r: r["trial"])
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": fam,
                "x": [r["trial"] for r in mine],
                "y": [r[metric] for r in mine],
                "marker": {"size": 9, "color": PALETTE[i % len(PALETTE)]},
                "text": [r["phase"] for r in mine],
            }
        )
    return {"data": traces, "layout": _layout("Search: every trial", "trial", f"CV {metric}")}


def calibration(data: dict[str, Any]) -> Figure | None:
    """Predicted probability against the observed rate, per bin, with the ideal diagonal."""
    d = diagnostic(data, "calibration")
    if d is None:
        return None
    bins = d["data"]["bins"]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "perfect calibration",
                "x": [0, 1],
                "y": [0, 1],
                "line": {"dash": "dash", "color": "#999999"},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "model",
                "x": [b["predicted"] for b in bins],
                "y": [b["observed"] for b in bins],
                "text": [f"{b['rows']} rows" for b in bins],
                "marker": {"color": PALETTE[0]},
            },
        ],
        "layout": _layout(
            f"Calibration ({d['data']['of']})", "mean predicted probability", "observed rate"
        ),
    }


def roc(data: dict[str, Any]) -> Figure | None:
    """ROC curve per class (binary: the positive class)."""
    d = diagnostic(data, "curves")
    if d is None or not d["data"]["curves"]:
        return None
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "chance",
            "x": [0, 1],
            "y": [0, 1],
            "line": {"dash": "dash", "color": "#999999"},
        }
    ]
    for i, c in enumerate(d["data"]["curves"]):
        traces.append(
            _line(f"{c['class']} (AUC {c['auc']:.3f})", c["roc"]["fpr"], c["roc"]["tpr"], i)
        )
    return {
        "data": traces,
        "layout": _layout("ROC curve", "false positive rate", "true positive rate"),
    }


def precision_recall(data: dict[str, Any]) -> Figure | None:
    """Precision-recall curve per class."""
    d = diagnostic(data, "curves")
    if d is None or not d["data"]["curves"]:
        return None
    traces = [
        _line(
            f"{c['class']} (AP {c['average_precision']:.3f})",
            c["pr"]["recall"],
            c["pr"]["precision"],
            i,
        )
        for i, c in enumerate(d["data"]["curves"])
    ]
    return {"data": traces, "layout": _layout("Precision-recall curve", "recall", "precision")}


def confusion(data: dict[str, Any]) -> Figure | None:
    """Confusion matrix at the most probable class."""
    d = diagnostic(data, "curves")
    if d is None:
        return None
    classes = d["data"]["classes"]
    matrix = d["data"]["confusion"]
    return {
        "data": [
            {
                "type": "heatmap",
                "x": classes,
                "y": classes,
                "z": matrix,
                "text": matrix,
                "texttemplate": "%{text}",
                "colorscale": "Blues",
                "showscale": False,
            }
        ],
        "layout": _layout(
            "Confusion matrix",
            "predicted",
            "actual",
            yaxis={"autorange": "reversed", "title": {"text": "actual"}},
        ),
    }


def residuals(data: dict[str, Any]) -> Figure | None:
    """Residual against prediction (a sample of holdout rows) with the mean per band."""
    d = diagnostic(data, "residuals")
    if d is None:
        return None
    pts, bands = d["data"]["points"], d["data"]["bands"]
    return {
        "data": [
            {
                "type": "scattergl",
                "mode": "markers",
                "name": "holdout rows",
                "x": pts["predicted"],
                "y": pts["residual"],
                "marker": {"size": 4, "opacity": 0.4, "color": PALETTE[0]},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "mean residual",
                "x": [(b["from"] + b["to"]) / 2 for b in bands],
                "y": [b["mean_residual"] for b in bands],
                "line": {"color": PALETTE[5]},
            },
        ],
        "layout": _layout("Residuals", "predicted", "actual - predicted"),
    }


def learning_curve(data: dict[str, Any]) -> Figure | None:
    """Holdout score against training rows (log scale)."""
    d = diagnostic(data, "learning_curve")
    if d is None or len(d["data"]["sizes"]) < 2:
        return None
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": d["data"].get("family", "model"),
                "x": d["data"]["sizes"],
                "y": d["data"]["scores"],
                "marker": {"color": PALETTE[2]},
            }
        ],
        "layout": _layout(
            "Learning curve",
            "training rows",
            f"holdout {data['metric']}",
            xaxis={"type": "log", "title": {"text": "training rows"}},
        ),
    }


def importance(data: dict[str, Any], top: int = 15) -> Figure | None:
    """Permutation importance of the top columns."""
    rows = data["importance"]["features"][:top][::-1]
    if not rows:
        return None
    return _hbar(
        "Which columns the model relies on",
        f"increase in holdout loss when shuffled ({data['importance']['metric']})",
        [r["importance"] for r in rows],
        [r["feature"] for r in rows],
        PALETTE[0],
    )


def shapley(data: dict[str, Any], top: int = 15) -> Figure | None:
    """Mean absolute Shapley value of the top columns."""
    sh = data.get("shapley")
    if not sh or not sh["features"]:
        return None
    rows = sh["features"][:top][::-1]
    return _hbar(
        "How much each column moves the prediction",
        "mean |Shapley value| ("
        + (
            sh["outputs"][0]
            if len(sh["outputs"]) == 1
            else "summed over the classes' probabilities"
        )
        + ")",
        [r["mean_abs"] for r in rows],
        [r["feature"] for r in rows],
        PALETTE[0],
    )


def shapley_dependence(dep: dict[str, Any], output: str) -> Figure:
    """One column's Shapley value against its value, one point per explained row."""
    pairs = [(x, v) for x, v in zip(dep["x"], dep["shap"], strict=True) if x is not None]
    trace = {
        "type": "scatter" if dep["numeric"] else "box",
        "x": [x for x, _ in pairs],
        "y": [v for _, v in pairs],
        "marker": {"color": PALETTE[0], "size": 5, "opacity": 0.6},
        "name": dep["feature"],
    }
    if dep["numeric"]:
        trace["mode"] = "markers"
    else:
        trace["boxpoints"] = "all"
    return {
        "data": [trace],
        "layout": _layout(
            f"Dependence: {dep['feature']}",
            dep["feature"],
            f"contribution to {output}",
            showlegend=False,
        ),
    }


def slices(data: dict[str, Any], top: int = 10) -> Figure | None:
    """The subgroups where the model does worst, by how many times worse than the rest."""
    d = diagnostic(data, "slices")
    if d is None or not d["data"]["slices"]:
        return None
    rows = d["data"]["slices"][:top][::-1]
    return _hbar(
        "Where the model does worse",
        f"mean {d['data']['loss']} relative to the other rows",
        [r["ratio"] for r in rows],
        [f"{r['feature']} = {r['group']}" for r in rows],
        PALETTE[5],
        text=[f"{r['rows']} rows" for r in rows],
    )


def example(case: dict[str, Any]) -> Figure:
    """One explained prediction: each column's contribution, largest first, from the base value."""
    items = case["contributions"][::-1]
    labels = [f"{c['feature']} = {c['value']}" for c in items]
    values = [c["contribution"] for c in items]
    if abs(case["other_columns"]) > 0:
        labels.insert(0, "other columns")
        values.insert(0, case["other_columns"])
    return _hbar(
        f"{case['output']}: {case['base_value']:.3g} on average, {case['value']:.3g} here",
        "contribution",
        values,
        labels,
        [PALETTE[2] if v > 0 else PALETTE[5] for v in values],
    )


def all_figures(data: dict[str, Any]) -> dict[str, Figure]:
    """Every figure the data allows, by name."""
    makers = {
        "leaderboard": leaderboard,
        "calibration": calibration,
        "roc": roc,
        "precision_recall": precision_recall,
        "confusion": confusion,
        "residuals": residuals,
        "learning_curve": learning_curve,
        "shapley": shapley,
        "importance": importance,
        "slices": slices,
    }
    out = {}
    for name, make in makers.items():
        fig = make(data)
        if fig is not None:
            out[name] = fig
    for i, case in enumerate(data.get("examples", [])):
        out[f"example_{i}"] = example(case)
    for i, dep in enumerate(data.get("dependence", [])):
        out[f"dependence_{i}"] = dependence(dep)
    sh = data.get("shapley") or {}
    for i, dep in enumerate(sh.get("dependence", [])):
        out[f"shapley_dependence_{i}"] = shapley_dependence(dep, sh["output"])
    whole = data.get("whole_model") or {}
    if whole.get("kind") == "ebm":
        for i, term in enumerate(whole["terms"][:SHAPES]):
            fig = shape_function(term)
            if fig is not None:
                out[f"shape_{i}"] = fig
    return out


def dependence(dep: dict[str, Any]) -> Figure:
    """Partial dependence of one column: the model's average output as the column varies."""
    if dep["numeric"]:
        trace = _line(dep["feature"], dep["values"], dep["average"], 2, mode="lines+markers")
    else:
        trace = {
            "type": "bar",
            "x": dep["values"],
            "y": dep["average"],
            "marker": {"color": PALETTE[2]},
        }
    return {
        "data": [trace],
        "layout": _layout(
            f"Partial dependence: {dep['feature']}", dep["feature"], f"average {dep['output']}"
        ),
    }


#: Shape functions drawn for an explainable boosting machine (its most important terms).
SHAPES = 6


def shape_function(term: dict[str, Any]) -> Figure | None:
    """One EBM term: its contribution to the prediction across the column's values."""
    scores, names = term.get("scores"), term.get("names")
    if not scores or not names:
        return None
    if len(names) == len(scores) + 1:  # bin edges of a number: draw a step at each bin's middle
        x = [(float(a) + float(b)) / 2 for a, b in pairwise(names)]
        trace = _line(term["term"], x, scores, 0, line={"shape": "hvh", "color": PALETTE[0]})
    else:
        trace = {
            "type": "bar",
            "x": [str(n) for n in names[: len(scores)]],
            "y": scores,
            "marker": {"color": PALETTE[0]},
        }
    return {"data": [trace], "layout": _layout(term["term"], term["term"], "contribution")}
