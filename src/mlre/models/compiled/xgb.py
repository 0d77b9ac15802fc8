"""XGBoost's boosters predicted from the matrix.

A few rows walk a single-output model's trees in numpy (``XgbForest``), in XGBoost's own
precision and order; more rows, and models the walk does not reproduce, go through the booster's
``inplace_predict`` (on one thread for small batches). The walk reads the booster's JSON
description, whose layout is XGBoost's own: ``described`` checks it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np

from mlre.features.transformers import ColumnStack
from mlre.models.compiled.flat_trees import (
    FlatTrees,
    add_linked,
    category_rows,
    linked_parts,
    tree_depth,
)
from mlre.models.compiled.matrix import trees_style
from mlre.models.compiled.predictor import FEW_ROWS, Built, guarded, two_columns
from mlre.spec import Task

#: The objectives whose booster output is what the scikit-learn wrapper returns.
OBJECTIVES = {"binary:logistic", "multi:softprob", "reg:squarederror", "reg:absoluteerror"}

#: The objectives whose trees ``XgbForest`` walks (single-output ones).
WALKED = ("binary:logistic", "reg:squarederror", "reg:absoluteerror")

#: The per-node fields of a tree in the JSON description the walk reads (one value per node).
TREE_NODE_FIELDS = ("left_children", "right_children", "split_indices", "split_conditions",
                    "default_left", "split_type")  # fmt: skip

#: Its fields for the categories of categorical splits.
TREE_CATEGORY_FIELDS = ("categories", "categories_nodes", "categories_segments", "categories_sizes")


def description_problem(model: Any) -> str | None:
    """What in a booster's JSON description is not as the compiled path reads it; None when all
    is (a booster of another kind than trees is read no further than its name)."""
    try:
        learner = model["learner"]
        objective = learner["objective"]["name"]
        gbm = learner["gradient_booster"]
        params = learner["learner_model_param"]
        if int(params.get("num_target", 1)) == 1 and objective in WALKED:
            float(str(params["base_score"]).strip("[]"))
        if gbm["name"] != "gbtree":
            return None
        trees = gbm["model"]["trees"]
        int(gbm["model"]["gbtree_model_param"].get("num_parallel_tree", 1))
        if len(gbm["model"]["tree_info"]) != len(trees):
            return "its description's tree_info is not one group per tree"
    except (KeyError, TypeError, ValueError) as error:
        return f"its JSON description has no learner, objective, base score or trees ({error!r})"
    for tree in trees:
        if not isinstance(tree, dict) or any(f not in tree for f in TREE_CATEGORY_FIELDS):
            return "a tree in its description has no categories fields"
        sizes = {len(tree.get(f) or ()) for f in TREE_NODE_FIELDS}
        if len(sizes) != 1 or 0 in sizes:
            return f"a tree in its description lacks one of {', '.join(TREE_NODE_FIELDS)}"
    return None


def described(booster: Any) -> dict[str, Any] | None:
    """The booster's JSON description when it is as the compiled path reads it; else None, with
    a warning naming XGBoost and its version that says what is wrong."""
    try:
        model = json.loads(booster.save_raw("json"))
    except (AttributeError, TypeError, ValueError) as error:  # XGBoostError is a ValueError
        guarded("xgboost", f"its JSON description could not be read ({error!r})")
        return None
    return model if guarded("xgboost", description_problem(model)) else None


class XgbPredictor:
    """A fitted XGBoost booster predicting the matrix: its trees walked for a few rows, its own
    call for more."""

    kind = "xgboost"

    def __init__(
        self, booster: Any, iterations: tuple[int, int], binary: bool, forest: XgbForest | None
    ) -> None:
        self.booster, self.iterations, self.binary = booster, iterations, binary
        self.forest = forest  # None: the booster predicts every batch
        self.single: Any = None

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """The booster's probabilities or values for the rows of ``M``."""
        out = self.forest.predict(M) if self.forest is not None and len(M) <= FEW_ROWS else None
        if out is None:
            booster = self.single_threaded() if small else self.booster
            out = booster.inplace_predict(M, iteration_range=self.iterations)
        return two_columns(out, self.binary)

    def single_threaded(self) -> Any:
        """A copy of the booster that predicts on one thread."""
        # XGBoost takes its thread count from the booster, not the call: a copy set to one
        if self.single is None:
            single = self.booster.copy()
            single.set_param({"nthread": 1})
            self.single = single
        return self.single


class XgbForest:
    """An XGBoost booster's trees in flat arrays, walked for a few rows all at once.

    XGBoost's own call costs ~0.4 ms on one row whatever the trees (its Python wrapper, and a
    walk over every node of every tree for their depth); ``FlatTrees`` walks them all in
    ~0.05 ms on one row. What XGBoost computes, in its precision and order: the row in float32;
    missing goes the node's default side; a category in the node's set goes right, any other
    (or a negative one) left; a number goes left when ``<`` the threshold; the leaves summed
    tree after tree in float32 onto the base margin; for ``binary:logistic``,
    ``1 / (expf(min(-x, 88.7)) + 1)`` in float32 with the C library's ``expf``. Built only for
    single-output models of those objectives (binary:logistic, reg:squarederror,
    reg:absoluteerror) with one tree per round; anything else, or a model whose description has
    something unexpected, keeps the booster.
    """

    def __init__(self, model: dict[str, Any], end: int, expf: Any, logf: Any) -> None:
        learner = model["learner"]
        self.objective = learner["objective"]["name"]
        trees = learner["gradient_booster"]["model"]["trees"][:end]
        f32 = np.float32
        score = f32(float(str(learner["learner_model_param"]["base_score"]).strip("[]")))
        if self.objective == "binary:logistic":  # XGBoost's ProbToMargin, in float32
            score = f32(-logf(float(f32(f32(1.0) / score) - f32(1.0))))
        self.base, self.expf = score, expf
        # no bitsets (categories come as sets) and no values (a leaf's is its split condition)
        parts = linked_parts()
        roots, sets = [], {}
        offset = depth = 0
        for tree in trees:
            left = np.asarray(tree["left_children"], dtype=np.intp)
            right = np.asarray(tree["right_children"], dtype=np.intp)
            roots.append(offset)
            add_linked(parts, offset, left, right, tree["split_indices"],
                        np.asarray(tree["split_conditions"], dtype=np.float32),
                        tree["default_left"], tree["split_type"])  # fmt: skip
            segments, sizes = tree["categories_segments"], tree["categories_sizes"]
            for k, node in enumerate(tree["categories_nodes"]):
                sets[offset + node] = tree["categories"][segments[k] : segments[k] + sizes[k]]
            depth = max(depth, tree_depth(left, right))
            offset += len(left)
        f = {name: np.concatenate(p) for name, p in parts.items()}
        # each categorical node's side for every category code: in its set -> right; any other,
        # a negative one or one past the largest in any set -> left
        nodes, table_row = category_rows(f["categorical"])
        if set(sets) != set(nodes.tolist()):
            raise ValueError("categorical nodes without categories")
        width = 1 + max((max(v) for v in sets.values() if v), default=0)
        table = np.ones((len(nodes), width + 1), dtype=bool)
        for i, node in enumerate(nodes):
            table[i, np.asarray(sets[node], dtype=np.intp)] = False
        self.flat = FlatTrees(
            roots=np.asarray(roots, dtype=np.intp), depth=depth, value=f["threshold"],
            table=table if len(nodes) else None, table_row=table_row if len(nodes) else None,
            strict=True, wrap=False, **f,
        )  # fmt: skip

    @classmethod
    def of(cls, model: dict[str, Any], iterations: tuple[int, int]) -> XgbForest | None:
        """The flat form of a booster (its JSON description ``model``, see ``described``) over
        ``iterations``, or None when it is not one this reproduces (then the booster predicts)."""
        try:
            libm = _libm()
            if libm is None:
                return None
            learner = model["learner"]
            gbm = learner["gradient_booster"]
            if gbm.get("name") != "gbtree" or learner["objective"]["name"] not in WALKED:
                return None
            params = gbm["model"]["gbtree_model_param"]
            if int(params.get("num_parallel_tree", 1)) != 1:
                return None
            if any(int(g) != 0 for g in gbm["model"]["tree_info"]):
                return None
            if int(learner["learner_model_param"].get("num_target", 1)) != 1:
                return None
            end = iterations[1] or len(gbm["model"]["trees"])
            if iterations[0] != 0:
                return None
            return cls(model, end, libm.expf, libm.logf)
        except (OSError, AttributeError, KeyError, TypeError, ValueError):
            return None

    def predict(self, M: np.ndarray) -> np.ndarray | None:
        """What the booster's ``inplace_predict`` gives for the rows of ``M`` (float32); None if
        a walk did not end at a leaf (the booster answers)."""
        values = self.flat.leaves(M.astype(np.float32))
        if values is None:
            return None
        start = np.full((len(M), 1), self.base, dtype=np.float32)
        margin = np.cumsum(np.hstack([start, values]), axis=1, dtype=np.float32)[:, -1]
        if self.objective != "binary:logistic":
            return margin
        f32, one = np.float32, np.float32(1.0)
        return np.array(
            [one / (f32(self.expf(float(min(-m, f32(88.7))))) + one + f32(1e-16)) for m in margin],
            dtype=np.float32,
        )


@functools.cache
def _libm() -> Any:
    """The C math library with ``expf`` and ``logf`` in float32 (None where it is not found);
    loaded once per process."""
    import ctypes.util

    library = ctypes.util.find_library("m")
    if library is None:
        return None
    libm = ctypes.CDLL(library)
    libm.expf.restype = libm.logf.restype = ctypes.c_float
    libm.expf.argtypes = libm.logf.argtypes = [ctypes.c_float]
    return libm


def build(est: Any, stack: ColumnStack, task: Task) -> Built | None:
    """The compiled form of a fitted XGBoost model behind a trees-style stack, else None."""
    if not trees_style(stack) or not hasattr(est, "get_booster"):
        return None
    booster = est.get_booster()
    objective = est.get_xgb_params().get("objective")
    binary = task == "binary"
    if objective not in OBJECTIVES or (binary and len(est.classes_) != 2):
        return None
    model = described(booster)
    if model is None:
        return None
    best = getattr(est, "best_iteration", None)  # early-stopped: up to the best iteration
    iterations = (0, best + 1) if best is not None else (0, 0)
    return Built(XgbPredictor(booster, iterations, binary, XgbForest.of(model, iterations)))
