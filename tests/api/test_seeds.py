"""`mlre run --seeds N`: the whole run once per seed and the spread of its score."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from helpers import dataset
from mlre.api.seeds import run_seeds
from mlre.cli import app
from mlre.errors import InputError


def test_each_seed_is_a_run_and_the_spread_is_stated(store):
    data = store / "credit.csv"
    dataset("german_credit", rows=500).to_csv(data, index=False)
    result = run_seeds(
        data, seeds=3, target="credit", time_budget=8, families=["linear"], report=False
    )
    assert result.seeds == [0, 1, 2] and len({r.run_id for r in result.runs}) == 3
    holdout = result.holdout
    spread = result.spread()
    assert spread["mean"] == pytest.approx(holdout.mean())
    assert spread["sd"] == pytest.approx(holdout.std(ddof=1))
    assert spread["low"] < spread["mean"] < spread["high"]
    assert len(set(np.round(holdout, 12))) > 1, "other seeds, other holdouts, other scores"
    assert "over 3 seeds the holdout roc_auc is" in result.sentence()
    assert result.findings[0].check == "seed_variance"
    from mlre.track.store import store_client

    summary = store_client().get_run(result.run_id)
    assert summary.data.tags["mlre.kind"] == "seeds"
    assert summary.data.tags["mlre.seed_run.1"] == result.runs[1].run_id

    done = CliRunner().invoke(
        app,
        ["run", str(data), "--target", "credit", "--time-budget", "8", "--family", "linear",
         "--seeds", "2", "--no-report", "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output)
    assert [r["seed"] for r in payload["runs"]] == [0, 1]


def test_one_seed_has_no_spread():
    with pytest.raises(InputError, match="at least 2 seeds"):
        run_seeds("unused.csv", seeds=1)
