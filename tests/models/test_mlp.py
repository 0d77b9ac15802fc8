"""The PyTorch MLP family: learns, stops early, respects its deadline, and pickles portably."""

from __future__ import annotations

import io
import time

import joblib
import numpy as np

from helpers import audit, dataset
from mlre.evaluate.metrics import get_metric
from mlre.features import FeaturePlan, make_preprocessor
from mlre.models.families import FAMILIES


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


def test_adamw_matches_torch_optim_and_fitting_leaves_dynamo_unimported():
    import subprocess
    import sys

    import torch

    from mlre.models.mlp import _AdamW

    def train(make):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        unused = torch.nn.Parameter(torch.ones(3))  # no gradient: left as it is, as torch does
        opt = make([*net.parameters(), unused])
        x, y = torch.randn(64, 5), torch.randn(64, 1)
        for _ in range(20):
            opt.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
        return [p.detach().clone() for p in [*net.parameters(), unused]]

    ours = train(lambda ps: _AdamW(ps, lr=3e-3, weight_decay=1e-2))
    theirs = train(lambda ps: torch.optim.AdamW(ps, lr=3e-3, weight_decay=1e-2))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    # torch.optim's Optimizer class imports TorchDynamo and SymPy (85 MB) on first use
    code = (
        "import sys, time, numpy as np, pandas as pd\n"
        "from mlre.models.mlp import TabularMLP\n"
        "X = pd.DataFrame({'a': np.arange(200.0), 'b': pd.Categorical(['x', 'y'] * 100)})\n"
        "TabularMLP(max_epochs=2).fit(X, np.arange(200) % 2)\n"
        "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
