"""``mlre causal`` and ``mlre abtest`` end to end: the observational LaLonde data against the
experimental answer, tracked in a real MLflow store, the report page, and bad input."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import data_file, dataset, meta
from mlre.cli import app
from mlre.track.store import store_client

PSID = meta("lalonde_dw_psid")


def mlre(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def psid_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("causal")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(folder)
        done = mlre(
            "causal", data_file("lalonde_dw_psid"),
            "--treatment", PSID["treatment"], "--outcome", PSID["outcome"],
            "--confounders", ",".join(PSID["covariates"]), "--estimand", "ATT",
            "-o", folder / "causal.html", "--json",
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        client = store_client()
        yield folder, json.loads(done.stdout), client


def test_doubly_robust_and_dml_recover_the_experimental_effect_from_observational_data(psid_run):
    _, result, _ = psid_run
    known = meta("lalonde_nsw_dw")["known_effect"]
    low, high = (
        known["value"] - 1.96 * known["standard_error"],
        known["value"] + 1.96 * known["standard_error"],
    )
    att = {e["method"]: e for e in result["estimates"]["ATT"]}
    for method in ("aipw", "dml"):
        assert low <= att[method]["estimate"] <= high, att[method]
    assert att["naive"]["estimate"] < -10_000
    [confounded] = [f for f in result["findings"] if f["check"] == "causal_confounding"]
    assert "confounded" in confounded["message"]
    assert result["primary"]["method"] == "aipw" and result["estimand"] == "ATT"
    refutations = {r["refutation"]: r for r in result["refutations"]}
    assert refutations["placebo treatment"]["passed"]
    assert set(refutations) == {
        "placebo treatment", "random common cause", "data subsets",
        "unobserved confounding (E-value)",
    }  # fmt: skip
    overlap = result["overlap"]["ATE"]
    assert overlap["treated_dropped"] + overlap["control_dropped"] > 1000  # PSID is far apart


def test_the_analysis_is_tracked_in_mlflow(psid_run):
    _, result, client = psid_run
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlre.kind"] == "causal" and run.data.tags["mlre.data_sha256"]
    assert run.data.params["treatment"] == PSID["treatment"]
    assert run.data.params["estimand"] == "ATT"
    aipw = next(e for e in result["estimates"]["ATT"] if e["method"] == "aipw")
    assert run.data.metrics["ATT.aipw"] == pytest.approx(aipw["estimate"])
    assert run.data.metrics["ATT.aipw.ci_low"] == pytest.approx(aipw["ci_low"])
    paths = {a.path for a in client.list_artifacts(run.info.run_id, "causal")}
    assert paths == {"causal/result.json", "causal/report.html"}


def test_the_report_shows_the_model_the_estimates_and_the_diagnostics(psid_run):
    folder, _, _ = psid_run
    page = (folder / "causal.html").read_text()
    for heading in ("The causal model", "Estimates", "Overlap and balance", "Refutations",
                    "Findings"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page
    assert "<svg" in page and "no unmeasured confounding" in page
    assert page.count("Plotly.newPlot") == 3  # estimates, propensities, balance
    assert "https://" not in page.split("<script>")[0]  # nothing fetched from the network


def test_effect_modifiers_add_the_heterogeneous_effect(store: Path):
    m = meta("lalonde_nsw_dw")
    done = mlre(
        "causal", data_file("lalonde_nsw_dw"), "--treatment", m["treatment"],
        "--outcome", m["outcome"], "--confounders", ",".join(m["covariates"]),
        "--effect-modifiers", "age,educ", "--no-refute", "--nuisance", "linear", "--no-track",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "heterogeneity: mean CATE" in done.output and "educ" in done.output
    assert "ATE of treat on re78" in done.output


def test_abtest_on_the_experiment(store: Path):
    m = meta("lalonde_nsw_dw")
    path = store / "nsw.csv"
    dataset("lalonde_nsw_dw").to_csv(path, index=False)
    done = mlre("abtest", path, "--variant", m["treatment"], "--metric", "re78",
                "--covariate", "re75", "--expected-split", "260,185", "-o", store / "ab.html")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "1,794" in done.output and "CUPED" in done.output
    assert (store / "ab.html").read_text().count("Plotly.newPlot") == 1
    mismatch = mlre("abtest", path, "--variant", m["treatment"], "--metric", "re78")
    assert mismatch.exit_code == 1 and "sample-ratio mismatch" in mismatch.output


def test_bad_input_gets_a_clear_message_and_leaves_the_store_intact(store: Path):
    m = meta("lalonde_nsw_dw")
    df = dataset("lalonde_nsw_dw")
    good = mlre("abtest", write(store, "good.csv", df), "--variant", "treat", "--metric", "re78",
                "--expected-split", "260,185")  # fmt: skip
    assert good.exit_code == 0, good.output
    db = store / "mlruns.db"
    snapshot = db.read_bytes()
    cov = ",".join(m["covariates"])
    cases = [
        (df.assign(treat=df["age"] % 4), ["--confounders", cov], ["only a binary treatment"]),
        (df.assign(treat=1), ["--confounders", cov], ["constant"]),
        (df, ["--confounders", cov + ",income"], ["'income'", "not in the table"]),
        (df.assign(re78=df["re78"].map(lambda v: "high" if v > 5000 else "low")),
         ["--confounders", cov], ["not numeric"]),
        (df.assign(sep=df["treat"] * 10.0 + df["age"] / 100), ["--confounders", "sep,age"],
         ["no overlap"]),
    ]  # fmt: skip
    for i, (frame, extra, words) in enumerate(cases):
        path = write(store, f"bad{i}.csv", frame)
        done = mlre("causal", path, "--treatment", "treat", "--outcome", "re78", *extra)
        assert done.exit_code == 2, (words, done.output)
        assert "error:" in done.output and "Traceback" not in done.output, done.output
        assert "hint:" in done.output, done.output
        for word in words:
            assert word in done.output, (word, done.output)
    assert db.read_bytes() == snapshot
    assert sqlite3.connect(db).execute("pragma integrity_check").fetchone() == ("ok",)


def write(folder: Path, name: str, frame) -> Path:
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def test_the_python_api_answers_like_the_command():
    import mlre

    m = meta("lalonde_nsw_dw")
    result = mlre.causal_effect(
        dataset("lalonde_nsw_dw"), treatment=m["treatment"], outcome=m["outcome"],
        confounders=m["covariates"], families=["linear"], refute=False, bootstrap=10,
        track=False,
    )  # fmt: skip
    assert result.primary.method == "aipw" and result.primary.covers(m["known_effect"]["value"])
    assert set(result.to_dict()["estimates"]) == {"ATE", "ATT"}
