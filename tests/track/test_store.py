"""Audits are recorded in a real MLflow SQLite store, with artifacts, and failures are FAILED."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import mlre
from helpers import data_file
from mlre.errors import TrackingError
from mlre.track import store_client, tracked_run

GERMAN = data_file("german_credit")


def test_an_audit_is_an_mlflow_run_with_its_artifacts(store: Path):
    report = mlre.audit(GERMAN, target="credit")
    assert (store / "mlruns.db").is_file() and (store / "mlruns").is_dir()
    client = store_client()
    run = client.get_run(report.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "audit"
    assert run.data.tags["mlre.data_sha256"] == hashlib.sha256(GERMAN.read_bytes()).hexdigest()
    assert run.data.tags["mlre.kind"] == "audit" and "mlre.version.pandas" in run.data.tags
    assert run.data.params["target"] == "credit" and run.data.metrics["findings_error"] == 0
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.name == "credit"
    listed = {a.path for a in client.list_artifacts(report.run_id, "audit")}
    assert listed == {
        "audit/findings.json",
        "audit/profile.json",
        "audit/contract.json",
        "audit/spec.json",
    }
    local = Path(client.download_artifacts(report.run_id, "audit/contract.json", str(store)))
    contract = mlre.DataContract.load(local)
    assert contract == report.contract
    findings = json.loads(
        Path(
            client.download_artifacts(report.run_id, "audit/findings.json", str(store))
        ).read_text()
    )
    assert findings == report.findings.to_list()
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(store / "mlruns")


def test_tracking_uri_from_the_environment(store: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'team.db'}")
    report = mlre.audit(GERMAN, target="credit", project="credit-risk")
    assert (store / "team.db").is_file() and not (store / "mlruns.db").exists()
    run = store_client().get_run(report.run_id)
    assert run.info.status == "FINISHED"


def test_a_run_that_fails_is_recorded_as_failed(store: Path):
    with pytest.raises(RuntimeError), tracked_run("demo", "audit") as run:
        run.log_params({"step": "before the failure"})
        raise RuntimeError("boom")
    client = store_client()
    [failed] = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    assert failed.info.status == "FAILED" and failed.data.params["step"] == "before the failure"


def test_an_unreachable_store_is_a_clear_error(store: Path, monkeypatch: pytest.MonkeyPatch):
    (store / "not-a-folder").write_text("a file where a folder should be")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'not-a-folder' / 'x.db'}")
    with pytest.raises(TrackingError, match="cannot record the run"):
        mlre.audit(GERMAN, target="credit")
