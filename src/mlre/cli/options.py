"""Options several commands share, declared once, and the helpers that read list options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlre.errors import InputError

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
RepeatsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="Repetitions of k-fold (default 10, 5 above 10k rows)."),
]
FoldsOpt = Annotated[
    int | None, typer.Option(min=2, help="Folds (default 10, 2 above 10,000 rows).")
]
RunDataOpt = Annotated[
    Path | None, typer.Option(help="The run's table, if it is no longer where it was.")
]


def split(values: list[str] | None) -> list[str] | None:
    """Accept both repeated options and comma-separated lists."""
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def numbers(value: str | None, option: str, example: str) -> list[float] | None:
    """A comma-separated list of numbers, or a clear error naming ``option``."""
    if not value:
        return None
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        raise InputError(f"{option} takes numbers, got {value!r}", hint=f"e.g. {example}") from None


def unescape(value: str | None) -> str | None:
    """A character as typed on a command line (``\\t`` for a tab)."""
    return value.encode().decode("unicode_escape") if value else None
