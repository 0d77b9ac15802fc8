"""``mlre monitor`` end to end against a registered model in a real MLflow store: no alarm on
fresh data like the training data, alerts for drift, broken contracts and a model that got
worse, a label-free estimate, the webhook, the report and the record."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import dataset, tracked_credit_run
from mlre.cli import app
from mlre.track.store import store_client


def mlre(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def credit(tmp_path_factory):
    """A model of german_credit (registered as 'credit') and tables to monitor it with."""
    run = tracked_credit_run(
        tmp_path_factory.mktemp("monitor"), time_budget=20, families=["lightgbm"], report=False
    )
    folder, _ = next(run)
    df = dataset("german_credit").sample(frac=1, random_state=1).reset_index(drop=True)
    flipped = df.iloc[500:].copy()
    flipped["credit"] = np.where(flipped["credit"] == 1, 2, 1)  # the world turned over
    shifted = df.iloc[500:].copy()
    shifted["age"] = shifted["age"] + 25
    shifted["credit_amount"] = shifted["credit_amount"] * 3
    tables = {
        "reference": df.iloc[:500],
        "fresh": df.iloc[500:],
        "unlabelled": df.iloc[500:].drop(columns="credit"),
        "flipped": flipped,
        "shifted": shifted,
        "broken": df.iloc[500:].drop(columns=["age"]),
    }
    paths = {}
    for name, frame in tables.items():
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    yield folder, paths
    run.close()


def test_fresh_data_like_the_training_data_raises_no_alert(credit):
    folder, paths = credit
    done = mlre(
        "monitor",
        "--reference",
        paths["reference"],
        "--current",
        paths["fresh"],
        "--model",
        "credit",
        "--json",
        "--html",
        folder / "fresh.html",
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert not result["alert"] and result["drift"]["share_drifted"] < 0.2
    assert result["metric"] == "roc_auc" and result["windows"][0]["label"] == "all"
    window = result["windows"][0]
    assert window["low"] <= result["reference_score"]["value"] + 0.1
    run = store_client().get_run(result["run_id"])
    assert run.data.tags["mlre.kind"] == "monitor" and run.data.tags["mlre.alert"] == "false"
    assert "share_drifted" in run.data.metrics
    page = (folder / "fresh.html").read_text()
    assert "<h2>Drift by column</h2>" in page and "<h2>Performance (roc_auc)</h2>" in page


def test_drift_past_the_share_alerts_and_posts_the_webhook(credit):
    _, paths = credit
    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/alerts"
        done = mlre(
            "monitor",
            "--reference",
            paths["reference"],
            "--current",
            paths["shifted"],
            "--model",
            "credit",
            "--drift-share",
            "0.05",
            "--webhook",
            url,
            "--json",
        )
    finally:
        server.shutdown()
    assert done.exit_code == 1, done.output
    result = json.loads(done.stdout)
    assert {"age", "credit_amount"} <= set(result["drift"]["drifted"])
    assert result["webhook"]["status"] == 204
    [posted] = received
    assert posted["alert"] and "age" in posted["drift"]["drifted"]
    checks = {f["check"] for f in posted["findings"]}
    assert {"drift_dataset", "drift_column", "quality_out_of_range"} <= checks


def test_a_model_that_got_worse_on_new_labels_alerts(credit):
    _, paths = credit
    done = mlre(
        "monitor",
        "--reference",
        paths["reference"],
        "--current",
        paths["flipped"],
        "--model",
        "credit",
        "--window",
        "250",
        "--json",
        "--no-track",
    )
    assert done.exit_code == 1, done.output
    result = json.loads(done.stdout)
    assert len(result["windows"]) == 2
    worse = [f for f in result["findings"] if f["check"] == "performance_window"]
    assert worse and all(f["severity"] == "error" for f in worse)
    assert result["drift"]["share_drifted"] < 0.2  # the inputs did not move: only labels did


def test_without_labels_the_score_is_estimated(credit):
    _, paths = credit
    done = mlre(
        "monitor",
        "--reference",
        paths["reference"],
        "--current",
        paths["unlabelled"],
        "--model",
        "credit",
        "--json",
        "--no-track",
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    est = result["estimated"]["roc_auc"]
    assert est["low"] <= est["value"] <= est["high"] and est["rows"] == 500
    truth = json.loads(
        mlre(
            "monitor",
            "--reference",
            paths["reference"],
            "--current",
            paths["fresh"],
            "--model",
            "credit",
            "--json",
            "--no-track",
        ).stdout
    )["windows"][0]["value"]
    assert est["low"] - 0.05 <= truth <= est["high"] + 0.05


def test_a_broken_contract_is_an_alert_naming_the_column(credit):
    _, paths = credit
    done = mlre(
        "monitor",
        "--reference",
        paths["reference"],
        "--current",
        paths["broken"],
        "--model",
        "credit",
        "--no-track",
    )
    assert done.exit_code == 1, done.output
    assert "'age' is missing" in done.output and "ALERT" in done.output


def test_bad_input_is_a_clear_error(credit, tmp_path):
    _, paths = credit
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    for args, words in (
        (["--current", paths["fresh"], "--reference", tmp_path / "nope.csv"], "does not exist"),
        (["--current", empty, "--reference", paths["reference"]], "no data rows"),
        (
            ["--current", paths["fresh"], "--reference", paths["reference"], "--model", "nobody"],
            "nobody",
        ),
        (
            ["--current", paths["fresh"], "--reference", paths["reference"], "--drift-share", "2"],
            "drift share",
        ),
    ):
        done = mlre("monitor", *args, "--no-track")
        assert done.exit_code == 2, done.output
        assert words in done.output and "Traceback" not in done.output


def test_the_service_log_is_monitored_against_the_training_table(credit):
    """Requests through a real server are logged; some get labels by /feedback; the log's
    last day is monitored against the table the model was trained on."""
    import httpx
    from tests.serve_helpers import server_thread

    from mlre.serve.service import ServeConfig, Service

    folder, _paths = credit
    log = folder / "predictions.db"
    service = Service(ServeConfig(model="credit", api_key="k" * 32, prediction_log=log))
    rows = dataset("german_credit").sample(frac=1, random_state=1).reset_index(drop=True)
    rows = rows.iloc[500:700]
    with server_thread(service) as url, httpx.Client(base_url=url) as client:
        ids = []
        for i in range(len(rows)):
            record = rows.drop(columns="credit").iloc[i : i + 1].to_dict("records")
            r = client.post("/predict", json=record)
            assert r.status_code == 200, r.text
            ids.append(r.json()["request_id"])
        for rid, label in zip(ids[:120], rows["credit"][:120], strict=True):
            r = client.post(
                "/feedback",
                json={"request_id": rid, "label": int(label)},
                headers={"X-API-Key": "k" * 32},
            )
            assert r.status_code == 200, r.text
    done = mlre(
        "monitor",
        "--reference",
        "training",
        "--current",
        "last:1d",
        "--model",
        "credit",
        "--prediction-log",
        log,
        "--json",
        "--no-track",
    )
    assert done.exit_code in (0, 1), done.output
    result = json.loads(done.stdout)
    assert result["drift"]["prediction"] is not None
    assert {c["column"] for c in result["drift"]["columns"]} >= {"age", "purpose"}
    assert result["windows"][0]["rows"] == 120  # the labelled ones
    assert not any(f["check"].startswith("quality_") for f in result["findings"])
    wrong = mlre("monitor", "--reference", "training", "--current", "last:1d")
    assert wrong.exit_code == 2 and "needs --model" in wrong.output


def test_retrain_makes_a_better_model_the_challenger_and_never_the_champion(credit):
    """After the world turned over (every label flipped), a model retrained on fresh rows
    beats the old one on the recent rows and goes into shadow; the champion stays."""
    from mlre.track.releases import read_release

    _folder, paths = credit
    done = mlre("retrain", "credit", "--data", paths["flipped"], "--time-budget", "12", "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["comparison"]["verdict"] == "helps" and result["challenger"]
    release = read_release("credit")
    assert release.challenger == result["new_version"] and release.mode == "shadow"
    assert release.champion is None  # nothing was promoted
    assert "helps" in result["reason"] and result["holdout_rows"] == 100
    run = store_client().get_run(result["run_id"])
    assert run.data.tags["mlre.kind"] == "retrain" and run.data.tags["mlre.challenger"] == "true"
    log = mlre("deployments", "credit")
    assert "mlre retrain" in log.output or "shadow" in log.output


def test_retrain_on_unchanged_data_leaves_the_new_model_a_candidate(credit):
    from mlre.track.releases import read_release

    _, paths = credit
    before = read_release("credit").challenger
    done = mlre(
        "retrain", "models:/credit/1", "--data", paths["fresh"], "--time-budget", "12", "--json"
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["comparison"]["verdict"] != "helps" and not result["challenger"]
    assert "not made the challenger" in result["reason"]
    assert read_release("credit").challenger == before
    bad = mlre("retrain", "credit", "--data", paths["unlabelled"], "--time-budget", "12")
    assert bad.exit_code == 2 and "needs labels" in bad.output


def test_thresholds_come_from_the_spec(credit, tmp_path):
    _, paths = credit
    spec = tmp_path / "mlre.yaml"
    spec.write_text("monitor:\n  drift_share: 0.05\n")
    args = [
        "monitor",
        "--reference",
        paths["reference"],
        "--current",
        paths["shifted"],
        "--no-track",
    ]
    assert mlre(*args).exit_code == 0  # two drifted columns of twenty: under the default half
    assert mlre(*args, "--spec", spec).exit_code == 1
    spec.write_text("monitor:\n  drift_shares: 0.05\n")
    bad = mlre(*args, "--spec", spec)
    assert bad.exit_code == 2 and "drift_share" in bad.output
