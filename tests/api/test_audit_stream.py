"""The audit of a file too large to load: exact whole-file counts, the other checks on a sample,
and clear messages for files that cannot be read."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mlre
from helpers import dataset
from mlre.cli import app
from mlre.data.audit import stream


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """adult three times over (every row duplicated twice), with ages knocked out."""
    folder = tmp_path_factory.mktemp("audit_stream")
    df = pd.concat([dataset("adult")] * 3, ignore_index=True)
    df.loc[::7, "age"] = np.nan
    df.loc[::50, "income-per-year"] = None
    df.to_parquet(folder / "big.parquet", index=False)
    df.to_csv(folder / "big.csv", index=False)
    return folder, df


def finding(report, check, column=None):
    hits = [f for f in report.findings.by_check(check) if column is None or f.column == column]
    assert len(hits) == 1, [f.message for f in report.findings]
    return hits[0]


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_a_streamed_audit_counts_the_whole_file_and_checks_a_sample(big, kind, monkeypatch):
    folder, df = big
    monkeypatch.setattr(stream, "SAMPLE_ROWS", 20_000)
    report = mlre.audit(folder / f"big.{kind}", target="income-per-year", track=False, stream=True)
    assert report.n_rows == len(df)
    assert report.summary()["streamed"]["sampled_rows"] == 20_000
    # what a sample would understate is counted over every row
    dup = finding(report, "duplicate_rows")
    assert dup.evidence["duplicates"] == int(df.duplicated().sum())
    unlabelled = finding(report, "missing_target")
    assert unlabelled.evidence["count"] == int(df["income-per-year"].isna().sum())
    age = report.profiles["age"]
    assert age.n_missing == int(df["age"].isna().sum())
    assert age.min == df["age"].min() and age.max == df["age"].max()
    assert age.mean == pytest.approx(df["age"].mean())
    # the sample's checks still find what is there, and the contract covers every column
    assert report.findings.by_check("disguised_missing")
    assert {c.name for c in report.contract.columns} == set(df.columns)


def test_streamed_and_in_memory_audits_agree_on_the_counts(big):
    folder, _ = big
    path = folder / "big.parquet"
    streamed = mlre.audit(path, target="income-per-year", track=False, stream=True)
    whole = mlre.audit(path, target="income-per-year", track=False, stream=False)
    assert "streamed" not in whole.summary()
    for check in ("duplicate_rows", "missing_target"):
        a, b = finding(streamed, check), finding(whole, check)
        key = "duplicates" if check == "duplicate_rows" else "count"
        assert a.evidence[key] == b.evidence[key] and a.severity == b.severity
    assert streamed.profiles["age"].missing_frac == pytest.approx(
        whole.profiles["age"].missing_frac
    )


def test_the_cli_streams_and_records_the_audit(big, store):
    folder, df = big
    done = CliRunner().invoke(
        app, ["audit", str(folder / "big.parquet"), "--target", "income-per-year", "--stream",
              "--json"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["summary"]["rows"] == len(df) and out["summary"]["run_id"]
    assert "uniform random sample" in out["summary"]["streamed"]["rule"]


def test_files_that_cannot_be_streamed_say_why(big, tmp_path):
    folder, _ = big
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not a parquet file")
    runner = CliRunner()
    done = runner.invoke(app, ["audit", str(broken), "--stream", "--no-track"])
    assert done.exit_code == 2 and "cannot read" in done.output
    assert "Traceback" not in done.output
    done = runner.invoke(
        app, ["audit", str(folder / "big.parquet"), "--target", "income", "--stream", "--no-track"]
    )
    assert done.exit_code == 2 and "'income' is not a column" in done.output
    assert "income-per-year" in done.output  # the likely name is suggested
