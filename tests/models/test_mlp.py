"""The PyTorch MLP family: learns, stops early, respects its deadline, and pickles portably."""

from __future__ import annotations

import io
import time

import joblib
import numpy as np

from helpers import audit, dataset
from mlre.evaluate.metrics import get_metric
from mlre.features import FeaturePlan, make_preprocessor
from mlre.models.zoo import FAMILIES


def prepared(name: str, target: str, rows: int = 3000):
    df = dataset(name, rows=rows)
    plan = FeaturePlan.from_contract(audit(df.head(500), target).contract)
    X = make_preprocessor(plan, "trees").fit_transform(df)
    return df, X


def test_mlp_with_embeddings_beats_the_baseline_and_pickles():
    df, X = prepared("german_credit", "credit")
    y = (df["credit"] == 2).astype(int).to_numpy()
    mlp = FAMILIES["mlp"]
    est = mlp.build("binary", mlp.portfolio[0], 0)
    mlp.fit(est, X.iloc[:600], y[:600], X.iloc[600:800], y[600:800], time.monotonic() + 60)
    assert len(est.cardinality_) == len(est.cat_cols_) > 0
    proba = est.predict_proba(X.iloc[800:])
    assert get_metric("roc_auc")(y[800:], proba) > 0.7
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    assert np.allclose(joblib.load(buffer).predict_proba(X.iloc[800:]), proba)


def test_mlp_regression_and_deadline():
    df, X = prepared("diamonds", "price")
    y = df["price"].to_numpy(float)
    mlp = FAMILIES["mlp"]
    est = mlp.build("regression", {"hidden": 64}, 0)
    mlp.fit(est, X.iloc[:2000], y[:2000], X.iloc[2000:2500], y[2000:2500], time.monotonic() + 60)
    assert get_metric("r2")(y[2500:], est.predict(X.iloc[2500:])) > 0.9
    late = mlp.build("regression", {"hidden": 64, "max_epochs": 500}, 0)
    started = time.monotonic()
    mlp.fit(late, X.iloc[:2000], y[:2000], X.iloc[2000:2500], y[2000:2500], started - 1)
    assert np.isfinite(late.predict(X.iloc[:5])).all()  # one epoch, then stopped at the deadline
