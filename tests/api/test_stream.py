"""Batch prediction of files too large to read whole: the same predictions as in memory, and a
bad batch that leaves nothing behind."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import mlre
from helpers import dataset, tracked_credit_run
from mlre.cli import app

MODEL = "models:/credit@candidate"


@pytest.fixture(scope="module")
def credit(tmp_path_factory):
    run = tracked_credit_run(
        tmp_path_factory.mktemp("stream"), time_budget=15, families=["lightgbm"], report=False
    )
    folder, _ = next(run)
    rows = pd.concat([dataset("german_credit")] * 20, ignore_index=True).drop(columns="credit")
    yield folder, rows
    run.close()


def mlre_cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_streamed_predictions_equal_those_made_in_memory(credit, kind):
    folder, rows = credit
    src = folder / f"rows.{kind}"
    rows.to_parquet(src, index=False) if kind == "parquet" else rows.to_csv(src, index=False)
    out = folder / f"preds_{kind}.{kind}"
    done = mlre_cli("predict", MODEL, src, "-o", out, "--batch-rows", "3000")
    assert done.exit_code == 0, done.output
    assert "wrote 20,000 predictions" in done.output
    streamed = pd.read_parquet(out) if kind == "parquet" else pd.read_csv(out)
    whole = mlre.predict(MODEL, rows).frame
    assert len(streamed) == len(whole) == 20_000
    for c in whole.columns:
        if pd.api.types.is_float_dtype(whole[c].dtype):
            assert (streamed[c] - whole[c]).abs().max() < 1e-12
        else:
            assert (streamed[c].astype(str) == whole[c].astype(str)).all()


def test_a_bad_part_stops_the_work_and_keeps_the_old_output(credit):
    folder, rows = credit
    parts = folder / "parts"
    parts.mkdir()
    rows.iloc[:5000].to_parquet(parts / "part-0.parquet", index=False)
    broken = rows.iloc[5000:10000].assign(age="old")
    broken.to_parquet(parts / "part-1.parquet", index=False)
    out = folder / "kept.parquet"
    out.write_bytes(b"yesterday's predictions")
    done = mlre_cli("predict", MODEL, parts, "-o", out, "--batch-rows", "2000")
    assert done.exit_code == 2, done.output
    assert "error:" in done.output and "Traceback" not in done.output
    assert out.read_bytes() == b"yesterday's predictions"
    assert not list(folder.glob(".kept.parquet.partial"))
    missing = folder / "missing.parquet"
    rows.drop(columns="age").to_parquet(missing, index=False)
    done = mlre_cli("predict", MODEL, missing, "-o", folder / "x.parquet", "--batch-rows", "2000")
    assert done.exit_code == 2 and "'age' is missing" in done.output
    assert not (folder / "x.parquet").exists()
    no_output = mlre_cli("predict", MODEL, missing, "--batch-rows", "2000")
    assert no_output.exit_code == 2 and "-o" in no_output.output
