"""The monitoring commands: is the model still good, and retrain it on fresh data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlre.cli.options import JsonOpt, SpecOpt
from mlre.cli.output import budget_bar, guarded, out, print_findings, show

PANEL = "Monitoring"
commands = typer.Typer()


@commands.command(rich_help_panel=PANEL)
@guarded
def monitor(
    reference: Annotated[
        str, typer.Option(help="A table, or 'training' (the model's training table).")
    ],
    current: Annotated[
        str, typer.Option(help="A table, or a span of the prediction log: last:7d, all.")
    ],
    model: Annotated[
        str | None,
        typer.Option(help="Registered model (NAME or models:/...): prediction drift, scores."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="The label column, when labels exist.")] = None,
    time_column: Annotated[str | None, typer.Option(help="Column of timestamps.")] = None,
    window: Annotated[
        str | None, typer.Option(help="Score per window: 1D, 7D (with --time-column) or N rows.")
    ] = None,
    drift_share: Annotated[
        float | None,
        typer.Option(help="Share of drifted columns that raises the alert (spec: 0.5)."),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option(help="POST the JSON document here on an alert.")
    ] = None,
    prediction_log: Annotated[
        Path | None, typer.Option(help="The service's prediction log (default: its default).")
    ] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    spec: SpecOpt = None,
    track: Annotated[bool, typer.Option(help="Record the check in MLflow.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Is the model still good? Drift, data quality, performance; exit 1 on an alert.

    Each feature's drift by the test that suits its type and size, with PSI; the model's
    prediction drift; data quality against its contract; its score per window when labels
    exist, else estimated from its confidence (binary classifiers). For cron and CI."""
    from mlre import api

    result = api.watch(
        reference,
        current,
        model=model,
        target=target,
        time_column=time_column,
        window=window,
        drift_share=drift_share,
        webhook=webhook,
        spec=spec,
        prediction_log=prediction_log,
        report=html,
        track=track,
    )
    show(result, _render_monitor, as_json=as_json, page=html)
    if result.alert:
        raise typer.Exit(1)


def _render_monitor(result: Any) -> None:
    d = result.drift
    table = Table(show_edge=False, title="drift by column", title_justify="left")
    for c in ("column", "test", "distance / p", "PSI", ""):
        table.add_column(c, justify="right" if c in ("distance / p", "PSI") else "left")
    for c in sorted(d.columns, key=lambda c: -c.psi)[:20]:
        stat = c.p_value if c.test in ("ks", "chi2") else c.distance
        mark = "[bold red]drifted[/]" if c.drifted else ""
        table.add_row(escape(c.column), c.test, f"{stat:.3g}", f"{c.psi:.3f}", mark)
    out.print(table)
    print_findings(result.findings, info=("performance",))
    verdict = "[bold red]ALERT[/]" if result.alert else "[green]no alert[/]"
    out.print(f"{verdict}: {len(d.drifted)} of {len(d.columns)} columns drifted")


@commands.command(rich_help_panel=PANEL)
@guarded
def retrain(
    model: Annotated[str, typer.Argument(help="Registered name (or models:/...) to retrain.")],
    data: Annotated[Path, typer.Option(help="Fresh labelled data.")],
    time_budget: Annotated[
        float | None, typer.Option(help="Seconds for the search (default: the spec's).")
    ] = None,
    holdout: Annotated[
        float, typer.Option(help="Share of the most recent rows both models are judged on.")
    ] = 0.2,
    shadow: Annotated[
        bool, typer.Option(help="Make a better model the challenger in shadow.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Retrain on fresh data; a better model becomes the challenger in shadow.

    The champion's spec, a new search on the fresh rows, both models judged on the same most
    recent held-out rows with a paired bootstrap. Never promotes: `mlre promote` does, through
    its gate."""
    from mlre.api.retrain import retrain as run_retrain

    with budget_bar(not as_json, time_budget) as progress:
        result = run_retrain(
            model,
            data,
            time_budget=time_budget,
            holdout=holdout,
            shadow=shadow,
            progress=progress,
        )
    if as_json:
        out.print_json(json.dumps(result.to_dict(), default=str))
        return
    c = result.comparison
    out.print(
        f"{escape(result.name)}: champion v{result.champion_version} against retrained "
        f"v{result.new_version} on {result.holdout_rows:,} recent rows: [bold]{c.verdict}[/]"
    )
    out.print(escape(result.reason), soft_wrap=True)
    if result.challenger:
        out.print(
            f"v{result.new_version} is the challenger, in shadow; promote it with "
            f"`mlre promote {escape(result.name)} --version {result.new_version} --full`"
        )
