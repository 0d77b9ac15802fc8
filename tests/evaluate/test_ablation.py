"""`mlre ablate`: a run's best model refitted without each feature group, the loss tested."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mlre
from mlre.api.ablate import ablate
from mlre.cli import app
from mlre.errors import InputError
from mlre.evaluate.ablation import parse_groups


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A tracked run on a table with a crucial group, a useless one and a little else."""
    folder = tmp_path_factory.mktemp("ablate")
    rng = np.random.default_rng(0)
    n = 800
    df = pd.DataFrame(
        {
            "c_income": rng.standard_normal(n),
            "c_debt": rng.standard_normal(n),
            "u_noise1": rng.standard_normal(n),
            "u_noise2": rng.standard_normal(n),
            "u_colour": rng.choice(["red", "green", "blue"], n),
            "age": rng.integers(18, 80, n),
        }
    )
    logit = 1.8 * df.c_income - 1.4 * df.c_debt + 0.01 * (df.age - 50)
    df["default"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    path = folder / "loans.csv"
    df.to_csv(path, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(folder)
        result = mlre.run(
            path, target="default", time_budget=15, families=["lightgbm"], report=False
        )
        yield folder, result


def test_the_crucial_group_ranks_first_and_the_useless_one_is_not_needed(planted, monkeypatch):
    folder, run = planted
    monkeypatch.chdir(folder)
    result = ablate(run.run_id, "crucial=c_*;useless=u_*", repeats=3, folds=5)
    assert result.family == "lightgbm"
    crucial, useless = result.groups
    assert crucial.group == "crucial" and crucial.columns == ["c_income", "c_debt"]
    assert crucial.verdict == "matters" and crucial.loss > 0.1 and crucial.low > 0
    assert useless.group == "useless" and set(useless.columns) == {
        "u_noise1",
        "u_noise2",
        "u_colour",
    }
    assert useless.verdict != "matters" and useless.loss < crucial.loss
    assert result.run_id_recorded is not None


def test_the_command_shows_each_groups_worth(planted, monkeypatch):
    folder, run = planted
    monkeypatch.chdir(folder)
    done = CliRunner().invoke(
        app,
        [
            "ablate",
            run.run_id,
            "--groups",
            "crucial=c_*;useless=u_*",
            "--repeats",
            "2",
            "--folds",
            "5",
            "--no-track",
        ],
    )
    assert done.exit_code == 0, done.output
    assert done.output.index("crucial") < done.output.index("useless")
    assert "matters" in done.output


@pytest.mark.parametrize(
    "groups, message",
    [
        ("crucial", "cannot read the group"),
        ("a=nothing_*", "matches no feature column"),
        ("a=c_income;b=c_*", "is in both"),
        ("a=c_income;a=c_debt", "defined twice"),
        ("", "no feature groups"),
    ],
)
def test_bad_groups_are_clear_errors(groups, message):
    with pytest.raises(InputError, match=message):
        parse_groups(groups, ["c_income", "c_debt", "u_noise1"])


def test_an_unknown_run_is_a_clear_error(planted, monkeypatch):
    folder, _ = planted
    monkeypatch.chdir(folder)
    done = CliRunner().invoke(app, ["ablate", "0123456789abcdef", "--groups", "a=c_*"])
    assert done.exit_code == 2 and "no run" in done.output and "Traceback" not in done.output
