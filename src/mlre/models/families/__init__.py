"""Model families: how to build each estimator, its proven starting configurations and its
search space, one module per family. Every estimator is scikit-learn compatible and takes the
family's preprocessing.

The starting configurations follow the published defaults and zero-shot portfolios of AutoGluon
and FLAML and the TabRepo study (boosted trees first, a large-leaf LightGBM, extremely
randomised trees, then the rest); the code is ours.

This module is the registry: every family is listed here, and nowhere else.
"""

from __future__ import annotations

from mlre.models.families.base import (
    EARLY_STOP,
    MAX_ROUNDS,
    Family,
    Params,
    n_threads,
    n_workers,
)
from mlre.models.families.cat import CATBOOST
from mlre.models.families.glassbox import EBM, SHALLOW_TREE, SPARSE_LINEAR
from mlre.models.families.knn import KNN
from mlre.models.families.lgbm import LIGHTGBM
from mlre.models.families.linear import LINEAR
from mlre.models.families.mlp import MLP
from mlre.models.families.sk_trees import EXTRA_TREES, HIST_GB, RANDOM_FOREST
from mlre.models.families.xgb import XGBOOST

#: Every family, in the order :func:`available_families` lists them; the glass boxes last.
ALL_FAMILIES: tuple[Family, ...] = (
    LIGHTGBM,
    CATBOOST,
    XGBOOST,
    EXTRA_TREES,
    HIST_GB,
    RANDOM_FOREST,
    LINEAR,
    KNN,
    MLP,
    SPARSE_LINEAR,
    SHALLOW_TREE,
    EBM,
)

#: Each family by name.
FAMILIES: dict[str, Family] = {f.name: f for f in ALL_FAMILIES}

#: The order in which the portfolio is tried: strong and cheap first.
PORTFOLIO_ORDER: list[tuple[str, int]] = [
    ("lightgbm", 0),
    ("linear", 0),
    ("xgboost", 0),
    ("lightgbm", 1),
    ("catboost", 0),
    ("extra_trees", 0),
    ("hist_gb", 0),
    ("lightgbm", 2),
    ("random_forest", 0),
    ("knn", 0),
    ("xgboost", 1),
    ("mlp", 0),
    ("lightgbm", 3),
    ("catboost", 1),
]

#: The order of the glass boxes' proven starting points, for an interpretable run: cheapest first.
INTERPRETABLE_ORDER: list[tuple[str, int]] = [
    ("sparse_linear", 0),
    ("shallow_tree", 0),
    ("ebm", 0),
    ("shallow_tree", 1),
    ("sparse_linear", 1),
]


def available_families(names: list[str] | None = None) -> list[Family]:
    """The families whose libraries are installed (optionally only those named)."""
    chosen = [FAMILIES[n] for n in (names or FAMILIES)]
    return [f for f in chosen if f.available()]


__all__ = [
    "ALL_FAMILIES",
    "EARLY_STOP",
    "FAMILIES",
    "INTERPRETABLE_ORDER",
    "MAX_ROUNDS",
    "PORTFOLIO_ORDER",
    "Family",
    "Params",
    "available_families",
    "n_threads",
    "n_workers",
]
