"""``mlre runs``, ``mlre leaderboard`` and ``mlre report``: what earlier runs recorded, read back
from the store (the list of runs, a run's leaderboard, its report rebuilt from its data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mlre.errors import InputError


def latest_run_id() -> str:
    """The id of the most recent ``mlre run`` in the store (InputError when there is none)."""
    from mlre.track.store import find_runs

    recent = find_runs("run", max_results=1)
    if not recent:
        raise InputError(
            "no `mlre run` recorded in this store", hint="run `mlre run DATA --target COL` first"
        )
    return recent[0].info.run_id


def build_report(run_id: str | None = None, output: str | Path = "report.html") -> Path:
    """(Re)build the report of a run (default: the most recent ``mlre run``) from its logged
    report data; writes ``output`` and the Markdown beside it. Returns the HTML path."""
    from mlre.report.render import write_report
    from mlre.track.store import read_json_artifact

    run_id = run_id or latest_run_id()
    try:
        data = read_json_artifact(run_id, "report/report.json")
    except Exception as err:
        raise InputError(
            f"run {run_id} has no report data ({str(err).splitlines()[0]})",
            hint="reports are kept for runs made with tracking on; list them with `mlre runs`",
        ) from None
    html, _ = write_report(data, output)
    return html


def leaderboard(run_id: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The leaderboard of a run (default: the most recent ``mlre run``)."""
    from mlre.track.store import read_json_artifact

    run_id = run_id or latest_run_id()
    try:
        return run_id, read_json_artifact(run_id, "leaderboard.json")
    except Exception as err:
        raise InputError(
            f"run {run_id} has no leaderboard ({str(err).splitlines()[0]})",
            hint="list runs with `mlre runs`",
        ) from None


def runs(max_results: int = 20) -> list[dict[str, Any]]:
    """Recent mlre runs in the store, newest first."""
    from mlre.track.store import find_runs

    out: list[dict[str, Any]] = []
    for r in find_runs(None, max_results=5 * max_results):
        if r.data.tags.get("mlre.kind") not in ("audit", "run") or len(out) >= max_results:
            continue
        metric = r.data.tags.get("mlre.metric")
        out.append(
            {
                "run_id": r.info.run_id,
                "kind": r.data.tags.get("mlre.kind"),
                "name": r.info.run_name,
                "status": r.info.status,
                "started": pd.Timestamp(r.info.start_time, unit="ms").isoformat(timespec="seconds"),
                "metric": metric,
                "holdout": r.data.metrics.get(f"holdout_{metric}") if metric else None,
                "model": r.data.tags.get("mlre.model_uri"),
            }
        )
    return out
