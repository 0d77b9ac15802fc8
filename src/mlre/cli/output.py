"""What every command shares for output: the consoles, the error handler, findings and
progress bars."""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from mlre.errors import MlreError

out = Console()
err = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
SEVERITY_MARK = {"error": "✖", "warning": "!", "info": "i"}
SEVERITY_TITLE = {"error": "Errors", "warning": "Warnings", "info": "Info"}
VERDICT_STYLE = {
    "helps": "bold green",
    "hurts": "bold red",
    "equivalent": "cyan",
    "no clear difference": "yellow",
}


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn an MlreError into a one-line message, a hint and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
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

    return wrapper


def show(
    result: Any,
    render: Callable[[Any], None],
    *,
    as_json: bool,
    payload: dict[str, Any] | None = None,
    page: Path | None = None,
    page_name: str = "report",
) -> bool:
    """A command's result for its reader: JSON on stdout (``payload``, else ``result.to_dict()``)
    with ``--json``, else rendered for a person, with where its page was written. True when it was
    JSON, so that a command can stop there."""
    if as_json:
        out.print_json(json.dumps(result.to_dict() if payload is None else payload, default=str))
        return True
    render(result)
    if page is not None:
        out.print(f"{page_name}: [bold]{escape(str(page))}[/]")
    return False


def write_json(payload: Any) -> None:
    """``payload`` as indented JSON on stdout, nothing else (for pipes)."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def print_findings(findings: Any, *, info: tuple[str, ...] = ()) -> None:
    """Warnings and errors one line each (info only for the checks named in ``info``)."""
    for f in findings:
        severity = str(f.severity.value if hasattr(f.severity, "value") else f.severity)
        if severity != "info" or f.check.startswith(info or ("\0",)):
            style = SEVERITY_STYLE[severity]
            out.print(f"[{style}]{severity}: {escape(f.message)}[/]", soft_wrap=True)


def print_warnings(warnings: list[str]) -> None:
    """Each warning of a prediction on stderr, so stdout stays data."""
    for w in warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)


def print_recorded(run_id: str | None) -> None:
    """Name the MLflow run a command recorded, if it recorded one."""
    if run_id:
        out.print(f"[dim]recorded as MLflow run {run_id}[/]")


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


@contextmanager
def budget_bar(enabled: bool, budget: float | None) -> Iterator[Callable[[str], None]]:
    """A progress bar over the time budget, naming the current step."""
    if not enabled:
        yield lambda _: None
        return
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


@contextmanager
def fold_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar over every candidate's folds."""
    if not enabled:
        yield lambda *_: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("fitting", total=None)

        def step(name: str, done: int, total: int) -> None:
            bar.update(task, description=f"fitting {name}", completed=done, total=total)

        yield step
