"""The release commands: serve, promote, roll back, the release history, the audit log and the
prediction log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlre.cli.options import JsonOpt, SpecOpt
from mlre.cli.output import err, guarded, out, write_json

PANEL = "Release"
commands = typer.Typer()
# groups of their own (`mlre audit-log verify`), shown in this panel
audit_log = typer.Typer(help="The deployment audit log.", no_args_is_help=True)
prediction_log = typer.Typer(help="The service's prediction log.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The registered model's name (the project).")]


@commands.command(rich_help_panel=PANEL)
@guarded
def serve(
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model to serve.")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8080,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    spec: SpecOpt = None,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="File of API keys for state changes: one key, or 'name: key' lines (the audit "
            "log names who acted by their key's name). Else $MLRE_API_KEY."
        ),
    ] = None,
    require_key_for_predict: Annotated[
        bool, typer.Option(help="Answer predictions only with a valid API key too.")
    ] = False,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, in MiB.")] = 2.0,
    max_rows: Annotated[int, typer.Option(min=1, help="Most rows in one request.")] = 10_000,
    prediction_log: Annotated[
        Path | None, typer.Option(help="SQLite file of logged predictions.")
    ] = None,
    log_sample: Annotated[float, typer.Option(help="Share of requests logged (0-1).")] = 1.0,
    log_inputs: Annotated[
        bool, typer.Option(help="Log each request's inputs (off: outputs and latency only).")
    ] = True,
    retention_days: Annotated[
        float | None, typer.Option(help="Delete logged predictions older than this.")
    ] = None,
    poll: Annotated[float, typer.Option(help="Seconds between registry checks.")] = 2.0,
) -> None:
    """Serve the registry's champion (or candidate) over HTTP, with its challenger on trial."""
    from mlre.api.deploy import serve_model, service_config

    config = service_config(
        model,
        spec=spec,
        key_file=api_key_file,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        max_rows=max_rows,
        poll_seconds=poll,
        prediction_log=prediction_log,
        log_sample=log_sample,
        log_inputs=log_inputs,
        retention_days=retention_days,
        require_key_for_predict=require_key_for_predict,
    )
    keyed = "on" if config.keys() else "off (no API key)"
    err.print(
        f"serving [bold]{escape(model)}[/] on http://{host}:{port} (docs at /docs; state changes "
        f"{keyed})"
    )
    serve_model(config, host=host, port=port)


@commands.command(rich_help_panel=PANEL)
@guarded
def promote(
    name: NameArg,
    version: Annotated[str, typer.Option("--version", "-v", help="The version to promote.")],
    shadow: Annotated[bool, typer.Option("--shadow", help="Mirror live traffic to it.")] = False,
    canary: Annotated[
        float | None, typer.Option("--canary", help="Send it this percentage of live traffic.")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Make it champion, if the gate passes.")
    ] = False,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
    spec: SpecOpt = None,
    prediction_log: Annotated[
        Path | None, typer.Option(help="The service's prediction log (for the gate).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a version on trial (--shadow, --canary PCT) or make it champion (--full)."""
    from mlre import api
    from mlre.errors import InputError

    chosen = [
        m for m, on in (("shadow", shadow), ("canary", canary is not None), ("full", full)) if on
    ]
    if len(chosen) != 1:
        raise InputError("choose one of --shadow, --canary PCT or --full")
    result = api.promote(
        name,
        version,
        chosen[0],
        share=(canary or 0.0) / 100.0,
        reason=reason,
        spec=spec,
        prediction_log=prediction_log,
    )
    if as_json:
        write_json(result.to_dict())
        return
    _render_promotion(name, result)


def _render_promotion(name: str, result: Any) -> None:
    if result.mode == "full":
        out.print(f"version {result.version} of {escape(name)} is now the [bold]champion[/]")
        summary = result.evidence.get("summary")
        if summary:
            out.print(f"[dim]{escape(summary)}[/]")
    elif result.mode == "canary":
        out.print(
            f"version {result.version} of {escape(name)} is the challenger, answering "
            f"{result.share:.0%} of live traffic"
        )
    else:
        out.print(f"version {result.version} of {escape(name)} is the challenger, in shadow")
    out.print(f"[dim]audit record {result.audit_seq}[/]")


@commands.command(rich_help_panel=PANEL)
@guarded
def rollback(
    name: NameArg,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
) -> None:
    """End the challenger's trial, or put back the previous champion when none is on trial."""
    from mlre import api

    result = api.rollback(name, reason=reason)
    if result.action == "challenger_removed":
        out.print(
            f"challenger version {result.versions.get('challenger')} of {escape(name)} rolled "
            f"back; version {result.versions.get('champion')} keeps serving"
        )
    else:
        out.print(
            f"version {result.versions.get('champion')} of {escape(name)} is the champion again "
            f"(version {result.versions.get('demoted_champion')} demoted)"
        )
    out.print(f"[dim]audit record {result.audit_seq}[/]")


@commands.command(rich_help_panel=PANEL)
@guarded
def deployments(name: NameArg, as_json: JsonOpt = False) -> None:
    """Who serves what, since when and why: the current roles and the release history."""
    from mlre import api

    data = api.deployments(name)
    if as_json:
        write_json(data)
        return
    r = data["release"]
    trial = ""
    if r["challenger"]:
        share = f" {r['share']:.0%}" if r["mode"] == "canary" else ""
        trial = f", challenger v{r['challenger']} ({r['mode']}{share} since {r['since']})"
    out.print(
        f"[bold]{escape(name)}[/]: champion {('v' + r['champion']) if r['champion'] else 'none'}"
        f"{trial}" + (f", latest candidate v{r['candidate']}" if r["candidate"] else "")
    )
    for role, version in data.get("out_of_band", {}).items():
        out.print(
            f"[red]! the {role} alias names v{escape(version)}, which no release action put "
            "there: the service does not serve it, and `mlre audit-log verify` fails[/]"
        )
    if not data["history"]:
        out.print("[dim]no release actions recorded yet[/]")
        return
    table = Table(expand=False)
    for col in ("#", "time", "action", "versions", "actor", "reason"):
        table.add_column(col)
    for h in data["history"]:
        versions = ", ".join(f"{k} {v}" for k, v in h["versions"].items() if v is not None)
        table.add_row(
            str(h["seq"]),
            h["time"][:19].replace("T", " "),
            h["action"],
            escape(versions),
            escape(h["actor"]),
            escape(h["reason"]),
        )
    out.print(table)


@audit_log.command("verify")
@guarded
def verify(
    path: Annotated[
        Path | None,
        typer.Option(help="The audit log (default: $MLRE_AUDIT_LOG or ./mlre-audit.db)."),
    ] = None,
) -> None:
    """Prove the deployment history was not altered: exit 1 if any record was edited or removed."""
    from mlre import api

    result = api.verify_audit_log(path)
    if result.ok:
        out.print(
            f"[green]✔[/] the audit log is intact: {result.records} record(s), chain verified"
        )
        return
    err.print(f"[bold red]✖ the audit log was altered:[/] {escape(result.problem or '')}")
    raise typer.Exit(1)


@prediction_log.command("export")
@guarded
def export(
    output: Annotated[Path, typer.Argument(help="The Parquet file to write.")],
    model: Annotated[str | None, typer.Option(help="Only this model's predictions.")] = None,
    version: Annotated[str | None, typer.Option(help="Only this version's.")] = None,
    path: Annotated[
        Path | None,
        typer.Option(help="The log (default: $MLRE_PREDICTION_LOG or ./mlre-predictions.db)."),
    ] = None,
) -> None:
    """Write logged predictions (with any true labels sent back) to a Parquet file."""
    from mlre.api.deploy import export_predictions

    rows = export_predictions(output, model=model, version=version, path=path)
    out.print(f"wrote {rows:,} logged prediction(s) to {escape(str(output))}")
