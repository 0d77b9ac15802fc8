"""`mlre run`, `mlre predict`, the leaderboard and AutoModel, end to end on real data."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from typer.testing import CliRunner

import mlre
from helpers import data_file, dataset, tracked_credit_run
from mlre.cli import app
from mlre.errors import GateError, InputError, SpecError
from mlre.track.store import store_client, tracking_uri

GERMAN = data_file("german_credit")
QUICK = ["lightgbm", "linear"]


@pytest.fixture(scope="module")
def credit_run(tmp_path_factory: pytest.TempPathFactory):
    """One tracked run on german_credit, shared by the tests that read what it left behind."""
    yield from tracked_credit_run(tmp_path_factory.mktemp("store"), time_budget=25, families=QUICK)


def test_a_run_is_honest_tracked_and_registered(credit_run):
    _, result = credit_run
    assert result.task == "binary" and result.metric == "roc_auc"
    assert result.scheme["holdout_rows"] == 200 and result.scheme["holdout"] == "stratified"
    assert result.holdout_score > 0.7 > result.baseline["roc_auc"]
    assert {"log_loss", "accuracy", "f1"} <= set(result.holdout)
    assert result.leaderboard and result.leaderboard[0]["status"] == "ok"
    assert sum(m["weight"] for m in result.ensemble) == pytest.approx(1, abs=1e-3)

    client = store_client()
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED" and parent.data.tags["mlre.kind"] == "run"
    assert parent.data.metrics["holdout_roc_auc"] == pytest.approx(result.holdout_score)
    # where the search expected its holdout score, given the noise of 800 and 200 rows
    low, high = result.search_interval
    assert low < result.search_score < high and 0.02 < high - low < 0.3
    assert parent.data.metrics["search_roc_auc_low"] == pytest.approx(low)
    assert result.summary()["search_interval"] == [low, high]
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert len(children) == len(result.leaderboard)
    assert {c.data.tags["mlre.family"] for c in children} <= set(QUICK)
    version = client.get_model_version_by_alias("credit", "candidate")
    assert str(version.version) == result.model_version
    assert version.tags["mlre.model_sha256"] == result.model_sha256


def test_pyfunc_predicts_exactly_what_mlre_predict_does(credit_run, monkeypatch):
    folder, _ = credit_run
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri())
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", tracking_uri())
    rows = dataset("german_credit", rows=60, seed=4).drop(columns=["credit"])
    path = folder / "rows.csv"
    rows.to_csv(path, index=False)
    ours = mlre.predict("models:/credit@candidate", path, output=folder / "preds.csv").frame
    pyfunc = mlflow.pyfunc.load_model("models:/credit@candidate")
    theirs = pyfunc.predict(pd.read_csv(path))
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True))
    written = pd.read_csv(folder / "preds.csv")
    assert list(written.columns) == ["prediction", "proba_1", "proba_2"]
    assert np.allclose(written[["proba_1", "proba_2"]].sum(axis=1), 1)


def test_leaderboard_and_runs_read_the_store(credit_run):
    _, result = credit_run
    run_id, rows = mlre.leaderboard()
    assert run_id == result.run_id and rows == json.loads(json.dumps(result.leaderboard))
    listed = mlre.runs()
    assert listed[0]["run_id"] == result.run_id and listed[0]["model"] == "models:/credit@candidate"


def test_predict_refuses_missing_columns_and_wrong_types(credit_run):
    folder, _ = credit_run
    rows = dataset("german_credit", rows=20, seed=5)
    rows.drop(columns=["month"]).to_csv(folder / "nomonth.csv", index=False)
    with pytest.raises(InputError, match="'month' is missing"):
        mlre.predict("models:/credit@candidate", folder / "nomonth.csv")
    bad = rows.astype({"month": object})
    bad.loc[bad.index[2], "month"] = "twelve"
    bad.to_csv(folder / "badtype.csv", index=False)
    with pytest.raises(InputError, match="'month' expects numbers but got 'twelve'"):
        mlre.predict("models:/credit@candidate", folder / "badtype.csv")
    extra = rows.assign(note="x", purpose="A4999")
    extra.to_csv(folder / "extra.csv", index=False)
    done = mlre.predict("models:/credit@candidate", folder / "extra.csv")
    assert len(done.frame) == 20
    assert any("'note'" in w for w in done.warnings)
    assert any("never seen" in w and "A4999" in w for w in done.warnings)


def test_explanations_add_up_to_what_the_model_predicts(credit_run):
    folder, _ = credit_run
    rows = dataset("german_credit", rows=4, seed=6).drop(columns=["credit"])
    rows.to_csv(folder / "explain.csv", index=False)
    done = mlre.explain_predictions("models:/credit@candidate", folder / "explain.csv", rows=3)
    assert len(done.rows) == 3 and done.total_rows == 4
    predicted = mlre.predict("models:/credit@candidate", folder / "explain.csv").frame
    for r in done.rows:
        assert r.output == "P(2)"
        assert r.value == pytest.approx(predicted.loc[r.row, "proba_2"])
        # Shapley values are additive: base value plus contributions is the prediction
        total = r.base_value + sum(c["contribution"] for c in r.contributions)
        assert total == pytest.approx(r.value, abs=1e-6)
        sizes = [abs(c["contribution"]) for c in r.contributions]
        assert sizes == sorted(sizes, reverse=True)
        assert {c["feature"] for c in r.contributions} == set(rows.columns)
        short = r.to_dict(top=2)
        assert len(short["contributions"]) == 2
        assert short["other_columns"] == pytest.approx(
            sum(c["contribution"] for c in r.contributions[2:])
        )


def test_cli_explain_and_its_bad_input(credit_run):
    folder, _ = credit_run
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "explain",
            "models:/credit@candidate",
            str(folder / "explain.csv"),
            "--top",
            "3",
            "--rows",
            "2",
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    payload = json.loads(done.stdout)
    assert payload["explained_rows"] == 2 and payload["total_rows"] == 4
    assert all(len(r["contributions"]) == 3 for r in payload["rows"])
    shown = runner.invoke(
        app, ["explain", "models:/credit@candidate", str(folder / "explain.csv"), "--rows", "1"]
    )
    assert shown.exit_code == 0 and "other columns" in shown.stdout
    missing = runner.invoke(
        app, ["explain", "models:/credit@candidate", str(folder / "nomonth.csv")]
    )
    assert missing.exit_code == 2 and "'month' is missing" in missing.output
    assert "Traceback" not in missing.output
    with pytest.raises(InputError, match="at least 1"):
        mlre.explain_predictions("models:/credit@candidate", folder / "explain.csv", rows=0)


def test_a_tampered_model_is_refused(credit_run):
    folder, _ = credit_run
    # the embedded store keeps artifacts under ./mlruns: alter one byte of the stored model
    stored = list((folder / "mlruns").rglob("model.joblib"))
    assert stored
    for path in stored:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.raises(mlre.MlreError, match="does not match the hash"):
        mlre.predict("models:/credit@candidate", GERMAN)
    result_cli = CliRunner().invoke(app, ["predict", "models:/credit@candidate", str(GERMAN)])
    assert result_cli.exit_code == 2 and "refusing to load" in result_cli.output
    with pytest.raises(mlre.MlreError, match="does not match the hash"):
        mlre.explain_predictions("models:/credit@candidate", GERMAN, rows=1)


def test_regression_and_multiclass_runs(store: Path):
    diamonds = dataset("diamonds", rows=3000)
    reg = mlre.run(
        diamonds, target="price", time_budget=15, families=QUICK, track=False, metric="mae"
    )
    assert reg.task == "regression" and reg.holdout["mae"] < reg.baseline["mae"] / 3
    hpc = dataset("hpc_jobs")
    multi = mlre.run(hpc, target="class", time_budget=15, families=QUICK, track=False)
    assert multi.metric == "log_loss" and multi.holdout["log_loss"] < multi.baseline["log_loss"]
    proba = multi.model.predict_proba(hpc.drop(columns=["class"]).head(7))
    assert proba.shape == (7, 4) and np.allclose(proba.sum(axis=1), 1)
    assert set(multi.model.classes_) == set(hpc["class"])


def test_a_given_test_table_is_the_holdout(store: Path):
    df = dataset("german_credit")
    train, test = store / "train.parquet", store / "test.parquet"
    df.iloc[:800].to_parquet(train)
    df.iloc[800:].to_parquet(test)
    result = mlre.run(
        train, target="credit", test=test, time_budget=12, families=["linear"], track=False
    )
    assert (
        result.scheme["holdout"] == "the given test table" and result.scheme["holdout_rows"] == 200
    )


def test_same_seed_same_scores(store: Path):
    df = dataset("german_credit")
    first = mlre.run(df, target="credit", time_budget=10, families=["linear"], track=False, seed=3)
    second = mlre.run(df, target="credit", time_budget=10, families=["linear"], track=False, seed=3)
    # how many trials fit in the budget depends on the machine's speed at the time; every trial
    # both runs made must have had the same configuration and the same fold scores
    one = {r["trial"]: r for r in first.leaderboard}
    two = {r["trial"]: r for r in second.leaderboard}
    common = sorted(set(one) & set(two))
    assert common and common[0] == 0
    for t in common:
        if one[t]["phase"] != two[t]["phase"]:
            # the clock also decides when tuning gives way to the last steps (convergence of
            # the leading model, a second layer): from there on the runs fit different things
            assert {one[t]["phase"], two[t]["phase"]} & {"converging", "stacking"}
            break
        assert one[t]["params"] == two[t]["params"]
        if one[t]["status"] != two[t]["status"]:
            # only the clock may tell the runs apart: a trial cut at its deadline in one run
            # (a pause of the machine) teaches the sampler something else from there on
            assert "cut" in {one[t]["status"], two[t]["status"]}, (one[t], two[t])
            break
        # a trial cut at the deadline holds the folds that finished in time
        if one[t]["status"] == "ok":
            assert one[t]["fold_scores"] == two[t]["fold_scores"]
    else:  # the same trials with the same results: the same model
        if len(one) == len(two):
            assert first.holdout == second.holdout


def test_automodel_is_a_scikit_learn_estimator():
    df = dataset("german_credit")
    X, y = df.drop(columns=["credit"]), df["credit"]
    model = mlre.AutoModel(time_budget=12, families=["linear"])
    assert clone(model).get_params()["time_budget"] == 12
    model.fit(X, y)
    proba = model.predict_proba(X.head(5))
    assert proba.shape == (5, 2) and list(model.classes_) == [1, 2]
    assert set(model.predict(X.head(50))) <= {1, 2}
    assert model.result_.holdout_score > 0.6


def test_the_audit_gates_the_run(store: Path):
    df = dataset("german_credit")
    df["decision"] = df["credit"] * 7
    with pytest.raises(GateError, match="audit found"):
        mlre.run(df, target="credit", time_budget=10, track=False)
    forced = mlre.run(
        df, target="credit", time_budget=10, track=False, force=True, families=["linear"]
    )
    assert forced.findings.has_errors


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"time_budget": 0}, SpecError, "time_budget"),
        ({"time_budget": -5}, SpecError, "time_budget"),
        ({"time_budget": 10**9}, SpecError, "time_budget"),
        ({"metric": "auroc"}, SpecError, "unknown metric"),
        ({"metric": "rmse"}, SpecError, "does not fit"),
    ],
)
def test_bad_run_options(store: Path, kwargs, error, words):
    with pytest.raises(error, match=words):
        mlre.run(GERMAN, target="credit", track=False, **({"time_budget": 10} | kwargs))


def test_labels_the_training_part_never_saw(store: Path):
    df = dataset("german_credit")
    train, test = df.iloc[:800].copy(), df.iloc[800:].copy()
    test.loc[test.index[:3], "credit"] = 3
    with pytest.raises(InputError, match="never seen in training"):
        mlre.run(train, target="credit", test=test, time_budget=10, track=False)
    one_class = df.assign(credit=np.where(np.arange(len(df)) < 999, 1, 2))
    with pytest.raises(InputError, match=r"single class|single (labelled )?row|two classes"):
        mlre.run(one_class, target="credit", time_budget=10, track=False, force=True)


def test_cli_run_json_and_leaderboard(store: Path):
    runner = CliRunner()
    # a budget a busy machine still fits a search and a refit in
    done = runner.invoke(app, ["run", str(GERMAN), "--target", "credit", "--time-budget", "25",
                               "--family", "linear", "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    payload = json.loads(done.stdout)
    assert payload["summary"]["model_uri"] == "models:/credit@candidate"
    assert payload["summary"]["refit"]["rows"] == 1000
    kept = runner.invoke(app, ["run", str(GERMAN), "--target", "credit", "--time-budget", "8",
                               "--family", "linear", "--json", "--no-refit"])  # fmt: skip
    assert kept.exit_code == 0 and json.loads(kept.stdout)["summary"]["refit"] is None
    board = runner.invoke(app, ["leaderboard"])
    assert board.exit_code == 0 and "linear" in board.stdout
    listed = runner.invoke(app, ["runs"])
    assert listed.exit_code == 0 and "run" in listed.stdout
    bad = runner.invoke(app, ["run", str(GERMAN), "--target", "credit", "--time-budget", "0"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_the_registered_model_is_the_recipe_refitted_on_every_labelled_row(store: Path):
    from mlre.models.families import FAMILIES

    df = dataset("german_credit")
    result = mlre.run(df, target="credit", time_budget=15, families=["lightgbm", "linear"],
                      track=False, report=False)  # fmt: skip
    refit, scored = result.refit, result.scored_model
    assert refit is not None and refit["rows"] == 1000 and refit["includes_holdout"]
    assert "refitted on all 1,000 labelled" in result.scheme["model"]
    # the holdout scored fold models; the registered model has one model per member, the same
    # families and weights
    assert all(len(m.pipelines) > 1 for m in scored.members)
    assert all(len(m.pipelines) == 1 for m in result.model.members)
    assert [(m.family, m.weight) for m in result.model.members] == [
        (m.family, m.weight) for m in scored.members
    ]
    # boosted trees fit the rounds early stopping kept on the folds, grown with the rows
    for served, fold in zip(result.model.members, scored.members, strict=True):
        if served.family == "lightgbm":
            kept = np.mean([FAMILIES["lightgbm"].rounds(p.named_steps["model"])
                            for p in fold.pipelines])  # fmt: skip
            fitted = served.pipelines[0].named_steps["model"].n_estimators_
            assert kept < fitted <= 2 * kept + 1
    # a refit learnt from the holdout rows: it fits them at least as well as the scored model
    assert refit["holdout"]["roc_auc"] >= result.holdout["roc_auc"]
    # asked not to, the run registers the scored model itself
    kept = mlre.run(df, target="credit", time_budget=10, families=["linear"], track=False,
                    report=False, refit=False)  # fmt: skip
    assert kept.refit is None and kept.scored_model is None and "model" not in kept.scheme
    assert all(len(m.pipelines) > 1 for m in kept.model.members)


def test_a_regression_metric_makes_a_count_target_a_quantity(store: Path):
    # visits is a count of 0 to 9: read as classes alone, a quantity when judged by RMSE
    df = dataset("doctor_visits", rows=800)
    result = mlre.run(df, target="visits", metric="rmse", time_budget=6, families=["linear"],
                      track=False, report=False)  # fmt: skip
    assert result.task == "regression" and result.metric == "rmse"
    assert result.model.predict(df.drop(columns=["visits"]).head(5)).dtype.kind == "f"
