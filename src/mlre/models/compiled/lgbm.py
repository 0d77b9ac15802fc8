"""LightGBM's boosters predicted from the matrix.

One row goes through LightGBM's single-row call prepared once (``LgbRow``), more rows through
``Booster.predict`` (on one thread for small batches). The prepared call is LightGBM's C API,
reached through private names of ``lightgbm.basic`` and the booster's handle: ``guard`` checks
them.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from typing import Any

import numpy as np

from mlre.features.transformers import ColumnStack
from mlre.models.compiled.matrix import trees_style
from mlre.models.compiled.predictor import Built, guarded, two_columns
from mlre.spec import Task

#: The private names of ``lightgbm.basic`` the prepared call uses.
PRIVATE = ("_LIB", "_safe_call", "_c_str", "_C_API_DTYPE_FLOAT64", "_C_API_PREDICT_NORMAL",
           "LightGBMError")  # fmt: skip

#: The functions of LightGBM's C API it calls.
C_FUNCTIONS = ("LGBM_BoosterPredictForMatSingleRowFastInit",
               "LGBM_BoosterPredictForMatSingleRowFast", "LGBM_FastConfigFree")  # fmt: skip


def internals_problem(booster: Any) -> str | None:
    """What in LightGBM's Python module, its C library or a fitted booster is not as the
    prepared single-row call needs it; None when all is."""
    try:
        import lightgbm.basic as basic
    except ImportError:
        return "no module lightgbm.basic"
    missing = [name for name in PRIVATE if not hasattr(basic, name)]
    if missing:
        return f"lightgbm.basic has no {', '.join(missing)}"
    missing = [name for name in C_FUNCTIONS if not hasattr(basic._LIB, name)]
    if missing:
        return f"LightGBM's C library has no {', '.join(missing)}"
    if not isinstance(getattr(booster, "_handle", None), ctypes.c_void_p):
        return "a fitted Booster's _handle is not a C handle"
    return None


def guard(booster: Any) -> bool:
    """Whether LightGBM and ``booster`` have what the prepared single-row call needs; says what
    is wrong (a warning naming LightGBM and its version) when not."""
    return guarded("lightgbm", internals_problem(booster))


class LgbmPredictor:
    """A fitted LightGBM booster predicting the matrix: one row by the prepared call, more by
    ``Booster.predict``."""

    kind = "lightgbm"

    def __init__(self, booster: Any, binary: bool) -> None:
        self.booster, self.binary = booster, binary
        self.single_row: LgbRow | None = None  # prepared on the first single row
        self.single_row_built = False

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """The booster's probabilities or values for the rows of ``M``."""
        out = None
        if len(M) == 1:
            if not self.single_row_built:
                self.single_row, self.single_row_built = LgbRow.of(self.booster), True
            out = None if self.single_row is None else self.single_row.predict(M[0])
        if out is None:
            out = self.booster.predict(M, num_threads=1) if small else self.booster.predict(M)
        return two_columns(out, self.binary)


class LgbRow:
    """LightGBM's single-row prediction from a configuration prepared once.

    ``Booster.predict`` on one row costs ~28 us of wrapper and set-up around LightGBM's walk
    (a predictor object, parameter strings, a result-size query); LightGBM's C API can prepare
    that once (``LGBM_BoosterPredictForMatSingleRowFastInit``), after which a row costs ~9 us.
    Same predictor, same iterations (the best one when the booster has one, as ``predict``
    uses), same output. A prepared configuration serves one call at a time: a call that finds
    it busy returns None and the caller uses ``predict``. Freed with the object.
    """

    def __init__(self, booster: Any) -> None:
        # LightGBM's private names, checked by ``guard``
        from lightgbm.basic import (
            _C_API_DTYPE_FLOAT64,
            _C_API_PREDICT_NORMAL,
            _LIB,
            _c_str,
            _safe_call,
        )

        self.n_features = int(booster.num_feature())
        self.width = int(booster.num_model_per_iteration())
        best = int(getattr(booster, "best_iteration", 0) or 0)
        handle = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle, ctypes.c_int(_C_API_PREDICT_NORMAL), ctypes.c_int(0),
                ctypes.c_int(best if best > 0 else -1), ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(self.n_features), _c_str("num_threads=1"), ctypes.byref(handle),
            )
        )  # fmt: skip
        self.handle, self.lock = handle, threading.Lock()
        self.call, self.check = _LIB.LGBM_BoosterPredictForMatSingleRowFast, _safe_call
        self.out_len = ctypes.c_int64(0)
        self.double_p = ctypes.POINTER(ctypes.c_double)
        self.freed = weakref.finalize(self, _free_config, _LIB.LGBM_FastConfigFree, handle, booster)

    @classmethod
    def of(cls, booster: Any) -> LgbRow | None:
        """The prepared form, or None where this LightGBM does not offer it."""
        try:
            from lightgbm.basic import LightGBMError
        except ImportError:
            return None
        try:
            return cls(booster)
        except (ImportError, AttributeError, OSError, TypeError, ValueError, LightGBMError):
            return None

    def predict(self, row: np.ndarray) -> np.ndarray | None:
        """``Booster.predict`` of one row (float64, the booster's feature count), or None when
        another thread is using the configuration."""
        if len(row) != self.n_features or not self.lock.acquire(blocking=False):
            return None
        try:
            x = np.ascontiguousarray(row, dtype=np.float64)
            out = np.empty(self.width, dtype=np.float64)
            self.check(
                self.call(
                    self.handle, x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(self.out_len),
                    out.ctypes.data_as(self.double_p),
                )
            )  # fmt: skip
        finally:
            self.lock.release()
        return out[None, :] if self.width > 1 else out


def _free_config(free: Any, handle: ctypes.c_void_p, booster: Any) -> None:
    """Free a prepared LightGBM configuration (its booster is held until then)."""
    free(handle)


def build(est: Any, stack: ColumnStack, task: Task) -> Built | None:
    """The compiled form of a fitted LightGBM model behind a trees-style stack, else None."""
    if not trees_style(stack) or not hasattr(est, "booster_"):
        return None
    if callable(getattr(est, "objective", None)) or (task == "binary" and len(est.classes_) != 2):
        return None  # a custom objective: the wrapper, not the booster, makes its output
    if not guard(est.booster_):
        return None
    return Built(LgbmPredictor(est.booster_, task == "binary"))
