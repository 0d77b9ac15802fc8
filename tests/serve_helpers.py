"""Shared pieces of the serving tests: a registry with a trained model and misbehaving versions
of it, and a real uvicorn server on a free loopback port (in a thread or a child process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

import mlre
from helpers import data_file
from mlre.models.final import MlreModel

NAME = "credit"
KEY = "test-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[1]


class BrokenModel(MlreModel):
    """A version that raises on every request, whatever its size (a shadow worker predicts the
    requests of half a second in one table). Registration predicts its input example to infer
    the signature, which must work: ``registering`` is set around it, in this process only."""

    registering = False

    def _raw(self, X: pd.DataFrame) -> Any:
        if not type(self).registering:
            raise RuntimeError("this version is broken on purpose")
        return super()._raw(X)


class SlowModel(MlreModel):
    """A version that answers right, but late."""

    delay = 0.4

    def _raw(self, X: pd.DataFrame) -> Any:
        time.sleep(self.delay)
        return super()._raw(X)


class FlippedModel(MlreModel):
    """A version whose class probabilities come out in reverse order."""

    def _raw(self, X: pd.DataFrame) -> Any:
        return super()._raw(X)[:, ::-1]


def variant(model: MlreModel, cls: type) -> MlreModel:
    """``model``'s ensemble in a misbehaving class."""
    out = cls(model.task, model.members, model.classes, model.contract, model.metric,
              model.level_one)  # fmt: skip
    out.background = getattr(model, "background", None)
    return out


@dataclass
class Registry:
    """A store folder with model ``credit``: v1 trained, v2 broken, v3 slow, v4 the same as v1,
    v5 flipped."""

    folder: Path
    rows: pd.DataFrame
    result: Any


def build_registry(folder: Path) -> Registry:
    """Train once (linear, a few seconds) and register the variants, all in ``folder``."""
    from mlre.track.registry import log_and_register

    df = pd.read_csv(data_file("german_credit"))
    result = mlre.run(df, target="credit", time_budget=8, families=["linear"], report=False)
    X = df.drop(columns=["credit"])
    tags = {"mlre.metric": result.metric, "mlre.holdout_score": f"{result.holdout_score:.6f}"}
    BrokenModel.registering = True
    try:
        for cls in (BrokenModel, SlowModel):
            log_and_register(result.run_id, variant(result.model, cls), X, name=NAME, tags=tags)
    finally:
        BrokenModel.registering = False
    log_and_register(result.run_id, result.model, X, name=NAME, tags=tags)
    log_and_register(result.run_id, variant(result.model, FlippedModel), X, name=NAME, tags=tags)
    return Registry(folder, X, result)


@contextmanager
def registry_in(folder: Path):
    """``build_registry`` in ``folder``, the tests running there with no store, audit log or
    prediction log of the environment's; yields the registry."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        for name in ("MLFLOW_TRACKING_URI", "MLRE_AUDIT_LOG", "MLRE_PREDICTION_LOG"):
            mp.delenv(name, raising=False)
        mp.chdir(folder)
        yield build_registry(folder)


def children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (Linux), leaving out zombies and
    multiprocessing's resource tracker (a helper that lives as long as its parent)."""
    import contextlib

    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) != pid or fields[0] == "Z":
            continue
        with contextlib.suppress(OSError):
            if b"resource_tracker" in (entry / "cmdline").read_bytes():
                continue
        out.append(int(entry.name))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server_thread(service: Any):
    """A real uvicorn server for ``service`` on a free loopback port; yields its base URL."""
    import uvicorn

    from mlre.serve.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _wait_ready(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not become ready")


def start_cli_server(folder: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """``mlre serve`` as a child process in ``folder`` (its store, logs), ready to answer."""
    port = free_port()
    env = os.environ | {
        "MLRE_API_KEY": KEY,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT / "src")]),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlre", "serve", "--model", NAME, "--port", str(port),
         "--poll", "0.3", *extra],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, proc=proc)
    return proc, url


def records(rows: pd.DataFrame, start: int, n: int = 1) -> list[dict[str, Any]]:
    """JSON-ready records of ``rows`` (missing values as null)."""
    part = rows.iloc[start : start + n]
    return [
        {k: (None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)) for k, v in r.items()}
        for r in part.to_dict(orient="records")
    ]
