"""The protocol every compiled member keeps, and what the library modules share.

Each library's module builds a ``RowPredictor`` from a fitted estimator (``Built``), and reads
that library's private internals only behind its guard: when they are not as expected, the guard
says so (``fall_back``: a warning naming the library and its version) and the member keeps its
pipeline, which gives the same answers, more slowly.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Protocol

import numpy as np

logger = logging.getLogger("mlre.models.compiled")

#: Up to this many rows a booster predicts on one thread: waking a thread team costs more than
#: it saves on a few rows, and a service answers its concurrent requests on the other cores.
SMALL_BATCH = 64

#: Up to this many rows a HistGradientBoosting or XGBoost model's trees are walked all at once
#: (one row: ~0.05 ms for 150 trees, against 0.59 ms for scikit-learn's routine tree by tree and
#: 0.4 ms for XGBoost's call); from about ten rows on, their own routines are faster.
FEW_ROWS = 8

#: An estimator's own input step as a recoding of the matrix: per categorical column (by
#: position) the estimator's code of each of our levels (last entry: missing), then the order in
#: which it reads the columns.
Recode = tuple[dict[int, np.ndarray], np.ndarray]

#: How the warnings name a library, by its module.
LIBRARY_NAMES = {"sklearn": "scikit-learn", "lightgbm": "LightGBM", "xgboost": "XGBoost",
                 "catboost": "CatBoost", "torch": "PyTorch"}  # fmt: skip


class RowPredictor(Protocol):
    """A fitted member compiled to predict from the float matrix of its pipeline's columns."""

    #: what the member is compiled as, for people reading a benchmark (nothing dispatches on it)
    kind: str

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """Probabilities (rows, the classes the estimator saw) or regression values for the rows
        of ``M`` (read, not changed); ``small``: few enough rows to predict on one thread."""
        ...


@dataclass(frozen=True)
class Built:
    """What a library's builder makes of a fitted estimator: its predictor and, where the
    estimator reads the matrix in codes and an order of its own, that recoding."""

    predictor: RowPredictor
    recode: Recode | None = None


def library_version(module: str) -> str:
    """The installed version of the library imported as ``module``."""
    try:
        return str(getattr(importlib.import_module(module), "__version__", "(version unknown)"))
    except ImportError:
        return "(not installed)"


def fall_back(module: str, problem: str) -> None:
    """Say that a fitted model of the library ``module`` keeps its pipeline, because its
    internals are not what the compiled path reads (``problem``)."""
    logger.warning(
        "%s %s: %s; this member predicts through its pipeline (the same answers, more slowly)",
        LIBRARY_NAMES.get(module, module),
        library_version(module),
        problem,
    )


def guarded(module: str, problem: str | None) -> bool:
    """Whether a guard found the internals of ``module`` as expected (``problem`` None); says
    what is wrong when not."""
    if problem is not None:
        fall_back(module, problem)
    return problem is None


def two_columns(out: np.ndarray, binary: bool) -> np.ndarray:
    """A booster's output as float64; for ``binary`` its one probability widened to two
    columns, in the booster's own precision (XGBoost's is float32) as its wrapper does."""
    out = np.asarray(out)
    if binary:
        out = out.ravel()
        out = np.column_stack([1 - out, out])
    return out.astype(np.float64, copy=False)
