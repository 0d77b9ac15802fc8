"""The model commands: run the search, then look at, rebuild, use and explain what it made."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlre.cli.options import (
    DataArg,
    DbOpt,
    JsonOpt,
    ModelArg,
    RayOpt,
    SeedOpt,
    SpecOpt,
    SqlOpt,
    TargetOpt,
    TaskOpt,
    split,
)
from mlre.cli.output import (
    SEVERITY_MARK,
    SEVERITY_STYLE,
    budget_bar,
    err,
    guarded,
    out,
    print_warnings,
    steps,
    write_json,
)

PANEL = "Models"
commands = typer.Typer()

# the options of `mlre run`, named here so that its signature reads as a list
TimeBudgetOpt = Annotated[
    float | None, typer.Option("--time-budget", help="Seconds for the whole run.")
]
MetricOpt = Annotated[str | None, typer.Option(help="Metric to optimise (default: per task).")]
TestOpt = Annotated[Path | None, typer.Option(help="A labelled test table to use as the holdout.")]
FamiliesOpt = Annotated[
    list[str] | None, typer.Option("--family", help="Only these model families.")
]
ForceOpt = Annotated[bool, typer.Option(help="Train even if the audit finds errors.")]
SearchRowsOpt = Annotated[
    int | None, typer.Option(help="Search on a sample of this many rows (default 100,000).")
]
TrackOpt = Annotated[
    bool, typer.Option("--track/--no-track", help="Record and register in MLflow.")
]
ReportOpt = Annotated[
    Path, typer.Option(help="Where to write the HTML report (the Markdown goes beside it).")
]
NoReportOpt = Annotated[bool, typer.Option("--no-report", help="Write no report.")]
RefitOpt = Annotated[
    bool | None,
    typer.Option(
        "--refit/--no-refit",
        help="Once the holdout has scored the chosen recipe, refit it on every labelled row "
        "and register that model (the default; the spec's `refit`).",
    ),
]
InterpretableOpt = Annotated[
    bool, typer.Option(help="Glass-box models only (sparse linear, shallow tree, EBM).")
]
SeedsOpt = Annotated[
    int, typer.Option(min=1, help="Repeat the whole run with this many seeds: the score's spread.")
]
SensitiveOpt = Annotated[
    list[str] | None,
    typer.Option(help="Sensitive columns: audit the model's fairness by their groups."),
]
ExcludeSensitiveOpt = Annotated[
    bool, typer.Option(help="Keep the sensitive columns out of the model's features.")
]
TimeColumnOpt = Annotated[
    str | None,
    typer.Option(
        help="Rows are events in time, dated by this column: every split goes forward (the "
        "spec's `time_column`)."
    ),
]
GapOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="With --time-column: rows left out between each training window and the rows "
        "validated after it, for labels that arrive late (the spec's `gap`).",
    ),
]
#: leaderboard columns that are not the metric
BOARD_COLUMNS = {
    "trial",
    "family",
    "phase",
    "status",
    "fold_scores",
    "fit_seconds",
    "predict_seconds",
    "params",
    "error",
}
#: warnings of a run worth a line under its score
RUN_WARNINGS = (
    "search_holdout_gap",
    "small_budget",
    "worker_lost",
    "sampled_table",
    "refit_skipped",
)


@commands.command(rich_help_panel=PANEL)
@guarded
def run(
    data: DataArg = None,
    target: TargetOpt = None,
    time_budget: TimeBudgetOpt = None,
    metric: MetricOpt = None,
    test: TestOpt = None,
    db: DbOpt = None,
    sql: SqlOpt = None,
    spec: SpecOpt = None,
    task: TaskOpt = None,
    seed: SeedOpt = None,
    families: FamiliesOpt = None,
    force: ForceOpt = False,
    search_rows: SearchRowsOpt = None,
    as_json: JsonOpt = False,
    track: TrackOpt = True,
    report: ReportOpt = Path("report.html"),
    no_report: NoReportOpt = False,
    interpretable: InterpretableOpt = False,
    refit: RefitOpt = None,
    seeds: SeedsOpt = 1,
    sensitive: SensitiveOpt = None,
    exclude_sensitive: ExcludeSensitiveOpt = False,
    time_column: TimeColumnOpt = None,
    gap: GapOpt = None,
    ray: RayOpt = None,
) -> None:
    """Find the best honest model within the time budget; track, register and report it."""
    from mlre import api

    options: dict[str, Any] = {
        "target": target,
        "test": test,
        "sql": sql,
        "db": db,
        "spec": spec,
        "time_budget": time_budget,
        "metric": metric,
        "task": task,
        "families": split(families),
        "force": force,
        "search_rows": search_rows,
        "track": track,
        "report": False if no_report else report,
        "interpretable": interpretable or None,
        **({"refit": refit} if refit is not None else {}),
        **({"sensitive": split(sensitive)} if sensitive else {}),
        **({"exclude_sensitive": True} if exclude_sensitive else {}),
        **({"time_column": time_column} if time_column else {}),
        **({"gap": gap} if gap is not None else {}),
        **({"ray": ray} if ray else {}),
    }
    if seeds > 1:
        _run_seeds(data, seeds, seed, options, as_json)
        return
    with budget_bar(enabled=not as_json, budget=time_budget) as step:
        result = api.run(data, seed=seed, progress=step, **options)
    if as_json:
        write_json(
            {
                "summary": result.summary(),
                "leaderboard": result.leaderboard,
                "findings": result.findings.to_list(),
            }
        )
        return
    _render_run(result)
    _render_fairness_gate(result)


def _expected(interval: tuple[float, float] | None) -> str:
    if interval is None or not all(math.isfinite(v) for v in interval):
        return ""
    return f", holdout expected in {interval[0]:.4f} to {interval[1]:.4f}"


def _render_run(result: Any) -> None:
    _render_leaderboard(result.leaderboard, result.metric, limit=10)
    s = result.summary()
    better = result.baseline.get(result.metric)
    out.print(
        f"\n[bold]{result.metric}[/] on the holdout ({s['scheme']['holdout_rows']:,} rows never seen by "
        f"the search): [bold green]{result.holdout_score:.4f}[/] "
        f"(search estimate {result.search_score:.4f}{_expected(result.search_interval)}; "
        f"naive baseline {better:.4f})"
    )
    shuffled = s["scheme"].get("shuffled")
    if shuffled:
        out.print(
            f"forward in time the best configuration scored {shuffled['forward']:.4f}; shuffled "
            f"folds would have said {shuffled['shuffled']:.4f} (noise ±{shuffled['noise']:.4f})"
        )
    for f in result.findings.of("error"):  # e.g. the audit's, when --force went past them
        out.print(f"[red]! error: {escape(f.message)}[/]")
    for f in result.findings.of("warning"):
        if f.check in RUN_WARNINGS:
            out.print(f"[yellow]! {escape(f.message)}[/]")
    members = ", ".join(
        f"{m['family']}{' (second layer)' if m.get('stacked') else ''} ×{m['weight']:.2f}"
        for m in result.ensemble
    )
    out.print(
        f"final model: {escape(members)}; {len(result.leaderboard)} trials in {result.seconds:.0f}s "
        f"of a {result.budget:g}s budget"
    )
    if result.model_uri:
        out.print(
            f"registered as [bold]{escape(result.model_uri)}[/] (version {result.model_version}); "
            f"MLflow run {result.run_id}"
        )
    if result.report_path:
        out.print(f"report: [bold]{escape(result.report_path)}[/] (and .md beside it)")


def _render_fairness_gate(result: Any) -> None:
    """Name the fairness warnings; exit 1 when the spec's fairness constraint is broken."""
    fair = [f for f in result.findings if f.check.startswith("fairness_")]
    for f in fair:
        if f.severity != "info":
            style = SEVERITY_STYLE[f.severity]
            out.print(f"[{style}]{SEVERITY_MARK[f.severity]} {escape(f.message)}[/]")
    if any(f.severity == "error" for f in fair):
        err.print("[bold red]the fairness constraint of the spec is not met[/]")
        raise typer.Exit(1)


def _run_seeds(
    data: Any, seeds: int, seed: int | None, options: dict[str, Any], as_json: bool
) -> None:
    from mlre import api

    budget = options["time_budget"]
    with budget_bar(enabled=not as_json, budget=None if budget is None else budget * seeds) as step:
        many = api.run_seeds(data, seeds=seeds, seed=seed, progress=step, **options)
    if as_json:
        write_json(many.to_dict())
        return
    table = Table(show_edge=False)
    for column in ("seed", f"holdout {many.metric}", "search estimate", "MLflow run"):
        table.add_column(column, justify="left" if column == "MLflow run" else "right")
    for s, r in zip(many.seeds, many.runs, strict=True):
        table.add_row(str(s), f"{r.holdout_score:.4f}", f"{r.search_score:.4f}", r.run_id or "")
    out.print(table)
    out.print(escape(many.sentence()), soft_wrap=True)
    if many.run_id:
        out.print(f"[dim]summary recorded as MLflow run {many.run_id}[/]")


@commands.command("report", rich_help_panel=PANEL)
@guarded
def report_cmd(
    run_id: Annotated[
        str | None, typer.Argument(help="The run (default: the most recent `mlre run`).")
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="HTML file to write (Markdown beside it).")
    ] = Path("report.html"),
) -> None:
    """(Re)build the report of a run from what it logged."""
    from mlre import api

    path = api.build_report(run_id, output)
    out.print(f"report: [bold]{escape(str(path))}[/] and {escape(str(path.with_suffix('.md')))}")


def _render_leaderboard(rows: list[dict[str, Any]], metric: str, limit: int | None = None) -> None:
    table = Table(title="Leaderboard", title_justify="left", expand=False)
    for col in ("trial", "family", "phase", metric, "fit s", "status"):
        table.add_column(col, justify="right" if col in (metric, "fit s", "trial") else "left")
    for r in rows[:limit] if limit else rows:
        score = r.get(metric)
        table.add_row(
            str(r["trial"]),
            r["family"],
            r["phase"],
            "" if score is None else f"{score:.4f}",
            f"{r['fit_seconds']:.1f}",
            r["status"],
        )
    out.print(table)
    if limit and len(rows) > limit:
        out.print(f"[dim]… {len(rows) - limit} more (mlre leaderboard)[/]")


@commands.command(rich_help_panel=PANEL)
@guarded
def leaderboard(
    run_id: Annotated[
        str | None, typer.Argument(help="A run id (default: the latest mlre run).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the candidates of a run, best first."""
    from mlre import api

    rid, rows = api.leaderboard(run_id)
    if as_json:
        write_json(rows)
        return
    metric = next((k for k in rows[0] if k not in BOARD_COLUMNS), "score")
    out.print(f"run {rid}")
    _render_leaderboard(rows, metric)


@commands.command(rich_help_panel=PANEL)
@guarded
def runs(
    limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List recent audits and runs recorded in the MLflow store."""
    from mlre import api

    rows = api.runs(limit)
    if as_json:
        write_json(rows)
        return
    if not rows:
        out.print("no runs recorded yet: try [bold]mlre audit DATA --target COL[/]")
        return
    table = Table(expand=False)
    for col in ("run_id", "kind", "status", "started", "holdout", "model"):
        table.add_column(col)
    for r in rows:
        score = "" if r["holdout"] is None else f"{r['metric']} {r['holdout']:.4f}"
        table.add_row(
            r["run_id"], r["kind"] or "", r["status"], r["started"], score, r["model"] or ""
        )
    out.print(table)


@commands.command(rich_help_panel=PANEL)
@guarded
def predict(
    model: ModelArg,
    data: Annotated[Path, typer.Argument(help="The rows to predict.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write predictions here (.csv/.parquet).")
    ] = None,
    batch_rows: Annotated[
        int | None,
        typer.Option(help="Predict in batches of this many rows (large files: automatic)."),
    ] = None,
) -> None:
    """Predict with a registered model; the input is checked against the model's data contract.

    With -o, Parquet and CSV files larger than 256 MB are read and predicted in batches."""
    import sys

    from mlre import api
    from mlre.errors import InputError

    if batch_rows is not None and output is None:
        raise InputError("--batch-rows writes to a file: add -o predictions.parquet")
    result = api.predict(model, data, output=output, batch_rows=batch_rows)
    print_warnings(result.warnings)
    if output is not None:
        out.print(f"wrote {result.rows:,} predictions to {escape(str(output))}")
    elif result.frame is not None:  # always, without a file to stream to
        sys.stdout.write(result.frame.to_csv(index=False))


@commands.command(rich_help_panel=PANEL)
@guarded
def explain(
    model: ModelArg,
    data: Annotated[Path, typer.Argument(help="The rows to explain.")],
    top: Annotated[int, typer.Option(min=1, help="Contributions shown per row.")] = 5,
    rows: Annotated[
        int, typer.Option(min=1, help="Explain the first ROWS rows (each costs a few seconds).")
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """Why the model predicts what it does: each column's contribution (Shapley values) per row."""
    from mlre import api

    with steps(enabled=not as_json) as step:
        step(f"explaining up to {rows} row(s)")
        result = api.explain_predictions(model, data, rows=rows)
    print_warnings(result.warnings)
    if as_json:
        write_json(result.to_dict(top))
        return
    _render_explanations(result, top)


def _render_explanations(result: Any, top: int) -> None:
    for r in result.to_dict(top)["rows"]:
        table = Table(
            title=f"row {r['row']}: predicted {escape(str(r['prediction']))}; "
            f"{escape(r['output'])} = {r['value']:.4g} (base {r['base_value']:.4g})",
            title_justify="left",
        )
        table.add_column("column")
        table.add_column("value")
        table.add_column("contribution", justify="right")
        for c in r["contributions"]:
            colour = "green" if c["contribution"] > 0 else "red"
            table.add_row(
                escape(c["feature"]),
                escape(str(c["value"])),
                f"[{colour}]{c['contribution']:+.4g}[/]",
            )
        table.add_row("[dim]other columns[/]", "", f"{r['other_columns']:+.4g}")
        out.print(table)
    if result.total_rows > len(result.rows):
        out.print(f"[dim]explained {len(result.rows)} of {result.total_rows:,} rows (--rows)[/]")
