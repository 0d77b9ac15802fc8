"""`mlre mitigate`: the accuracy a smaller disparity costs, on rows no option was tuned on."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import mlre
from helpers import dataset
from mlre.api.fairness import mitigate
from mlre.cli import app
from mlre.errors import InputError


@pytest.fixture(scope="module")
def adult_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mitigate")
    path = folder / "adult.csv"
    dataset("adult", rows=3000, seed=3).to_csv(path, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(folder)
        run = mlre.run(
            path, target="income-per-year", time_budget=15, families=["lightgbm"], report=False
        )
        yield folder, run


def test_thresholds_and_reweighting_narrow_the_gap(adult_run, monkeypatch):
    folder, run = adult_run
    monkeypatch.chdir(folder)
    result = mitigate(run.run_id, sensitive="sex", constraint="demographic_parity")
    by = {o.kind: o for o in result.options}
    base, post = by["unmitigated"], by["post-processing"]
    assert base.demographic_parity_difference > 0.1  # adult's models favour men
    assert post.demographic_parity_difference < base.demographic_parity_difference / 2
    assert post.needs_sensitive and not base.needs_sensitive
    reduced = [o for o in result.options if o.kind == "reduction"]
    assert len(reduced) == 3
    assert (
        min(o.demographic_parity_difference for o in reduced) < base.demographic_parity_difference
    )
    assert result.front and "unmitigated" in [o.name for o in result.options]
    assert result.run_id_recorded is not None


def test_the_command_prints_the_tradeoff(adult_run, monkeypatch):
    folder, run = adult_run
    monkeypatch.chdir(folder)
    done = CliRunner().invoke(
        app,
        ["mitigate", run.run_id, "--sensitive", "sex", "--constraint", "equalized_odds",
         "--no-reductions", "--no-track", "--json", "-o", "tradeoff.html"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    options = json.loads(done.output)["options"]
    assert [o["kind"] for o in options] == ["unmitigated", "post-processing"]
    page = (folder / "tradeoff.html").read_text()
    assert "thresholds per group" in page and "Plotly.newPlot" in page and "<script src" not in page


def test_what_is_offered_for_other_tasks_and_bad_constraints(adult_run, monkeypatch, tmp_path):
    folder, run = adult_run
    monkeypatch.chdir(folder)
    with pytest.raises(InputError, match="unknown constraint"):
        mitigate(run.run_id, sensitive="sex", constraint="parity")
    with pytest.raises(InputError, match="not in the run's data"):
        mitigate(run.run_id, sensitive="gender")
    monkeypatch.chdir(tmp_path)
    df = dataset("diamonds", rows=500)
    regression = mlre.run(df, target="price", time_budget=5, families=["linear"], report=False)
    with pytest.raises(InputError, match="offered for binary classification"):
        mitigate(regression.run_id, sensitive="cut", data=df)


def test_a_chosen_mitigation_registers_and_predicts_like_any_model(adult_run, monkeypatch):
    from fairlearn.metrics import demographic_parity_difference

    from mlre.track.registry import load_model, predict_frame

    folder, run = adult_run
    monkeypatch.chdir(folder)
    name = "thresholds per group (demographic parity)"
    result = mitigate(run.run_id, sensitive="sex", reductions=False, register=name)
    registered = result.registered
    assert registered is not None and registered.version != run.model_version
    loaded = load_model(f"models:/{registered.name}/{registered.version}")  # hash-checked
    assert loaded.model.contract.sensitive_inputs == ["sex"]
    rows = dataset("adult", rows=1500, seed=9)
    table = predict_frame(loaded.model, rows)
    assert set(table["prediction"]) <= {"<=50K", ">50K"}
    assert set(table["proba_>50K"]) <= {0.0, 1.0}  # the decision, drawn once per row
    p = loaded.model.decision_probability(rows)
    assert ((p >= 0) & (p <= 1)).all() and 0 < p.mean() < 1
    chosen = (table["prediction"] == ">50K").astype(int)
    y = (rows["income-per-year"] == ">50K").astype(int)
    # the run's own version: the alias `candidate` now names the mitigated one
    own = load_model(f"models:/{registered.name}/{run.model_version}").model
    base = (own.predict(rows) == ">50K").astype(int)
    assert abs(chosen.mean() - base.mean()) < 0.1, "selection rates of the rule, not argmax"
    assert (predict_frame(loaded.model, rows)["prediction"] == table["prediction"]).all()
    assert demographic_parity_difference(y, chosen, sensitive_features=rows["sex"]) < (
        demographic_parity_difference(y, base, sensitive_features=rows["sex"])
    )
    # the service answers with it (it is the candidate now), the same labels as predict
    import time

    from mlre.serve.service import ServeConfig, Service

    service = Service(
        ServeConfig(
            model=registered.name,
            prediction_log=folder / "predictions.db",
            audit_log=folder / "audit.db",
        )
    ).start()
    try:
        end = time.monotonic() + 60
        while not service.ready and time.monotonic() < end:
            time.sleep(0.1)
        answer = service.predict(rows.drop(columns=["income-per-year"]).head(50))
        assert answer.slot.version == registered.version
        served = answer.slot.model.classes_[answer.output.argmax(axis=1)]
        assert list(served) == list(table["prediction"].head(50))
    finally:
        service.stop()
    with pytest.raises(InputError, match="no mitigated option called"):
        mitigate(run.run_id, sensitive="sex", reductions=False, register="unmitigated")
