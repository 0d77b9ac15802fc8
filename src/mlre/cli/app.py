"""The ``mlre`` Typer app: global options, and every command group registered in its panel."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from mlre.cli import causal, data, experiments, fairness, model, monitor, release
from mlre.cli.output import out

app = typer.Typer(
    name="mlre",
    help="A machine-learning research engineer you can run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _quiet_libraries() -> None:
    for name in ("mlflow", "alembic", "urllib3", "git"):
        logging.getLogger(name).setLevel(logging.WARNING)


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


# the groups in the order of the work: `mlre --help` lists them so, one panel each
app.add_typer(data.commands)
app.add_typer(model.commands)
app.add_typer(experiments.commands)
app.add_typer(fairness.commands)
app.add_typer(causal.commands)
app.add_typer(release.commands)
app.add_typer(release.audit_log, name="audit-log", rich_help_panel=release.PANEL)
app.add_typer(release.prediction_log, name="prediction-log", rich_help_panel=release.PANEL)
app.add_typer(monitor.commands)


def main() -> None:
    """Entry point of the ``mlre`` console script."""
    app()
