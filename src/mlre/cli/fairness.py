"""The fairness commands: audit a model by the groups of sensitive columns, and mitigate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlre.cli.options import JsonOpt, RunDataOpt, SpecOpt, TargetOpt, split
from mlre.cli.output import guarded, out, print_recorded, show, steps

PANEL = "Fairness"
commands = typer.Typer()


@commands.command(rich_help_panel=PANEL)
@guarded
def fairness(
    model: Annotated[str, typer.Argument(help="models:/NAME@ALIAS, models:/NAME/VERSION")],
    data: Annotated[Path, typer.Argument(help="A labelled table, e.g. the run's holdout.")],
    sensitive: Annotated[
        list[str], typer.Option(help="Sensitive columns (repeat, or comma-separated).")
    ],
    target: TargetOpt = None,
    spec: SpecOpt = None,
    proxies: Annotated[bool, typer.Option(help="Look for features standing in for them.")] = True,
    gate: Annotated[
        bool, typer.Option("--gate", help="Exit 1 when a disparity breaks its limit.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Is the model fair? Metrics and disparities between the groups of sensitive columns.

    Metrics per group with bootstrap 95% intervals, disparities against the spec's limits, and
    proxy features; small groups are shown, not judged."""
    from mlre import api

    with steps(not as_json) as step:
        step("auditing the predictions by group")
        audit = api.fairness(
            model,
            data,
            sensitive=split(sensitive) or [],
            target=target,
            spec=spec,
            proxies=proxies,
        )
    show(audit, _render_fairness, as_json=as_json)
    if gate and audit.breached:
        raise typer.Exit(1)


def _render_fairness(audit: Any) -> None:
    keys = (
        ["selection_rate", "true_positive_rate", "false_positive_rate", "precision", "accuracy"]
        if audit.task == "binary"
        else ["mean_prediction", "mean_error", "mae"]
    )
    for column in dict.fromkeys(g.column for g in audit.groups):
        table = Table(show_edge=False, title=f"by {column}", title_justify="left")
        table.add_column("group", style="bold")
        table.add_column("rows", justify="right")
        for k in keys:
            table.add_column(k.replace("_", " "), justify="right")
        for g in (g for g in audit.groups if g.column == column):
            cells = []
            for k in keys:
                low, high = g.intervals.get(k, (float("nan"), float("nan")))
                cells.append(f"{g.metrics[k]:.3f} [{low:.2f}, {high:.2f}]")
            name = escape(g.group) + (" [dim](small)[/]" if g.small else "")
            table.add_row(name, f"{g.count:,}", *cells)
        out.print(table)
    table = Table(show_edge=False, title="disparities", title_justify="left")
    for c in ("column", "measure", "value", "limit", ""):
        table.add_column(c, justify="right" if c in ("value", "limit") else "left")
    for d in audit.disparities:
        mark = "[bold red]breached[/]" if d.breached else "[green]within[/]" if d.limit else ""
        limit = "" if d.limit is None else f"{d.limit:g}"
        table.add_row(escape(d.column), d.name.replace("_", " "), f"{d.value:.3f}", limit, mark)
    out.print(table)
    for f in audit.findings:
        if f.severity.value != "info":
            out.print(f"[yellow]! {escape(f.message)}[/]", soft_wrap=True)


@commands.command(rich_help_panel=PANEL)
@guarded
def mitigate(
    run_id: Annotated[str, typer.Argument(help="The `mlre run` of a binary classifier.")],
    sensitive: Annotated[str, typer.Option(help="The sensitive column to mitigate for.")],
    constraint: Annotated[
        str, typer.Option(help="demographic_parity or equalized_odds.")
    ] = "demographic_parity",
    data: RunDataOpt = None,
    reductions: Annotated[
        bool, typer.Option(help="Also refit the model under the constraint (slower).")
    ] = True,
    register: Annotated[
        str | None,
        typer.Option(help="Register this option (by its name) as a new version of the model."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the trade-off table and plot to this HTML file."
        ),
    ] = None,
    track: Annotated[bool, typer.Option(help="Record the trade-off in MLflow.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """The accuracy a smaller disparity costs, and a mitigated model to register.

    The run's model, thresholds per group, and the model refitted under the constraint, all
    scored on the same held-out rows."""
    from mlre import api
    from mlre.api.fairness import write_tradeoff_page

    with steps(not as_json) as step:
        step("fitting the mitigations")
        result = api.mitigate(
            run_id,
            sensitive=sensitive,
            constraint=constraint,
            data=data,
            reductions=reductions,
            register=register,
            track=track,
        )
    if output is not None:
        write_tradeoff_page(result, output)
    if show(result, lambda r: _render_mitigation(r, register), as_json=as_json, page=output,
            page_name="trade-off table and plot"):  # fmt: skip
        return
    print_recorded(result.run_id_recorded)


def _render_mitigation(result: Any, register: str | None) -> None:
    sensitive, constraint = result.sensitive, result.constraint
    table = Table(show_edge=False, title=f"{constraint.replace('_', ' ')} by {sensitive}")
    for c in ("option", "accuracy", "balanced acc.", "DP difference", "EO difference", ""):
        table.add_column(c, justify="left" if c in ("option", "") else "right")
    for o in result.options:
        note = "Pareto" if o.name in result.front else ""
        if o.needs_sensitive:
            note += (", " if note else "") + f"needs {sensitive} to predict"
        table.add_row(
            escape(o.name),
            f"{o.accuracy:.4f}",
            f"{o.balanced_accuracy:.4f}",
            f"{o.demographic_parity_difference:.3f}",
            f"{o.equalized_odds_difference:.3f}",
            note,
        )
    out.print(table)
    if result.registered is not None:
        reg = result.registered
        out.print(
            f"registered [bold]{escape(register or '')}[/] as version {reg.version} of "
            f"{escape(reg.name)} (alias {reg.alias})"
        )
