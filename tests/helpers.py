"""Helpers shared by the tests: the real public data sets that sit beside the repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

import mlre

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("MLRE_DATASETS", ROOT.parent / "shared" / "datasets"))
ALL_DATASETS = sorted(d.name for d in DATASETS.iterdir() if (d / "meta.json").is_file())


def meta(name: str) -> dict:
    """The meta.json of a shared data set."""
    return json.loads((DATASETS / name / "meta.json").read_text())


def dataset(name: str, rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """A shared data set read with pandas (independently of mlre's loader), optionally sampled."""
    df = pd.read_csv(DATASETS / name / "data.csv.gz")
    if rows is not None and len(df) > rows:
        df = df.sample(rows, random_state=seed).reset_index(drop=True)
    return df


def audit(df: pd.DataFrame, target: str | None, **kwargs) -> mlre.AuditReport:
    """Audit a DataFrame without tracking."""
    return mlre.audit(df, target=target, track=False, **kwargs)


def findings(report: mlre.AuditReport, check: str, column: str | None = None) -> list[mlre.Finding]:
    """The findings of one check (optionally about one column)."""
    return [f for f in report.findings.by_check(check) if column is None or f.column == column]


def tracked_credit_run(folder: Path, **kwargs):
    """A tracked `mlre run` on german_credit in ``folder`` (its MLflow store and report go there);
    a generator for module-scoped fixtures: yields (folder, result)."""
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(folder)
        result = mlre.run(DATASETS / "german_credit" / "data.csv.gz", target="credit", **kwargs)
        yield folder, result
