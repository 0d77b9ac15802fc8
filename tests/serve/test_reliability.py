"""`mlre serve` as users run it, in a child process: killed with SIGKILL under load and restarted,
nothing it kept is damaged; the release commands and `mlre audit-log verify` from the CLI."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlre.cli import app
from mlre.serve.predlog import PredictionLog
from mlre.track.audit_log import AuditLog
from mlre.track.releases import read_release
from serve_helpers import NAME, children, records, registry_in, start_cli_server

runner = CliRunner()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory):
    with registry_in(tmp_path_factory.mktemp("reliability")) as registry:
        yield registry


def _cli(*args: str):
    return runner.invoke(app, list(args))


def test_release_commands_and_a_kill_under_load_leave_everything_consistent(registry):
    folder = registry.folder
    first = _cli("promote", NAME, "--version", "1", "--full", "--reason", "first")
    assert first.exit_code == 0, first.output
    assert "champion" in first.output
    proc, url = start_cli_server(folder)
    stop = threading.Event()
    answered, failures = [], []

    def load(k: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                r = httpx.post(
                    f"{url}/predict", json=records(registry.rows, (k * 97 + i) % 900), timeout=5
                )
                (answered if r.status_code == 200 else failures).append(r.status_code)
            except httpx.HTTPError:
                if not stop.is_set():
                    failures.append("connection")
            i += 1

    workers = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)
        shadow = _cli("promote", NAME, "--version", "4", "--shadow", "--reason", "try it")
        assert shadow.exit_code == 0, shadow.output
        time.sleep(1.5)  # the service follows the alias and mirrors traffic
        workers_of_server = children(proc.pid)
        assert workers_of_server, "the shadow runs in a worker process"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=10)
    assert answered and not [f for f in failures if f != "connection"], failures
    for pid in workers_of_server:  # the shadow worker can outlive a SIGKILLed server: clean up
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # the files it was writing are intact and readable
    for db in ("mlre-predictions.db", "mlre-audit.db"):
        with sqlite3.connect(folder / db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    logged = PredictionLog(folder / "mlre-predictions.db").frame(NAME)
    assert len(logged) > 0 and set(logged["version"]) <= {"1", "4"}
    release = read_release(NAME)
    assert (release.champion, release.challenger, release.mode) == ("1", "4", "shadow")
    verified = _cli("audit-log", "verify")
    assert verified.exit_code == 0 and "intact" in verified.output, verified.output
    # restarted, it serves the same roles again
    proc, url = start_cli_server(folder)
    try:
        meta = httpx.get(f"{url}/v2/models/{NAME}").json()
        assert meta["parameters"]["roles"]["champion"] == "1"
        assert meta["parameters"]["roles"]["challenger"] == "4"
        assert httpx.post(f"{url}/predict", json=records(registry.rows, 0)).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    exported = _cli("prediction-log", "export", str(folder / "log.parquet"), "--model", NAME)
    assert exported.exit_code == 0 and "logged prediction(s)" in exported.output
    import pandas as pd

    table = pd.read_parquet(folder / "log.parquet")
    assert len(table) >= len(logged) and {"request_id", "version", "role", "inputs"} <= set(table)
    shown = _cli("deployments", NAME)
    assert shown.exit_code == 0 and "champion v1" in shown.output and "shadow" in shown.output
    back = _cli("rollback", NAME, "--reason", "enough")
    assert back.exit_code == 0 and "rolled back" in back.output
    assert read_release(NAME).challenger is None


def test_audit_log_verify_fails_on_an_edit_or_a_removed_newest_record(registry):
    folder = registry.folder
    log = AuditLog(folder / "mlre-audit.db")
    if len(log.records()) < 2:
        _cli("promote", NAME, "--version", "4", "--shadow")
        _cli("rollback", NAME)
    actor = log.records()[0].actor

    def tamper(statement: str, *args: str) -> None:
        with closing(sqlite3.connect(log.path)) as db, db:
            db.execute(statement, args)

    tamper("UPDATE audit SET actor = 'someone else' WHERE seq = 1")
    edited = _cli("audit-log", "verify")
    assert edited.exit_code == 1 and "record 1 was altered" in edited.output
    tamper("UPDATE audit SET actor = ? WHERE seq = 1", actor)
    assert _cli("audit-log", "verify").exit_code == 0
    tamper("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)")
    cut = _cli("audit-log", "verify")
    assert cut.exit_code == 1 and "no longer has" in cut.output


def test_bad_release_commands_are_clear_errors_that_change_nothing(registry):
    before = read_release(NAME)
    cases = [
        (("promote", NAME, "--version", "99", "--shadow"), "no version 99"),
        (("promote", "nobody", "--version", "1", "--shadow"), "no registered model"),
        (("promote", NAME, "--version", "4", "--canary", "150"), "between 0 and 100%"),
        (("promote", NAME, "--version", "4"), "choose one of"),
        (("promote", NAME, "--version", "4", "--full"), "cannot become champion"),
    ]
    for args, message in cases:
        result = _cli(*args)
        assert result.exit_code in (1, 2) and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert read_release(NAME) == before


def _settled() -> None:
    """A release action and its undoing, so that the registry pins the log's newest record
    again (a test before may have cut the log), with version 1 champion."""
    if read_release(NAME).champion is None:
        assert _cli("promote", NAME, "--version", "1", "--full").exit_code == 0
    assert _cli("promote", NAME, "--version", "4", "--shadow").exit_code == 0
    assert _cli("rollback", NAME, "--reason", "test set-up").exit_code == 0
    assert _cli("audit-log", "verify").exit_code == 0


def test_an_alias_moved_outside_the_release_commands_is_not_served(registry):
    from mlre.serve.service import ServeConfig, Service
    from mlre.track.store import store_client

    _settled()
    champion = read_release(NAME).champion
    store_client().set_registered_model_alias(NAME, "champion", "5")  # behind mlre's back
    try:
        shown = _cli("deployments", NAME)
        assert "champion alias names v5, which no release action put there" in shown.output
        verified = _cli("audit-log", "verify")
        assert (
            verified.exit_code == 1 and "moved outside mlre's release commands" in verified.output
        )
        service = Service(ServeConfig(model=NAME)).start()
        try:
            assert service.state.champion.version == champion  # what the audit log stands for
            assert "outside mlre's release commands" in service.problems["5"]
        finally:
            service.stop()
    finally:
        store_client().set_registered_model_alias(NAME, "champion", champion)
    assert _cli("audit-log", "verify").exit_code == 0


CRASH_BETWEEN_RECORD_AND_ALIAS = """
import os, signal
import mlre.track.releases as releases
def crash(*args, **kwargs):  # the process dies right after the audit record is written
    os.kill(os.getpid(), signal.SIGKILL)
releases.apply_target = crash
releases.start_trial("credit", "4", "shadow", reason="about to crash")
"""


def test_a_release_action_killed_halfway_is_named_and_finished_on_the_next_start(registry):
    import subprocess
    import sys

    from mlre.serve.service import ServeConfig, Service

    _settled()
    before = read_release(NAME)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src")])}
    env.pop("MLFLOW_TRACKING_URI", None)
    killed = subprocess.run([sys.executable, "-c", CRASH_BETWEEN_RECORD_AND_ALIAS],
                            cwd=registry.folder, env=env, capture_output=True)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    newest = AuditLog().records(NAME)[-1]
    assert newest.action == "shadow" and newest.versions["challenger"] == "4"
    assert read_release(NAME).challenger == before.challenger  # the registry never heard of it
    verified = _cli("audit-log", "verify")
    assert (
        verified.exit_code == 1 and f"record {newest.seq} on 'credit' is newer" in verified.output
    )
    # the service, started, finishes the action its record describes
    service = Service(ServeConfig(model=NAME)).start()
    try:
        after = read_release(NAME)
        assert (after.challenger, after.mode) == ("4", "shadow")
        assert service.state.challenger is not None and service.state.challenger.version == "4"
    finally:
        service.stop()
    assert _cli("audit-log", "verify").exit_code == 0
    assert _cli("rollback", NAME, "--reason", "test clean-up").exit_code == 0
