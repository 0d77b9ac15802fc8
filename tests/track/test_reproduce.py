"""`mlre reproduce`: a finished run replayed from its record, scores compared exactly."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers import data_file
from mlre.api.reproduce import reproduce
from mlre.cli import app


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    import mlre

    folder = tmp_path_factory.mktemp("reproduce")
    data = folder / "credit.csv"
    pd.read_csv(data_file("german_credit")).to_csv(data, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(folder)
        result = mlre.run(
            data, target="credit", time_budget=25, families=["lightgbm", "linear"], report=False
        )
        yield folder, data, result


def test_a_run_is_reproduced_exactly_from_its_model_and_its_recipe(tracked, monkeypatch):
    folder, _, run = tracked
    monkeypatch.chdir(folder)
    # the holdout scored an ensemble of fold models; the registered model is its recipe
    # refitted on all 1,000 labelled rows, one model per member
    assert sum(len(m.pipelines) for m in run.scored_model.members) > len(run.model.members)
    assert run.refit["rows"] == 1000 and all(len(m.pipelines) == 1 for m in run.model.members)
    result = reproduce(run.run_id)
    assert result.evaluation_matches and result.training_matches and result.reproduced
    assert result.refitted[run.metric] == pytest.approx(run.holdout_score, rel=1e-12)
    # the refit replayed: the same predictions on the holdout as the registered model's
    assert result.served_refitted == pytest.approx(result.served_recorded, rel=1e-12)
    assert result.served_reevaluated == pytest.approx(result.served_recorded, rel=1e-12)
    assert result.differences == []
    assert result.verdict().startswith("reproduced exactly")
    from mlre.track.store import store_client

    replay = store_client().get_run(result.replay_run_id)
    assert replay.data.tags["mlre.reproduces"] == run.run_id
    assert replay.data.tags["mlre.reproduced"] == "true"


def test_changed_data_is_named_when_the_scores_do_not_match(tracked, monkeypatch, tmp_path):
    folder, data, run = tracked
    monkeypatch.chdir(folder)
    df = pd.read_csv(data)
    df.loc[df.index[::3], "credit_amount"] = df["credit_amount"].max()
    changed = tmp_path / "credit_changed.csv"
    df.to_csv(changed, index=False)
    done = CliRunner().invoke(
        app, ["reproduce", run.run_id, "--data", str(changed), "--no-track", "--json"]
    )
    assert done.exit_code == 1, done.output
    payload = json.loads(done.output)
    assert not payload["reproduced"]
    assert any(d.startswith("the data (hash") for d in payload["differences"])
    assert "not reproduced" in payload["verdict"]


def test_the_command_says_when_it_reproduced(tracked, monkeypatch):
    folder, _, run = tracked
    monkeypatch.chdir(folder)
    done = CliRunner().invoke(app, ["reproduce", run.run_id, "--no-track"])
    assert done.exit_code == 0, done.output
    assert "reproduced exactly" in done.output


def test_missing_data_and_unknown_runs_are_clear_errors(tracked, monkeypatch, tmp_path):
    folder, _, run = tracked
    monkeypatch.chdir(folder)
    gone = CliRunner().invoke(app, ["reproduce", run.run_id, "--data", str(tmp_path / "x.csv")])
    assert gone.exit_code == 2 and "Traceback" not in gone.output
    unknown = CliRunner().invoke(app, ["reproduce", "feedfacefeedface"])
    assert unknown.exit_code == 2 and "no run" in unknown.output


def test_two_runs_are_compared_on_the_holdout_rows_neither_trained_on(tracked, monkeypatch):
    import mlre
    from mlre.api.compare import compare_runs

    folder, data, run = tracked
    monkeypatch.chdir(folder)
    other = mlre.run(data, target="credit", time_budget=10, families=["linear"], report=False)
    pair = compare_runs(run.run_id, other.run_id, samples=500)
    assert pair.rows == 200  # same seed, same holdout: every holdout row is shared
    c = pair.comparison
    assert c.low <= c.difference <= c.high
    assert c.p_better + c.p_equivalent + c.p_worse == pytest.approx(1.0)
    assert c.difference == pytest.approx(other.holdout_score - run.holdout_score, abs=1e-9)
    assert "paired bootstrap of 200 test rows" in c.sentence
    shifted = mlre.run(
        data, target="credit", time_budget=10, families=["linear"], seed=3, report=False
    )
    partial = compare_runs(run.run_id, shifted.run_id, samples=200, track=False)
    assert 30 <= partial.rows < 200  # another seed, another holdout: only the shared rows
    done = CliRunner().invoke(app, ["compare-runs", run.run_id, other.run_id, "--no-track"])
    assert done.exit_code == 0, done.output
    assert c.verdict in done.output


def test_a_tampered_scored_model_is_refused_before_it_is_read(tracked, monkeypatch):
    from mlre.track.registry import TamperedModelError

    folder, _, run = tracked
    monkeypatch.chdir(folder)
    [stored] = list(folder.rglob(f"{run.run_id}/artifacts/scored_model/model.parts"))
    original = stored.read_bytes()
    try:
        stored.write_bytes(original + b"\x00")
        with pytest.raises(TamperedModelError, match="does not match the hash"):
            reproduce(run.run_id, track=False)
        done = CliRunner().invoke(app, ["reproduce", run.run_id, "--no-track"])
        assert done.exit_code != 0 and "Traceback" not in done.output
        assert "does not match the hash" in done.output
    finally:
        stored.write_bytes(original)
