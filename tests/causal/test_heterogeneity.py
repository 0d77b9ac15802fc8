"""Heterogeneous effects: the modifier that drives the effect is found, one that does not is
not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlre.causal.analysis import analyse
from mlre.causal.model import build_model


def test_the_modifier_that_changes_the_effect_is_the_one_named():
    rng = np.random.default_rng(0)
    n = 3000
    age = rng.uniform(20, 60, n)
    noise = rng.normal(size=n)
    region = rng.choice(["a", "b", "c"], n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(age - 40) / 10))).astype(int)
    effect = np.where(age > 40, 4.0, 0.0)  # only older people respond
    y = 0.1 * age + t * effect + rng.normal(size=n)
    df = pd.DataFrame({"age": age, "noise": noise, "region": region, "t": t, "y": y})
    model, rows, profiles, _ = build_model(
        df, treatment="t", outcome="y", confounders=["age"], modifiers=["age", "noise", "region"]
    )
    result = analyse(model, rows, profiles, families=["linear"], refute=False, bootstrap=10)
    h = result.heterogeneity
    assert next(iter(h.importance)) == "age"
    assert h.tests["age"] < 1e-6 and h.tests["noise"] > 0.01 and h.tests["region"] > 0.01
    assert 1.0 < h.cate_mean < 3.5
    assert h.cate_quantiles["0.1"] < 1.0 < 3.0 < h.cate_quantiles["0.9"]
    old = [g for g in h.groups if g.modifier == "age" and g.group.startswith("(5")]
    assert old and all(g.low < 4.0 < g.high for g in old)
    [finding] = [f for f in result.findings if f.check == "causal_heterogeneity"]
    assert "age" in finding.message
