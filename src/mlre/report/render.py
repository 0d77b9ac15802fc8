"""The report as one self-contained HTML file (Plotly embedded once, works offline) and as
Markdown, both from the same report data."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Any

from mlre.errors import InputError
from mlre.report.collect import REPORT_VERSION
from mlre.report.figures import all_figures

SECTIONS = [
    ("summary", "Executive summary"),
    ("data", "Data"),
    ("selection", "Model selection"),
    ("performance", "Honest performance"),
    ("diagnostics", "Diagnostics"),
    ("explanations", "Explanations"),
    ("fairness", "Fairness"),
    ("card", "Model card"),
    ("findings", "All findings"),
]


def check_version(data: dict[str, Any]) -> None:
    """Refuse report data written by a newer mlre, whose layout this one cannot know."""
    version = data.get("version")
    if not isinstance(version, int) or version > REPORT_VERSION:
        raise InputError(
            f"report data of version {version!r} cannot be read by this mlre "
            f"(reads up to {REPORT_VERSION})",
            hint="upgrade mlre to rebuild this report",
        )


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def _environment():
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("mlre", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * v:.1f}%"
    return env


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "n/a"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def render_html(data: dict[str, Any]) -> str:
    """The report as one HTML page with its figures and the Plotly library inside."""
    check_version(data)
    figures = all_figures(data)
    template = _environment().get_template("report.html.j2")
    diagnostics = {d["name"]: d for d in data["diagnostics"]}
    return template.render(
        r=data,
        sections=SECTIONS,
        diag=diagnostics,
        figures=figures,
        figures_json=json.dumps(figures, separators=(",", ":"), default=str).replace("</", "<\\/"),
        plotly_js=_plotly_js(),
    )


def fairness_markdown(fairness: dict[str, Any] | None) -> list[str]:
    """The fairness section: rates per group with intervals, disparities, proxies."""
    if not fairness:
        return []
    out = ["", "## Fairness", ""]
    binary = fairness["task"] == "binary"
    keys = (
        ["selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"]
        if binary
        else ["mean_prediction", "mean_error", "mae"]
    )
    out += ["| column | group | rows | " + " | ".join(k.replace("_", " ") for k in keys) + " |"]
    out += ["| --- | --- | ---: |" + " ---: |" * len(keys)]
    for g in fairness["groups"]:
        cells = []
        for k in keys:
            low, high = g["intervals"].get(k, (float("nan"), float("nan")))
            cells.append(f"{g['metrics'][k]:.3f} [{low:.2f}, {high:.2f}]")
        small = " (small: not judged)" if g["small"] else ""
        out.append(
            f"| {g['column']} | {g['group']}{small} | {g['count']:,} | " + " | ".join(cells) + " |"
        )
    out += ["", "| column | disparity | value | limit | |", "| --- | --- | ---: | ---: | --- |"]
    for d in fairness["disparities"]:
        limit = "" if d["limit"] is None else f"{d['limit']:g}"
        verdict = "breached" if d["breached"] else ("within" if d["limit"] is not None else "")
        out.append(
            f"| {d['column']} | {d['name'].replace('_', ' ')} | {d['value']:.3f} | {limit} | {verdict} |"
        )
    for p in fairness.get("proxies") or []:
        out.append(f"- {p['feature']} predicts {p['sensitive']} by itself (ROC AUC {p['auc']:.2f})")
    return out


def render_markdown(data: dict[str, Any]) -> str:
    """The same findings and numbers as Markdown, for a pull request, a wiki or a terminal."""
    check_version(data)
    out = [f"# {data['project']}: model report", ""]
    out += [
        f"Run `{data['run_id']}`, {data['created']}." if data.get("run_id") else data["created"]
    ]
    out += _summary_markdown(data["summary"])
    out += _performance_markdown(data)
    out += _selection_markdown(data["selection"])
    out += _diagnostics_markdown(data["diagnostics"])
    out += _explanations_markdown(data)
    out += fairness_markdown(data.get("fairness"))
    out += _card_markdown(data["card"])
    out += _findings_markdown(data["findings"])
    return "\n".join(out) + "\n"


def _summary_markdown(s: dict[str, Any]) -> list[str]:
    """The executive summary: what, how well, the main risks, what to do next."""
    out = ["", "## Executive summary", "", s["what"], "", s["how_well"], ""]
    if s["risks"]:
        out += ["**Main risks and limitations**", ""] + [f"- {r}" for r in s["risks"]] + [""]
    out += ["**What to do next**", ""] + [f"- {n}" for n in s["next"]] + [""]
    return out


def _performance_markdown(data: dict[str, Any]) -> list[str]:
    """Honest performance: every metric on the holdout with its interval and the baseline's,
    then the search's estimate beside the holdout score."""
    perf, metric, scheme = data["performance"], data["metric"], data["selection"]["scheme"]
    out = ["## Honest performance", ""]
    out += ["| metric | holdout | 95% interval | naive baseline |", "| --- | ---: | --- | ---: |"]
    intervals = next(d for d in data["diagnostics"] if d["name"] == "intervals")["data"]["rows"]
    for row in intervals:
        base = perf["baseline"].get(row["metric"])
        out.append(
            f"| {row['metric']} | {_num(row['value'])} | {_num(row['low'])} - {_num(row['high'])}"
            f" | {_num(base)} |"
        )
    out += [
        "",
        f"Search estimate ({scheme.get('search', 'cross-validation')}): "
        f"{_num(perf['search_score'])} {metric}; holdout ({perf['holdout_rows']:,} rows, "
        f"{scheme.get('holdout', '')}): {_num(perf['holdout_score'])}.",
    ]
    expected = perf.get("search_interval")
    if expected and all(v is not None and math.isfinite(v) for v in expected):
        out[-1] += (
            f" From the search estimate and the noise of both sets of rows, the holdout was "
            f"expected between {_num(expected[0])} and {_num(expected[1])} (95%)."
        )
    if scheme.get("model"):
        out += ["", f"The registered model is {scheme['model']}."]
    for column, terms in (scheme.get("text_terms") or {}).items():
        up = ", ".join(f"`{t}`" for t, _ in terms.get("up", [])[:10]) or "none"
        down = ", ".join(f"`{t}`" for t, _ in terms.get("down", [])[:10]) or "none"
        towards = terms.get("towards")
        way = f"towards {towards!r}" if towards is not None else "up"
        out += ["", f"In the text of **{column}**, the words that push a prediction {way}: "
                    f"{up}; the other way: {down}."]  # fmt: skip
    return out


def _selection_markdown(selection: dict[str, Any]) -> list[str]:
    """Model selection: the trials within the budget and the final model's members."""
    out = [
        "",
        "## Model selection",
        "",
        f"{selection['trials']} trials in {selection['seconds']:.0f} s of a "
        f"{selection['budget']:g} s budget. The final model:",
        "",
        "| family | weight | bagged models |",
        "| --- | ---: | ---: |",
    ]
    for m in selection["ensemble"]:
        family = m["family"] + (" (second layer)" if m.get("stacked") else "")
        out.append(f"| {family} | {m['weight']:.3f} | {m['bagged_models']} |")
    if any(m.get("stacked") for m in selection["ensemble"]):
        reads = [m for m in selection["ensemble"] if m.get("level_one")]
        blend = ", ".join(f"{m['family']} {m['level_one']:.3f}" for m in reads)
        out += [
            "",
            "Stacked: the second layer reads the table's columns and the blend of the first "
            f"layer's members by their level-one weights ({blend}).",
        ]
    return out


def _diagnostics_markdown(diagnostics: list[dict[str, Any]]) -> list[str]:
    """Every diagnostic's findings."""
    out = ["", "## Diagnostics", ""]
    for d in diagnostics:
        for f in d["findings"]:
            out.append(f"- **{d['title']}** ({f['severity']}): {f['message']}")
    return out


def _explanations_markdown(data: dict[str, Any]) -> list[str]:
    """What the model relies on (Shapley values, permutation importance) and the example
    predictions explained."""
    out: list[str] = []
    imp = data["importance"]["features"][:10]
    sh = data.get("shapley")
    if imp or sh:
        out += ["", "## Explanations"]
    if sh:
        of = sh["output"] if len(sh["outputs"]) == 1 else "summed over the classes"
        out += [
            "",
            f"Columns that move the prediction most (mean absolute Shapley value over "
            f"{sh['rows']} holdout rows, {of}):",
            "",
        ]
        out += [
            f"{i + 1}. {r['feature']} ({_num(r['mean_abs'], 3)})"
            for i, r in enumerate(sh["features"][:10])
        ]
    if imp:
        out += [
            "",
            "Columns the score depends on most (permutation "
            "importance: increase in holdout loss when the column is shuffled):",
            "",
        ]
        out += [f"{i + 1}. {r['feature']} ({_num(r['importance'], 3)})" for i, r in enumerate(imp)]
    for case in data.get("examples", []):
        parts = ", ".join(
            f"{c['feature']} = {c['value']} ({c['contribution']:+.3g})"
            for c in case["contributions"][:4]
        )
        out += [
            "",
            f"Holdout row {case['row']} (predicted {case['prediction']}, actually "
            f"{case['actual']}): {case['output']} {case['value']:.3g} against "
            f"{case['base_value']:.3g} on average; {parts}",
        ]
    return out


def _card_markdown(card: dict[str, Any]) -> list[str]:
    """The model card."""
    data = card["training_data"]
    return [
        "",
        "## Model card",
        "",
        f"- **Model**: {card['model']}",
        f"- **Intended use**: {card['intended_use']}",
        f"- **Training data**: {data['source']} "
        f"({data['rows']:,} rows, sha256 `{data['sha256'][:16]}`)",
        f"- **Evaluation**: {card['evaluation']}",
        f"- **Fitted on**: {card.get('fitted_on', 'the training part')}",
        f"- **Ethical considerations**: {card['ethics']}",
        f"- **Reproduce**: `{card['reproduce']}`",
    ]


def _findings_markdown(findings: list[dict[str, Any]]) -> list[str]:
    """Every finding, one a line."""
    out = ["", "## All findings", ""]
    for f in findings:
        column = f" `{f['column']}`" if f.get("column") else ""
        out.append(f"- {f['severity']} `{f['check']}`{column}: {f['message']}")
    return out


def write_report(data: dict[str, Any], path: str | Path) -> tuple[Path, Path]:
    """Write ``path`` (HTML) and the Markdown beside it (same name, ``.md``)."""
    return save_report(render_html(data), render_markdown(data), path)


def save_report(html: str, md: str, path: str | Path) -> tuple[Path, Path]:
    """Write a rendered report: ``path`` (HTML) and the Markdown beside it."""
    html_path = Path(path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    md_path = html_path.with_suffix(".md")
    html_path.write_text(html, encoding="utf-8")
    md_path.write_text(md, encoding="utf-8")
    return html_path, md_path
