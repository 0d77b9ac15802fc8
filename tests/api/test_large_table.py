"""A Parquet table larger than the memory budget: the run learns from a uniform sample, says
so, and reads the same sample again."""

from __future__ import annotations

import pandas as pd
import pytest

import mlre
from helpers import dataset
from mlre.api.inputs import load_run_inputs
from mlre.spec import Spec


@pytest.fixture
def credit_parquet(tmp_path):
    df = pd.concat([dataset("german_credit")] * 5, ignore_index=True)
    path = tmp_path / "credit.parquet"
    df.to_parquet(path, index=False)
    return path, df


def test_a_table_over_the_budget_is_sampled_and_the_run_says_so(credit_parquet, monkeypatch):
    path, df = credit_parquet
    monkeypatch.setenv("MLRE_LOAD_MEMORY", "100KB")
    result = mlre.run(
        path, target="credit", time_budget=10, families=["linear"], track=False, report=False
    )
    found = result.findings.by_check("sampled_table")
    assert len(found) == 1 and "larger than memory" in found[0].message
    sampled = found[0].evidence
    assert sampled["of"] == len(df) and 1_000 <= sampled["rows"] < len(df)
    # the run's rows are the sample's
    assert result.scheme["holdout_rows"] + result.model.contract.n_rows >= sampled["rows"] * 0.99
    # the same seed reads the same rows again (a replay learns from what the run learned from)
    one = load_run_inputs(path, Spec(target="credit")).df
    two = load_run_inputs(path, Spec(target="credit")).df
    assert len(one) == sampled["rows"]
    pd.testing.assert_frame_equal(
        one.sort_values(list(one.columns)).reset_index(drop=True),
        two.sort_values(list(two.columns)).reset_index(drop=True),
    )


def test_a_table_within_the_budget_is_read_whole(credit_parquet):
    path, df = credit_parquet
    result = mlre.run(
        path, target="credit", time_budget=8, families=["linear"], track=False, report=False
    )
    assert not result.findings.by_check("sampled_table")
    assert result.scheme["holdout_rows"] == round(0.2 * len(df))
