"""The ``mlre`` command line: parse, call the API, render with Rich. No logic of its own."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    name="mlre",
    help="A machine-learning research engineer you can run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
out = Console()
err = Console(stderr=True)

# Options several commands share, declared once.
DataArg = Annotated[Path | None, typer.Argument(help="CSV/TSV/Parquet/JSON-lines file or folder.")]
TargetOpt = Annotated[str | None, typer.Option("--target", "-t", help="Column to predict.")]
DbOpt = Annotated[Path | None, typer.Option(help="DuckDB or SQLite database file (with --sql).")]
SqlOpt = Annotated[str | None, typer.Option(help="Query that selects the table.")]
SpecOpt = Annotated[
    Path | None, typer.Option(help="Objective spec (default: ./mlre.yaml if present).")
]
TaskOpt = Annotated[
    str | None, typer.Option(help="binary, multiclass or regression (default: detected).")
]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable output.")]
RayOpt = Annotated[
    str | None,
    typer.Option(
        "--ray",
        help="Fit on Ray: 'auto' starts one on this machine's cores, ray://HOST:10001 joins a "
        "cluster (default: MLRE_RAY_ADDRESS, else no Ray).",
    ),
]
ModelArg = Annotated[
    str, typer.Argument(help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/ID/model")
]

F = TypeVar("F", bound=Callable[..., Any])
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
SEVERITY_MARK = {"error": "✖", "warning": "!", "info": "i"}
SEVERITY_TITLE = {"error": "Errors", "warning": "Warnings", "info": "Info"}


def _quiet_libraries() -> None:
    for name in ("mlflow", "alembic", "urllib3", "git"):
        logging.getLogger(name).setLevel(logging.WARNING)


def guarded(fn: F) -> F:
    """Turn an MlreError into a one-line message, a hint and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from mlre.errors import MlreError

        try:
            return fn(*args, **kwargs)
        except MlreError as e:
            err.print(f"[bold red]error:[/] {escape(e.message)}", soft_wrap=True)
            if e.hint:
                err.print(f"[dim]hint:[/] {escape(e.hint)}", soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except Exception as e:
            if logging.getLogger().isEnabledFor(logging.INFO):
                raise
            err.print(f"[bold red]internal error:[/] {escape(type(e).__name__)}: {escape(str(e))}")
            err.print(
                "[dim]hint:[/] this is a bug in mlre; rerun with --verbose for the traceback and report it"
            )
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def steps(enabled: bool) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the step being worked on."""
    if not enabled:
        yield lambda _: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda label: bar.update(task, description=label)


def _version(value: bool) -> None:
    if value:
        from mlre.version import __version__

        out.print(f"mlre {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
) -> None:
    """A machine-learning research engineer you can run."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        _quiet_libraries()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _split(values: list[str] | None) -> list[str] | None:
    """Accept both repeated options and comma-separated lists."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@app.command()
@guarded
def audit(
    data: DataArg = None,
    target: TargetOpt = None,
    test: Annotated[
        Path | None, typer.Option(help="A test table to compare with (overlap, shift).")
    ] = None,
    db: DbOpt = None,
    sql: SqlOpt = None,
    spec: SpecOpt = None,
    task: TaskOpt = None,
    id_columns: Annotated[
        list[str] | None, typer.Option("--id-columns", help="Identifier columns.")
    ] = None,
    na_values: Annotated[
        list[str] | None, typer.Option("--na-values", help="Extra missing-value tokens.")
    ] = None,
    seed: SeedOpt = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding (default: detected).")] = None,
    delimiter: Annotated[
        str | None, typer.Option(help="Field delimiter (default: detected).")
    ] = None,
    as_json: JsonOpt = False,
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="Record the audit in MLflow.")
    ] = True,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Audit in bounded memory: whole-file counts, other checks on a 200,000-row "
            "sample (default: for Parquet/CSV files over 256 MB).",
        ),
    ] = None,
) -> None:
    """Check a table like a careful engineer. Exit 1 if any finding is an error."""
    import mlre

    with steps(enabled=not as_json) as step:
        report = mlre.audit(
            data,
            target=target,
            test=test,
            sql=sql,
            db=db,
            spec=spec,
            track=track,
            encoding=encoding,
            delimiter=delimiter.encode().decode("unicode_escape") if delimiter else None,
            progress=step,
            task=task,
            id_columns=_split(id_columns),
            na_values=_split(na_values),
            seed=seed,
            stream=stream,
        )
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    else:
        _render_audit(report)
    raise typer.Exit(report.exit_code)


def _render_audit(report: Any) -> None:
    s = report.summary()
    out.print(
        f"[bold]{escape(str(s['source']))}[/]: {s['rows']:,} rows × {s['columns']} columns"
        + (f", target [bold]{escape(str(s['target']))}[/] ({s['task']})" if s["target"] else "")
        + (f", compared with {escape(str(s['test']))}" if s["test"] else "")
    )
    if "streamed" in report.details:
        out.print(f"[dim]{escape(report.details['streamed']['rule'])}[/]")
    if not len(report.findings):
        out.print("[green]No findings: the data looks clean.[/]")
    for severity in ("error", "warning", "info"):
        items = report.findings.of(severity)
        if not items:
            continue
        style = SEVERITY_STYLE[severity]
        out.print(f"\n[{style}]{SEVERITY_TITLE[severity]} ({len(items)})[/]")
        table = Table(box=None, show_header=False, pad_edge=False, expand=True)
        table.add_column(width=1)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(ratio=1)
        for f in items:
            text = escape(f.message) + (f"\n[dim]→ {escape(f.fix)}[/]" if f.fix else "")
            table.add_row(f"[{style}]{SEVERITY_MARK[severity]}[/]", f.check, text)
        out.print(table)
    out.print()
    counts = s["findings"]
    verdict = "[bold red]FAIL[/]" if report.exit_code else "[bold green]PASS[/]"
    out.print(
        f"{verdict}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info "
        f"in {s['seconds']:.1f}s"
    )
    if report.run_id:
        out.print(
            f"[dim]recorded as MLflow run {report.run_id} in {escape(str(report.tracking_uri))}[/]"
        )


@app.command()
@guarded
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the spec.")] = Path("mlre.yaml"),
    target: TargetOpt = None,
    project: Annotated[str | None, typer.Option(help="Project name.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented objective spec (mlre.yaml) to edit."""
    import mlre

    written = mlre.init(path, target=target, project=project, force=force)
    out.print(f"wrote {escape(str(written))}: edit it, then run [bold]mlre audit DATA[/]")


@app.command()
@guarded
def run(
    data: DataArg = None,
    target: TargetOpt = None,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", help="Seconds for the whole run.")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Metric to optimise (default: per task).")
    ] = None,
    test: Annotated[
        Path | None, typer.Option(help="A labelled test table to use as the holdout.")
    ] = None,
    db: DbOpt = None,
    sql: SqlOpt = None,
    spec: SpecOpt = None,
    task: TaskOpt = None,
    seed: SeedOpt = None,
    families: Annotated[
        list[str] | None, typer.Option("--family", help="Only these model families.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Train even if the audit finds errors.")] = False,
    search_rows: Annotated[
        int | None, typer.Option(help="Search on a sample of this many rows (default 100,000).")
    ] = None,
    as_json: JsonOpt = False,
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="Record and register in MLflow.")
    ] = True,
    report: Annotated[
        Path, typer.Option(help="Where to write the HTML report (the Markdown goes beside it).")
    ] = Path("report.html"),
    no_report: Annotated[bool, typer.Option("--no-report", help="Write no report.")] = False,
    interpretable: Annotated[
        bool,
        typer.Option(help="Glass-box models only (sparse linear, shallow tree, EBM)."),
    ] = False,
    seeds: Annotated[
        int,
        typer.Option(min=1, help="Repeat the whole run with this many seeds: the score's spread."),
    ] = 1,
    sensitive: Annotated[
        list[str] | None,
        typer.Option(help="Sensitive columns: audit the model's fairness by their groups."),
    ] = None,
    exclude_sensitive: Annotated[
        bool, typer.Option(help="Keep the sensitive columns out of the model's features.")
    ] = False,
    ray: RayOpt = None,
) -> None:
    """Find the best honest model within the time budget; track, register and report it."""
    import mlre

    options: dict[str, Any] = {
        "target": target,
        "test": test,
        "sql": sql,
        "db": db,
        "spec": spec,
        "time_budget": time_budget,
        "metric": metric,
        "task": task,
        "families": _split(families),
        "force": force,
        "search_rows": search_rows,
        "track": track,
        "report": False if no_report else report,
        "interpretable": interpretable or None,
        **({"sensitive": _split(sensitive)} if sensitive else {}),
        **({"exclude_sensitive": True} if exclude_sensitive else {}),
        **({"ray": ray} if ray else {}),
    }
    if seeds > 1:
        _run_seeds(data, seeds, seed, options, as_json)
        return
    with budget_bar(enabled=not as_json, budget=time_budget) as step:
        result = mlre.run(data, seed=seed, progress=step, **options)
    if as_json:
        payload = {
            "summary": result.summary(),
            "leaderboard": result.leaderboard,
            "findings": result.findings.to_list(),
        }
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    _render_leaderboard(result.leaderboard, result.metric, limit=10)
    s = result.summary()
    better = result.baseline.get(result.metric)
    out.print(
        f"\n[bold]{result.metric}[/] on the holdout ({s['scheme']['holdout_rows']:,} rows never seen by "
        f"the search): [bold green]{result.holdout_score:.4f}[/] "
        f"(search estimate {result.search_score:.4f}; naive baseline {better:.4f})"
    )
    for f in result.findings.of("warning"):
        if f.check in ("search_holdout_gap", "small_budget", "worker_lost", "sampled_table"):
            out.print(f"[yellow]! {escape(f.message)}[/]")
    members = ", ".join(f"{m['family']} ×{m['weight']:.2f}" for m in result.ensemble)
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
    _render_fairness_gate(result)


def print_findings(findings: Any, *, info: tuple[str, ...] = ()) -> None:
    """Warnings and errors one line each (info only for the checks named in ``info``)."""
    for f in findings:
        severity = str(f.severity.value if hasattr(f.severity, "value") else f.severity)
        if severity != "info" or f.check.startswith(info or ("\0",)):
            style = SEVERITY_STYLE[severity]
            out.print(f"[{style}]{severity}: {escape(f.message)}[/]", soft_wrap=True)


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
    from mlre.api.seeds import run_seeds

    budget = options["time_budget"]
    with budget_bar(enabled=not as_json, budget=None if budget is None else budget * seeds) as step:
        many = run_seeds(data, seeds=seeds, seed=seed, progress=step, **options)
    if as_json:
        sys.stdout.write(json.dumps(many.to_dict(), indent=2, default=str) + "\n")
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


@app.command("report")
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
    import mlre

    path = mlre.build_report(run_id, output)
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


@app.command()
@guarded
def leaderboard(
    run_id: Annotated[
        str | None, typer.Argument(help="A run id (default: the latest mlre run).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the candidates of a run, best first."""
    import mlre

    rid, rows = mlre.leaderboard(run_id)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    metric = next(
        (
            k
            for k in rows[0]
            if k
            not in {
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
        ),
        "score",
    )
    out.print(f"run {rid}")
    _render_leaderboard(rows, metric)


@app.command()
@guarded
def runs(
    limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List recent audits and runs recorded in the MLflow store."""
    import mlre

    rows = mlre.runs(limit)
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
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


@app.command()
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
    import mlre

    if batch_rows is not None and output is None:
        from mlre.errors import InputError

        raise InputError("--batch-rows writes to a file: add -o predictions.parquet")
    result = mlre.predict(model, data, output=output, batch_rows=batch_rows)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    if output is None:
        sys.stdout.write(result.frame.to_csv(index=False))
    else:
        out.print(f"wrote {result.rows:,} predictions to {escape(str(output))}")


@app.command()
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
    import mlre

    with steps(enabled=not as_json) as step:
        step(f"explaining up to {rows} row(s)")
        result = mlre.explain_predictions(model, data, rows=rows)
    for w in result.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(top), indent=2, default=str) + "\n")
        return
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


@contextmanager
def budget_bar(enabled: bool, budget: float | None) -> Iterator[Callable[[str], None]]:
    """A progress bar over the time budget, naming the current step."""
    if not enabled:
        yield lambda _: None
        return
    import time

    from rich.progress import BarColumn

    total = budget or 300.0
    start = time.monotonic()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=total)

        def step(label: str) -> None:
            bar.update(task, description=label, completed=min(total, time.monotonic() - start))

        yield step


def main() -> None:
    """Entry point of the ``mlre`` console script."""
    app()


# the release and experiment commands register themselves on ``app``
from mlre import cli_causal, cli_deploy, cli_experiments, cli_monitor  # noqa: E402, F401
