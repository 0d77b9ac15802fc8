"""One self-contained HTML page: a title, a paragraph, a table and Plotly figures (the library
embedded once, so the page needs no network), for the results of commands that are not runs."""

from __future__ import annotations

import html
import json
from typing import Any


def figure_page(
    title: str,
    intro: str,
    header: list[str],
    rows: list[list[Any]],
    figures: list[dict[str, Any]],
) -> str:
    """The page as a string; cells and text are escaped."""
    from plotly.offline import get_plotlyjs

    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    divs = "".join(f"<div id='figure{i}'></div>" for i in range(len(figures)))
    draws = "".join(
        f"Plotly.newPlot('figure{i}',{json.dumps(f)}.data,{json.dumps(f)}.layout,"
        "{displaylogo:false});"
        for i, f in enumerate(figures)
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;"
        "text-align:right}td:first-child,th:first-child{text-align:left}</style>"
        f"<script>{get_plotlyjs()}</script></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(intro)}</p><table><tr>{head}</tr>{body}</table>{divs}"
        f"<script>{draws}</script></body></html>"
    )
