"""The data commands: audit a table, write a spec to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlre.cli.options import (
    DataArg,
    DbOpt,
    JsonOpt,
    SeedOpt,
    SpecOpt,
    SqlOpt,
    TargetOpt,
    TaskOpt,
    split,
    unescape,
)
from mlre.cli.output import (
    SEVERITY_MARK,
    SEVERITY_STYLE,
    SEVERITY_TITLE,
    guarded,
    out,
    steps,
    write_json,
)

PANEL = "Data"
commands = typer.Typer()


@commands.command(rich_help_panel=PANEL)
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
    from mlre import api

    with steps(enabled=not as_json) as step:
        report = api.audit(
            data,
            target=target,
            test=test,
            sql=sql,
            db=db,
            spec=spec,
            track=track,
            encoding=encoding,
            delimiter=unescape(delimiter),
            progress=step,
            task=task,
            id_columns=split(id_columns),
            na_values=split(na_values),
            seed=seed,
            stream=stream,
        )
    if as_json:
        write_json(report.to_dict())
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


@commands.command(rich_help_panel=PANEL)
@guarded
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the spec.")] = Path("mlre.yaml"),
    target: TargetOpt = None,
    project: Annotated[str | None, typer.Option(help="Project name.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented objective spec (mlre.yaml) to edit."""
    from mlre import api

    written = api.init(path, target=target, project=project, force=force)
    out.print(f"wrote {escape(str(written))}: edit it, then run [bold]mlre audit DATA[/]")
