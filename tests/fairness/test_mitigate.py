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
         "--no-reductions", "--no-track", "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    options = json.loads(done.output)["options"]
    assert [o["kind"] for o in options] == ["unmitigated", "post-processing"]


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
