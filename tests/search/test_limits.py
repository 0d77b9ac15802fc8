"""Constraints that bind: the served model's latency per row and its size are measured, the
ensemble keeps only what fits, and a run where nothing fits fails naming the best it found."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from typer.testing import CliRunner

from helpers import data_file
from mlre.cli import app
from mlre.search.limits import model_latency_ms, model_size_mb
from mlre.track.registry import load_model

runner = CliRunner()
GERMAN = data_file("german_credit")


def run(folder: Path, *options: str):
    return runner.invoke(app, ["run", str(GERMAN), "--target", "credit", "--time-budget", "12",
                               "--no-report", *options])  # fmt: skip


def test_the_served_model_is_within_its_limits(store: Path):
    (store / "mlre.yaml").write_text("constraints:\n  max_latency_ms: 200\n  max_model_mb: 40\n")
    done = run(store, "--json")
    assert done.exit_code == 0, done.output
    payload = json.loads(done.stdout)
    served = payload["summary"]["scheme"]["served"]
    assert served["latency_ms_p50"] <= 200 and served["size_mb"] <= 40
    # the leaderboard shows what each candidate the selection weighed would cost once served
    measured = [r for r in payload["leaderboard"] if "latency_ms" in r]
    assert measured and all(r["size_mb"] > 0 for r in measured)
    # what the run measured is what was registered
    model = load_model(payload["summary"]["model_uri"]).model
    assert abs(model_size_mb(model) - served["size_mb"]) < 0.05 * served["size_mb"] + 0.01
    assert model_latency_ms(model, pd.read_csv(GERMAN).drop(columns=["credit"]).head(20)) > 0


def test_a_limit_no_candidate_meets_fails_and_registers_nothing(store: Path):
    (store / "mlre.yaml").write_text("constraints:\n  max_model_mb: 0.00001\n")
    done = run(store)
    assert done.exit_code == 1, done.output
    text = " ".join(done.output.split())
    assert "no candidate model fits the constraints" in text
    assert "the smallest" in text and "MB against max_model_mb 1e-05" in text
    assert "Traceback" not in done.output
    client = MlflowClient(f"sqlite:///{store / 'mlruns.db'}")
    assert not client.search_registered_models()
