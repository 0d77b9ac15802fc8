"""The MLflow store: an embedded SQLite file by default, any MLflow server when configured."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from mlre.errors import TrackingError

log = logging.getLogger(__name__)

DEFAULT_DB = "mlruns.db"
DEFAULT_ARTIFACTS = "mlruns"
TRACKED_PACKAGES = ("mlre", "numpy", "pandas", "pyarrow", "scikit-learn", "lightgbm", "mlflow")


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the SQLite store ``./mlruns.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path.cwd() / DEFAULT_DB}"


def artifact_root() -> Path | None:
    """Where the embedded store keeps artifacts (``./mlruns``); None for a configured server."""
    return None if os.environ.get("MLFLOW_TRACKING_URI") else Path.cwd() / DEFAULT_ARTIFACTS


def store_client() -> Any:
    """An MLflow client on mlre's store, for runs and for the model registry alike.

    The registry URI is given explicitly: MLflow 3 otherwise resolves it from its own default
    (``./mlflow.db``), not from the tracking URI passed to the client.
    """
    from mlflow import MlflowClient

    uri = tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(client: Any, name: str) -> str:
    """The id of experiment ``name``, created (artifacts under ./mlruns/<name>) if new."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    root = artifact_root()
    location = (root / name).as_uri() if root is not None else None
    return client.create_experiment(name, artifact_location=location)


def provenance() -> dict[str, str]:
    """Versions of the packages that shape a result, the Python version and the git commit."""
    tags = {"mlre.python": platform.python_version()}
    for pkg in TRACKED_PACKAGES:
        try:
            tags[f"mlre.version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        if commit:
            tags["mlflow.source.git.commit"] = commit
    except (OSError, subprocess.SubprocessError):
        pass
    return tags


class RunHandle:
    """Logging calls for one MLflow run, without the global state of MLflow's fluent API."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        """Log parameters (values are stringified; MLflow caps them at 6,000 characters)."""
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items() if v is not None]
        if items:
            self.client.log_batch(self.run_id, params=items)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Log numeric metrics."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set tags."""
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        if items:
            self.client.log_batch(self.run_id, tags=items)

    def log_json(self, obj: Any, artifact_file: str) -> None:
        """Log a JSON-serialisable object as an artifact file."""
        self.log_text(json.dumps(obj, indent=2, default=str), artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Log text as an artifact file."""
        path = Path(artifact_file)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / path.name
            local.write_text(text, encoding="utf-8")
            self.client.log_artifact(
                self.run_id, str(local), str(path.parent) if str(path.parent) != "." else None
            )


@contextmanager
def tracked_run(
    experiment: str, run_name: str, tags: dict[str, Any] | None = None
) -> Iterator[RunHandle]:
    """An MLflow run that ends FINISHED, or FAILED (and re-raises) when the body raises."""
    try:
        client = store_client()
        exp_id = experiment_id(client, experiment)
        run = client.create_run(exp_id, run_name=run_name, tags={**provenance(), **(tags or {})})
    except Exception as err:  # MLflow raises many types for an unreachable or unwritable store
        raise TrackingError(
            f"cannot record the run in the MLflow store {tracking_uri()}: {str(err).splitlines()[0]}",
            hint="check MLFLOW_TRACKING_URI, or that the folder is writable; pass --no-track to skip",
        ) from None
    handle = RunHandle(client, run.info.run_id)
    try:
        yield handle
    except BaseException:
        client.set_terminated(run.info.run_id, status="FAILED")
        raise
    client.set_terminated(run.info.run_id, status="FINISHED")


def record(
    experiment: str,
    kind: str,
    *,
    tags: dict[str, Any],
    params: dict[str, Any],
    metrics: dict[str, float],
    document: Any,
    page: str | None,
) -> str:
    """One finished run of a command that is not a training run (causal, abtest, monitor):
    tags, parameters, metrics (undefined ones left out), the JSON document as
    ``KIND/result.json`` and the HTML page as ``KIND/report.html``. Returns the run id."""
    with tracked_run(experiment, kind, {"mlre.kind": kind}) as run:
        run.set_tags(tags)
        run.log_params(params)
        run.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
        run.log_json(document, f"{kind}/result.json")
        if page is not None:
            run.log_text(page, f"{kind}/report.html")
        return run.run_id


def log_child_run(
    parent: RunHandle,
    experiment_id: str,
    name: str,
    *,
    params: dict[str, Any],
    metrics: Mapping[str, float | None],
    tags: dict[str, Any],
    steps: dict[str, list[float]],
    status: str = "FINISHED",
) -> str:
    """A finished child run under ``parent`` (one per search trial); a metric that is None is
    not logged."""
    from mlflow.entities import Metric, Param, RunTag

    client = parent.client
    run = client.create_run(
        experiment_id,
        run_name=name,
        tags={"mlflow.parentRunId": parent.run_id, **{k: str(v) for k, v in tags.items()}},
    )
    now = int(time.time() * 1000)
    metric_items = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None]
    for key, values in steps.items():
        metric_items += [Metric(key, float(v), now, i) for i, v in enumerate(values)]
    client.log_batch(
        run.info.run_id,
        metrics=metric_items,
        params=[Param(k, str(v)[:6000]) for k, v in params.items()],
        tags=[RunTag(k, str(v)) for k, v in tags.items()],
    )
    client.set_terminated(run.info.run_id, status=status)
    return run.info.run_id


def experiment_of(handle: RunHandle) -> str:
    """The experiment id of a run."""
    return handle.client.get_run(handle.run_id).info.experiment_id


def find_runs(kind: str | None = None, max_results: int = 20) -> list[Any]:
    """The most recent mlre runs in the store, newest first (optionally of one kind)."""
    client = store_client()
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    query = f"tags.`mlre.kind` = '{kind}'" if kind else ""
    return list(
        client.search_runs(
            experiments,
            filter_string=query,
            max_results=max_results,
            order_by=["attributes.start_time DESC"],
        )
    )


def read_json_artifact(run_id: str, path: str) -> Any:
    """Read a JSON artifact of a run."""
    client = store_client()
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, path, tmp)
        return json.loads(Path(local).read_text(encoding="utf-8"))
