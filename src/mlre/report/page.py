"""One self-contained HTML page of sections (paragraphs, a table, Plotly figures; the library
embedded once, so the page needs no network), for the results of commands that are not runs."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Section:
    """A heading, paragraphs, an optional table, figures, and optional markup that mlre made
    itself (an SVG drawing; never user text)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    figures: list[dict[str, Any]] = field(default_factory=list)
    markup: str = ""


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;line-height:1.45}"
    "table{border-collapse:collapse;margin:.5em 0 1em}td,th{padding:4px 10px;"
    "border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child"
    "{text-align:left}h2{margin-top:1.6em;border-bottom:2px solid #1f4e79}"
)


def sections_page(title: str, intro: str, sections: list[Section]) -> str:
    """The page as a string; text and cells are escaped."""
    from plotly.offline import get_plotlyjs

    body, draws, n = [], [], 0
    for s in sections:
        if s.title:
            body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        body.append(s.markup)
        if s.header:
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in s.header)
            cells = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                for row in s.rows
            )
            body.append(f"<table><tr>{head}</tr>{cells}</table>")
        for f in s.figures:
            body.append(f"<div id='figure{n}'></div>")
            spec = json.dumps(f)
            draws.append(
                f"Plotly.newPlot('figure{n}',{spec}.data,{spec}.layout,{{displaylogo:false}});"
            )
            n += 1
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script>{get_plotlyjs()}</script></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(intro)}</p>{''.join(body)}<script>{''.join(draws)}</script>"
        "</body></html>"
    )


def figure_page(
    title: str,
    intro: str,
    header: list[str],
    rows: list[list[Any]],
    figures: list[dict[str, Any]],
) -> str:
    """A page of one table and its figures."""
    return sections_page(title, intro, [Section("", [], header, rows, figures)])
