"""Helpers shared by the tests: the real public tables bundled in tests/data/tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import mlre

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT / "tests" / "data" / "tables"
ALL_DATASETS = sorted(d.name for d in DATASETS.iterdir() if (d / "meta.json").is_file())


def meta(name: str) -> dict:
    """The meta.json of a bundled table."""
    return json.loads((DATASETS / name / "meta.json").read_text())


def data_file(name: str) -> Path:
    """The data file of a bundled table (meta.json's ``data_file`` where the repository already
    holds it elsewhere)."""
    elsewhere = meta(name).get("data_file")
    return ROOT / elsewhere if elsewhere else DATASETS / name / "data.csv.gz"


def dataset(name: str, rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """A bundled table read with pandas (independently of mlre's loader), optionally sampled."""
    df = pd.read_csv(data_file(name))
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
        result = mlre.run(data_file("german_credit"), target="credit", **kwargs)
        yield folder, result


def encoded(df: pd.DataFrame, target: str, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The target as a model sees it (class codes in sorted order, or floats) and the classes."""
    if task == "regression":
        return df[target].to_numpy(dtype=float), None
    classes = np.array(sorted(df[target].unique()), dtype=object)
    return np.searchsorted(classes.astype(str), df[target].astype(str).to_numpy()), classes


def trial_data(
    name: str, target: str, task: str, metric: str, rows: int | None = None, k: int = 5
) -> tuple:
    """The training data a search sees of bundled table ``name``: raw features, encoded
    target, folds; with its frame, classes and contract."""
    from mlre.data.split import cv_folds
    from mlre.evaluate.metrics import get_metric
    from mlre.features.pipeline import FeaturePlan
    from mlre.search.trial import TrialData

    df = dataset(name, rows=rows)
    contract = audit(df, target).contract
    plan = FeaturePlan.from_contract(contract)
    y, classes = encoded(df, target, task)
    folds = cv_folds(y, task=task, k=k, seed=0)
    n_classes = 0 if classes is None else len(classes)
    data = TrialData(df[plan.columns], y, folds, task, n_classes, plan, get_metric(metric), 0)
    return data, df, classes, contract


def awkward(raw: pd.DataFrame, plan: Any) -> pd.DataFrame:
    """``raw`` with the inputs a service meets: holes, new levels, numbers as text (``plan``: the
    table's FeaturePlan)."""
    X = raw.copy()
    rng = np.random.default_rng(1)
    for c in plan.numeric[:3]:
        X.loc[rng.random(len(X)) < 0.2, c] = np.nan
    for c in plan.categorical[:3]:
        X[c] = X[c].astype(object)
        X.loc[rng.random(len(X)) < 0.2, c] = None
        X.loc[rng.random(len(X)) < 0.1, c] = "a level never seen in training"
    if plan.numeric:
        c = plan.numeric[-1]
        X[c] = X[c].map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    return X
