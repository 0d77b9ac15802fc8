"""Stacking: a second layer that reads the table's own columns beside the first layer's blend.

The first layer is the greedy ensemble of the search's candidates as it stands when tuning is
over; its out-of-fold predictions become one more column (one per class for a multiclass
target), and a second-layer model is fitted on the same folds, as the strongest AutoML systems
stack (AutoGluon's multi-layer stack ensembling feeds the original features to every layer). The
second layer's out-of-fold predictions are on rows it was not fitted on, so it joins the final
ensemble selection as one more candidate, and the validated selection keeps it only when it pays.

A second-layer fold model reads first-layer predictions made by fold models that saw its own
validation rows (the rows of the other folds); the column is then a little better on its rows
than out of sample, a small optimism every stacked ensemble accepts. Where the search validates
only part of the rows (one validation split on a large table), there is no column to read for
the rest, and no stacking.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from mlre.models.families import FAMILIES, Family
from mlre.models.final import level_one_names, with_level_one
from mlre.search.schedule import validated_rows
from mlre.search.trial import TrialData, TrialResult

#: The phase of a second-layer trial.
PHASE = "stacking"
#: Second-layer trials: the leading configuration, then LightGBM's default.
DEFAULT_SECOND = ("lightgbm", 0)
#: Stacking is tried only when its fits need at most this share of the search's budget.
MAX_SHARE = 0.25
#: Its expected time is stretched by this much before it is kept back from tuning.
MARGIN = 1.25


def can_stack(data: TrialData) -> bool:
    """Whether every training row has out-of-fold predictions for a second layer to read."""
    return len(data.folds) > 1 and bool(validated_rows(data).all())


def stacked_data(data: TrialData, blend: np.ndarray) -> TrialData:
    """``data`` with the first layer's out-of-fold ``blend`` as the level-one columns."""
    names = level_one_names(data.task, data.n_classes)
    plan = replace(data.plan, numeric=[*data.plan.numeric, *names])
    X = with_level_one(data.X, blend, data.task)
    return TrialData(X, data.y, data.folds, data.task, data.n_classes, plan, data.metric, data.seed)


def blend_of(kept: list[TrialResult], weights: np.ndarray) -> np.ndarray:
    """The weighted average of ``kept``'s out-of-fold predictions."""
    total: np.ndarray | None = None
    for t, w in zip(kept, weights, strict=True):
        if w > 0 and t.oof is not None:
            total = w * t.oof if total is None else total + w * t.oof
    if total is None:
        raise RuntimeError("no candidate of the first layer kept its predictions")
    return total


def second_layer(
    trials: list[TrialResult], allowed: dict[str, Family]
) -> list[tuple[Family, dict[str, Any]]]:
    """The configurations fitted as a second layer: the best first-layer configuration, then
    LightGBM's default when it is another."""
    out: list[tuple[Family, dict[str, Any]]] = []
    ok = [t for t in trials if t.status == "ok" and t.phase != PHASE and t.family in allowed]
    if ok:
        best = min(ok, key=lambda t: t.loss)
        out.append((allowed[best.family], dict(best.params)))
    name, index = DEFAULT_SECOND
    if name in allowed and index < len(FAMILIES[name].portfolio):
        default = dict(FAMILIES[name].portfolio[index])
        if not any(f.name == name and p == default for f, p in out):
            out.append((allowed[name], default))
    return out
