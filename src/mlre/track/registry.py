"""Logging the final model as an MLflow model, registering it, and loading it back safely.

The fitted ``MlreModel`` is stored with joblib beside its data contract. Its sha256 is recorded
in the model's own config and as a tag of the registered version; nothing is unpickled before the
file's hash matches the recorded one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlre.errors import InputError, MlreError, TrackingError
from mlre.track.store import store_client, tracking_uri

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
CONTRACT_FILE = "contract.json"
SHA_TAG = "mlre.model_sha256"


class TamperedModelError(MlreError):
    """A model artifact whose bytes differ from the hash recorded when it was trained."""


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_hash(path: str | Path, expected_sha256: str, actual: str | None = None) -> None:
    """Refuse (``TamperedModelError``) a model file whose sha256 is not ``expected_sha256``
    (``actual``: its hash, where the caller has it)."""
    actual = actual or sha256_file(path)
    if actual != expected_sha256:
        raise TamperedModelError(
            f"the model file {path} does not match the hash recorded at training "
            f"(recorded {expected_sha256[:12]}…, found {actual[:12]}…); refusing to load it",
            hint="the artifact was modified after training: re-register a model you trust",
        )


@contextmanager
def checked_copy(path: str | Path, expected_sha256: str) -> Iterator[Path]:
    """A private copy of ``path`` (a folder only this process's user can open), made and hashed
    in one read, refused unless its sha256 is ``expected_sha256``: what is then unpickled is
    the very bytes that were hashed, whatever happens to ``path`` in between."""
    with tempfile.TemporaryDirectory(prefix="mlre-checked-") as folder:
        copy = Path(folder) / Path(path).name
        digest = hashlib.sha256()
        with Path(path).open("rb") as src, copy.open("wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
        check_hash(path, expected_sha256, digest.hexdigest())
        yield copy


def verified_load(path: str | Path, expected_sha256: str) -> Any:
    """Unpickle the model at ``path`` only if its sha256 is ``expected_sha256`` (from the bytes
    that were hashed)."""
    import joblib

    with checked_copy(path, expected_sha256) as copy:
        return joblib.load(copy)


def _prediction_frame(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """mlre's prediction table: ``prediction`` and, for classification, ``proba_<class>``."""
    if model.task == "regression":
        return pd.DataFrame({"prediction": model.predict(X)}, index=X.index)
    proba = model.predict_proba(X)
    out = pd.DataFrame({"prediction": model.classes_[proba.argmax(axis=1)]}, index=X.index)
    for i, c in enumerate(model.classes_):
        out[f"proba_{c}"] = proba[:, i]
    return out


def predict_frame(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """Predictions of a loaded model as a table (what ``mlre predict`` writes)."""
    return _prediction_frame(model, X)


def _pyfunc_class():
    from mlflow.pyfunc import PythonModel

    class MlrePyfunc(PythonModel):
        """MLflow's view of an mlre model: hash-checked loading, mlre's prediction table."""

        def load_context(self, context) -> None:
            expected = (context.model_config or {}).get("sha256")
            if not expected:
                raise TamperedModelError("the model has no recorded hash", hint="re-register it")
            self.model = verified_load(context.artifacts["model"], expected)

        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
            return _prediction_frame(self.model, model_input)

    return MlrePyfunc


@contextmanager
def _pointed_at_store():
    """MLflow's fluent API aimed at mlre's store, and everything it changed put back afterwards.

    ``mlflow.set_tracking_uri`` also writes ``MLFLOW_TRACKING_URI`` into the environment, which
    would otherwise outlive the call and redirect later runs.
    """
    import mlflow

    # MLflow writes what it is set to into the environment, so the environment tells what the
    # user had set: nothing (then unset again) or a URI (then put it back)
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    quiet = [logging.getLogger(n) for n in ("mlflow.pyfunc", "mlflow.models", "mlflow.tracking")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield mlflow
    finally:
        for q, level in zip(quiet, levels, strict=True):
            q.setLevel(level)
        # None puts MLflow back to unset; both setters handle it though annotated as str only
        mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])  # type: ignore[arg-type]
        mlflow.set_registry_uri(env["MLFLOW_REGISTRY_URI"])  # type: ignore[arg-type]
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _fluent(run_id: str):
    with _pointed_at_store() as mlflow, mlflow.start_run(run_id=run_id):
        yield mlflow


@dataclass
class RegisteredModel:
    """Where a registered model lives."""

    name: str
    version: str
    alias: str
    uri: str
    sha256: str


def log_and_register(
    run_id: str,
    model: Any,
    input_example: pd.DataFrame,
    *,
    name: str,
    alias: str = "candidate",
    tags: dict[str, str] | None = None,
) -> RegisteredModel:
    """Log ``model`` as an MLflow model in run ``run_id``, register it under ``name``, set ``alias``."""
    import joblib
    from mlflow.models import infer_signature

    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / MODEL_FILE
        joblib.dump(model, model_path, compress=3)
        sha = sha256_file(model_path)
        contract_path = model.contract.save(Path(tmp) / CONTRACT_FILE)
        example = input_example.head(5)
        # types as in training: an integer column without missing values is declared long (MLflow
        # will not take int64 for a double column); one with missing values is float already
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signature = infer_signature(example, _prediction_frame(model, example))
        try:
            with _fluent(run_id) as mlflow:
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=_pyfunc_class()(),
                    artifacts={"model": str(model_path), "contract": str(contract_path)},
                    model_config={"sha256": sha},
                    signature=signature,
                    input_example=example,
                    pip_requirements=_requirements(),
                )
                with contextlib.redirect_stderr(io.StringIO()):  # MLflow prints its own notes
                    version = mlflow.register_model(info.model_uri, name)
        except MlreError:
            raise
        except Exception as err:
            raise TrackingError(
                f"cannot log or register the model: {str(err).splitlines()[0]}",
                hint="check the MLflow store",
            ) from None
    client = store_client()
    for key, value in ({SHA_TAG: sha} | (tags or {})).items():
        client.set_model_version_tag(name, version.version, key, str(value))
    client.set_registered_model_alias(name, alias, version.version)
    return RegisteredModel(name, str(version.version), alias, f"models:/{name}@{alias}", sha)


def log_hashed_file(run_id: str, path: str | Path, artifact_path: str) -> str:
    """Log the file at ``path`` under ``artifact_path`` of run ``run_id``; its hash, which
    :func:`load_hashed_model` checks."""
    sha = sha256_file(path)
    try:
        with _fluent(run_id) as mlflow:
            mlflow.log_artifact(str(path), artifact_path)
    except Exception as err:
        raise TrackingError(
            f"cannot log the model to {artifact_path}: {str(err).splitlines()[0]}",
            hint="check the MLflow store",
        ) from None
    return sha


def load_hashed_model(run_id: str, artifact_path: str, expected_sha256: str) -> Any:
    """The model :func:`log_hashed_file` logged (a model without its pipelines, then each
    pipeline, one pickle each), read only if its bytes hash to ``expected_sha256``."""
    import pickle

    import mlflow

    try:
        with _pointed_at_store():
            folder = Path(
                mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path)
            )
        [local] = [p for p in folder.iterdir() if p.is_file()]
    except Exception as err:
        raise InputError(
            f"run {run_id} has no {artifact_path}: {str(err).splitlines()[0]}",
            hint="the run may predate it, or its artifacts were removed",
        ) from None
    with checked_copy(local, expected_sha256) as copy, open(copy, "rb") as f:
        shell = pickle.load(f)
        return shell.from_parts([pickle.load(f) for _ in range(shell.parts_count)])


def _requirements() -> list[str]:
    from importlib import metadata

    reqs = []
    for pkg in ("mlre", "scikit-learn", "pandas", "numpy", "lightgbm", "xgboost", "catboost"):
        try:
            reqs.append(f"{pkg}=={metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            continue
    return reqs


@dataclass
class LoadedModel:
    """A model loaded from the registry or a run, with its contract and provenance."""

    model: Any
    uri: str
    sha256: str
    version: str | None = None


def load_model(uri: str) -> LoadedModel:
    """Load ``models:/name@alias``, ``models:/name/version`` or ``runs:/id/model``, hash-checked.

    For registered versions the hash is the one tagged on the version at registration.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    client = store_client()
    expected, version = None, None
    try:
        if uri.startswith("models:/"):
            rest = uri.removeprefix("models:/")
            if "@" in rest:
                name, alias = rest.split("@", 1)
                mv = client.get_model_version_by_alias(name, alias)
            else:
                name, _, number = rest.partition("/")
                mv = client.get_model_version(name, number)
            expected, version = mv.tags.get(SHA_TAG), str(mv.version)
        with _pointed_at_store():
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except MlflowException as err:
        raise InputError(
            f"no model at {uri}: {str(err).splitlines()[0]}",
            hint="list models with `mlre runs`, or check the name and alias",
        ) from None
    files = list(local.rglob(MODEL_FILE))
    if not files:
        raise InputError(f"{uri} is not an mlre model", hint="it has no model.joblib artifact")
    if expected is None and uri.startswith("models:/"):
        # a registered version without its hash tag is refused: the artifact's own record
        # of its hash could have been written with it
        raise TamperedModelError(
            f"{uri} has no {SHA_TAG} tag", hint="re-register the model with `mlre run`"
        )
    if expected is None:
        import yaml

        mlmodel = yaml.safe_load((local / "MLmodel").read_text())
        expected = (
            mlmodel.get("flavors", {}).get("python_function", {}).get("model_config") or {}
        ).get("sha256")
    if not expected:
        raise TamperedModelError(f"{uri} has no recorded hash", hint="re-register the model")
    return LoadedModel(verified_load(files[0], expected), uri, expected, version)
