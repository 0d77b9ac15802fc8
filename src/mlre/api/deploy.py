"""Serving and releases: ``mlre serve``, ``promote``, ``rollback``, ``deployments`` and
``audit-log verify``."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlre.errors import InputError
from mlre.spec import DeployPolicy, load_spec

if TYPE_CHECKING:
    from mlre.serve.service import ServeConfig
    from mlre.track.audit_log import Verification

log = logging.getLogger(__name__)

API_KEY_ENV = "MLRE_API_KEY"


def _policy(spec: str | Path | None) -> DeployPolicy:
    return load_spec(spec).deploy


#: The name of a key given alone (one line in the file, or ``MLRE_API_KEY``).
ONE_KEY = "api-key"


def api_keys(key_file: str | Path | None = None) -> dict[str, str]:
    """The service's API keys by name (the audit log names whoever acts by their key's name).

    ``key_file`` holds one key alone on its first line, or ``name: key`` lines (blank lines
    and ``#`` comments skipped); without a file, ``MLRE_API_KEY`` is the one key."""
    keys: dict[str, str] = {}
    if key_file is not None:
        path = Path(key_file)
        try:
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines()]
        except (OSError, UnicodeDecodeError):
            raise InputError(f"cannot read API keys from {path}", hint=KEYS_HINT) from None
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        if len(lines) == 1 and ":" not in lines[0]:
            keys[ONE_KEY] = lines[0]
        for line in lines if ONE_KEY not in keys else []:
            name, sep, key = (part.strip() for part in line.partition(":"))
            if not sep or not name or not key:
                raise InputError(f"{path}: a line is not 'name: key'", hint=KEYS_HINT)
            if name in keys:
                raise InputError(f"{path}: the key name {name!r} is given twice", hint=KEYS_HINT)
            keys[name] = key
        if not keys:
            raise InputError(f"{path} holds no API key", hint=KEYS_HINT)
    elif os.environ.get(API_KEY_ENV, "").strip():
        keys[ONE_KEY] = os.environ[API_KEY_ENV].strip()
    for name, key in keys.items():
        if len(key) < 16:
            raise InputError(
                f"the API key {name!r} is shorter than 16 characters",
                hint="use a long random key, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
            )
    if len(set(keys.values())) != len(keys):
        raise InputError("two API key names share one key: the audit log could not tell them apart")
    return keys


KEYS_HINT = "one key alone on a line, or one 'name: key' line per person or system"


def service_config(
    model: str,
    *,
    spec: str | Path | None = None,
    key_file: str | Path | None = None,
    max_body_bytes: int = 2 * 1024 * 1024,
    max_rows: int = 10_000,
    poll_seconds: float = 2.0,
    prediction_log: str | Path | None = None,
    log_sample: float = 1.0,
    log_inputs: bool = True,
    retention_days: float | None = None,
    require_key_for_predict: bool = False,
) -> ServeConfig:
    """A checked ``ServeConfig`` for ``model``."""
    from mlre.serve.service import ServeConfig

    if max_body_bytes <= 0 or max_rows <= 0 or poll_seconds <= 0:
        raise InputError("body size, rows per request and poll interval must be positive")
    if not 0.0 <= log_sample <= 1.0:
        raise InputError(f"--log-sample must be between 0 and 1, not {log_sample}")
    keys = api_keys(key_file)
    if require_key_for_predict and not keys:
        raise InputError(
            "--require-key-for-predict needs an API key (--api-key-file or MLRE_API_KEY)"
        )
    return ServeConfig(
        model=model,
        api_keys=keys,
        require_key_for_predict=require_key_for_predict,
        max_body_bytes=max_body_bytes,
        max_rows=max_rows,
        poll_seconds=poll_seconds,
        prediction_log=Path(prediction_log) if prediction_log else None,
        log_sample=log_sample,
        log_inputs=log_inputs,
        retention_days=retention_days,
        deploy=_policy(spec),
    )


def serve_model(config: Any, *, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve ``config.model`` over HTTP until interrupted."""
    import uvicorn

    from mlre.serve.app import create_app
    from mlre.serve.service import Service
    from mlre.track.releases import read_release

    release = read_release(config.model)  # a clear error now, not a 503 later
    if release.serving is None:
        raise InputError(
            f"{config.model!r} has no champion or candidate version to serve",
            hint="`mlre run` registers a candidate",
        )
    app = create_app(Service(config), freeze=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def promote(
    name: str,
    version: str | int,
    mode: str,
    *,
    share: float = 0.0,
    reason: str = "",
    spec: str | Path | None = None,
    prediction_log: str | Path | None = None,
) -> Any:
    """Start a shadow or canary trial of ``version``, or make it champion if the gate passes."""
    from mlre.serve.gate import promote as do_promote
    from mlre.serve.predlog import PredictionLog

    return do_promote(
        name,
        str(version),
        mode,
        share=share,
        reason=reason,
        policy=_policy(spec),
        predictions=PredictionLog(prediction_log) if mode == "full" else None,
    )


@dataclass
class RollbackResult:
    """What a rollback changed."""

    model: str
    action: str  # challenger_removed | champion_restored
    versions: dict[str, Any]
    audit_seq: int


def rollback(name: str, *, reason: str = "") -> RollbackResult:
    """End the challenger's trial, or, with none on trial, restore the previous champion."""
    from mlre.track.releases import read_release, restore_champion
    from mlre.track.releases import rollback as end_trial

    why = reason or "by hand"
    release = read_release(name)
    if release.challenger is not None:
        record = end_trial(name, reason=why)
        assert record is not None
        return RollbackResult(name, "challenger_removed", record.versions, record.seq)
    record = restore_champion(name, reason=why)
    if record is None:
        raise InputError(
            f"{name!r} has nothing to roll back: no challenger on trial and no earlier champion",
            hint=f"`mlre deployments {name}` shows the history",
        )
    return RollbackResult(name, "champion_restored", record.versions, record.seq)


def deployments(name: str) -> dict[str, Any]:
    """Who serves what now, and the history of release actions (newest last)."""
    from mlre.track.audit_log import AuditLog
    from mlre.track.releases import out_of_band, read_release

    release = read_release(name)
    log = AuditLog()
    history = [r.to_dict() for r in log.records(name)]
    return {
        "release": release.to_dict(),
        "history": history,
        "out_of_band": out_of_band(release, log),
    }


def verify_audit_log(path: str | Path | None = None) -> Verification:
    """Check the audit log's hash chain, and its newest records against the registry's copies."""
    from mlre.track.audit_log import AuditLog, Verification, default_path
    from mlre.track.releases import anchors

    pinned = anchors()
    file = Path(path) if path is not None else default_path()
    if not file.exists():
        if pinned:
            return Verification(
                False, 0, f"the audit log {file} is missing, but the registry records actions"
            )
        return Verification(True, 0)
    log = AuditLog(file)
    result = log.verify(pinned)
    if not result.ok:
        return result
    from mlre.track.releases import out_of_band, read_release

    for model in sorted(pinned):
        moved = out_of_band(read_release(model), log)
        if moved:
            role, version = next(iter(moved.items()))
            return Verification(
                False,
                result.records,
                f"{model!r}: the {role} alias names version {version}, which no release action "
                "in the log put there (moved outside mlre's release commands)",
                unkeyed=result.unkeyed,
            )
    return result


def export_predictions(
    output: str | Path,
    *,
    model: str | None = None,
    version: str | None = None,
    path: str | Path | None = None,
) -> int:
    """Write the prediction log (inputs, outputs, latency, labels) to Parquet; how many rows."""
    from mlre.serve.predlog import PredictionLog, default_path

    file = Path(path) if path is not None else default_path()
    if not file.is_file():
        raise InputError(f"no prediction log at {file}", hint="`mlre serve` writes one")
    log_ = PredictionLog(file)
    out = log_.export_parquet(output, model=model, version=version)
    import pyarrow.parquet as pq

    return pq.ParquetFile(out).metadata.num_rows
