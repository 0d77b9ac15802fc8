"""``mlre fairness``: audit a registered model's predictions for disparities between groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlre.errors import InputError


def fairness(
    model: str,
    data: str | Path | pd.DataFrame,
    *,
    sensitive: list[str],
    target: str | None = None,
    spec: Any = None,
    proxies: bool = True,
    samples: int = 200,
    seed: int = 0,
) -> Any:
    """Group metrics (with 95% bootstrap intervals), disparities against the spec's limits (or
    the defaults) and proxy features for model ``model`` on the labelled table ``data``.

    ``sensitive`` columns must be in ``data``; the model need not read them. Binary
    classification and regression are audited; a multiclass model is a clear error."""
    from mlre.data.load import load_table
    from mlre.fairness.audit import audit_predictions, find_proxies, proxy_findings, sensitive_frame
    from mlre.spec import load_spec
    from mlre.track.registry import load_model

    if not sensitive:
        raise InputError("name the sensitive columns to audit", hint="--sensitive sex,race")
    loaded = load_model(model)
    m = loaded.model
    df = data if isinstance(data, pd.DataFrame) else load_table(data).frame
    target = target or m.contract.target
    if target is None or target not in df.columns:
        raise InputError(
            f"the table has no {target!r} column: a fairness audit needs the true outcomes",
            hint="pass a labelled table (for example the run's holdout)",
        )
    df = df[df[target].notna()].reset_index(drop=True)
    groups = sensitive_frame(df, sensitive)
    if m.task == "binary":
        positive = m.classes_[1]
        y = (df[target].astype(str) == str(positive)).to_numpy(dtype=float)
        prediction = (m.predict(df).astype(str) == str(positive)).astype(float)
    elif m.task == "regression":
        y = pd.to_numeric(df[target], errors="coerce").to_numpy(dtype=float)
        prediction = np.asarray(m.predict(df), dtype=float)
    else:
        raise InputError(
            "fairness metrics here cover binary classification and regression; this model is "
            "multiclass",
            hint="audit one class against the rest: retrain with a binary target",
        )
    the_spec = spec if spec is not None and not isinstance(spec, (str, Path)) else load_spec(spec)
    limits = {}
    if the_spec.constraints.fairness is not None:
        c = the_spec.constraints.fairness
        limits[c.metric] = c.max_difference
    audit = audit_predictions(
        y, prediction, groups, task=m.task, limits=limits, samples=samples, seed=seed
    )
    if proxies:
        features = [c.name for c in m.contract.features if c.name in df.columns]
        audit.proxies = find_proxies(df[features], groups, seed=seed)
        audit.findings += proxy_findings(audit.proxies)
    return audit
