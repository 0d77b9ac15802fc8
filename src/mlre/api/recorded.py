"""Finished runs as the commands that build on them read them: the run, its spec, its leaderboard
and its data, and the model version it registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from mlre.api.inputs import Inputs
    from mlre.spec import Task


def finished_run(run_id: str) -> tuple[Any, Any]:
    """The MLflow client and a finished `mlre run` (InputError for anything else)."""
    from mlre.errors import InputError
    from mlre.track.store import store_client

    client = store_client()
    try:
        run = client.get_run(run_id)
    except Exception:
        raise InputError(
            f"no run {run_id!r} in the MLflow store", hint="`mlre runs` lists the runs"
        ) from None
    if run.data.tags.get("mlre.kind") != "run":
        raise InputError(
            f"run {run_id} is not an `mlre run` (it is {run.data.tags.get('mlre.kind')!r})"
        )
    return client, run


def run_inputs(run_id: str, data: str | Path | pd.DataFrame | None) -> tuple[Any, Any, Any]:
    """A finished run's spec, its leaderboard and its data (checked against the recorded hash)."""
    from mlre.errors import InputError
    from mlre.spec import build_spec

    client, run = finished_run(run_id)
    try:
        spec_values = json.loads(Path(client.download_artifacts(run_id, "spec.json")).read_text())
        board = json.loads(Path(client.download_artifacts(run_id, "leaderboard.json")).read_text())
    except Exception:
        raise InputError(f"run {run_id} has no recorded spec or leaderboard") from None
    source = data if data is not None else run.data.tags.get("mlre.source")
    if source is None or (not isinstance(source, pd.DataFrame) and not Path(source).exists()):
        raise InputError(
            f"the data of run {run_id} ({source}) is not where it was",
            hint="pass --data with the same table",
        )
    return run, build_spec(spec_values, source=f"the spec of run {run_id}"), (board, source)


def recorded_task(run: Any, inputs: Inputs) -> Task:
    """The task a finished run learnt: the one it recorded, else the one its data asks for."""
    from mlre.errors import InputError
    from mlre.spec import as_task

    recorded = run.data.params.get("task")
    if recorded:
        return as_task(recorded)
    if inputs.task is None:
        raise InputError(f"run {run.info.run_id} recorded no task and its spec has no target")
    return inputs.task


RUN_ID_LENGTH = 32


def run_model_uri(run: Any) -> str | None:
    """The registry address of the very version a run registered (its alias may have moved on
    to a later run's model)."""
    uri, version = run.data.tags.get("mlre.model_uri"), run.data.tags.get("mlre.model_version")
    if not uri:
        return None
    return f"{uri.split('@')[0]}/{version}" if version and "@" in uri else uri


def scored_model(run: Any) -> Any | None:
    """The model run ``run``'s holdout scored (hash-checked): the one it kept beside a refitted
    registered model, else the registered model itself; None when it registered none.

    Whatever judges a run on its holdout rows must use this one: a refit learnt from them."""
    from mlre.api.run_tracking import SCORED_MODEL
    from mlre.track.registry import load_hashed_model, load_model

    sha = run.data.tags.get("mlre.scored_model_sha256")
    if sha:
        return load_hashed_model(run.info.run_id, SCORED_MODEL, sha)
    uri = run_model_uri(run)
    return load_model(uri).model if uri else None


def looks_like_run_id(name: str) -> bool:
    """An MLflow run id (32 hexadecimal characters), not a family or a file."""
    return len(name) == RUN_ID_LENGTH and all(c in "0123456789abcdef" for c in name.lower())
