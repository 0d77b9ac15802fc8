"""`mlre run --sensitive`: the fairness audit is part of the run, its report and its gate."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import mlre
from helpers import dataset
from mlre.cli import app


@pytest.fixture(scope="module")
def adult_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fair_run")
    path = folder / "adult.csv"
    dataset("adult", rows=4000, seed=2).to_csv(path, index=False)
    return folder, path


def test_a_run_naming_sensitive_columns_reports_their_groups(adult_csv, monkeypatch):
    folder, path = adult_csv
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(folder)
    result = mlre.run(
        path,
        target="income-per-year",
        time_budget=20,
        families=["lightgbm"],
        sensitive=["sex", "race"],
        exclude_sensitive=True,
        report=folder / "report.html",
    )
    assert "sex" not in result.scheme["features"] and "race" not in result.scheme["features"]
    fairness = result.fairness
    assert {g["column"] for g in fairness["groups"]} == {"sex", "race", "sex × race"}
    assert any(d["name"] == "demographic_parity_difference" for d in fairness["disparities"])
    assert any(f.check.startswith("fairness_") for f in result.findings)
    html = (folder / "report.html").read_text()
    md = (folder / "report.md").read_text()
    assert 'id="fairness"' in html and "## Fairness" in md
    assert "audited by race, sex on the holdout" in md  # the model card's ethics
    assert not any(f.severity == "error" for f in result.findings if f.check.startswith("fairness"))


def test_a_fairness_constraint_in_the_spec_is_the_runs_gate(adult_csv, monkeypatch):
    folder, path = adult_csv
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(folder)
    (folder / "mlre.yaml").write_text(
        "target: income-per-year\nsensitive: [sex]\nconstraints:\n  fairness:\n"
        "    metric: demographic_parity_difference\n    max_difference: 0.01\n"
    )
    done = CliRunner().invoke(
        app, ["run", str(path), "--time-budget", "15", "--family", "lightgbm", "--no-report"]
    )
    assert done.exit_code == 1, done.output
    assert "fairness constraint of the spec is not met" in done.output
    assert "demographic parity difference by sex" in done.output


@pytest.mark.parametrize("case", ["multiclass", "single group"])
def test_an_audit_that_cannot_be_made_is_a_finding_not_a_failed_run(case, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    if case == "multiclass":
        df, target, sensitive = dataset("hpc_jobs", rows=400), "class", "protocol"
    else:
        df, target, sensitive = dataset("german_credit", rows=400), "credit", "site"
        df["site"] = "Hamburg"
    result = mlre.run(
        df, target=target, time_budget=6, families=["linear"], sensitive=[sensitive],
        report=False, track=False,
    )  # fmt: skip
    assert result.fairness is None
    (finding,) = [f for f in result.findings if f.check == "fairness_not_audited"]
    expected = "multiclass" if case == "multiclass" else "single group"
    assert expected in finding.message
