"""scikit-learn's random forests and extra trees predicted from the matrix, without joblib.

A forest sits behind its category-codes step, whose output is the matrix's own category codes;
small batches walk its trees from flat arrays or predict with one worker (``Forest``). The walk
reads each fitted tree's node arrays (``tree_``): ``guard`` checks them.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from mlre.features.transformers import ColumnStack
from mlre.models.compiled.flat_trees import FlatTrees, add_linked, linked_parts
from mlre.models.compiled.matrix import trees_style
from mlre.models.compiled.predictor import FEW_ROWS, Built, fall_back, guarded
from mlre.spec import Task

#: The forests compiled, by class name.
FORESTS = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
           "ExtraTreesRegressor")  # fmt: skip

#: The node arrays of a fitted tree (``tree_``) the walk reads, one value per node.
TREE_ARRAYS = ("children_left", "children_right", "feature", "threshold", "missing_go_to_left")


def internals_problem(forest: Any) -> str | None:
    """What in a fitted forest's trees is not as the walk reads it (each tree's ``tree_`` with
    its node arrays, leaf values and depth); None when all is."""
    trees = getattr(forest, "estimators_", None)
    if not isinstance(trees, list) or not trees:
        return f"a fitted {type(forest).__name__} has no list of trees estimators_"
    for tree in trees:
        t = getattr(tree, "tree_", None)
        n = getattr(t, "node_count", None)
        if not isinstance(n, int):
            return "a fitted tree has no tree_ with a node_count"
        for name in TREE_ARRAYS:
            array = getattr(t, name, None)
            if array is None or np.shape(array) != (n,):
                return f"a fitted tree's tree_.{name} is not one value per node"
        value = getattr(t, "value", None)
        if value is None or np.ndim(value) != 3 or np.shape(value)[0] != n:
            return "a fitted tree's tree_.value is not (nodes, outputs, classes)"
        if not isinstance(getattr(t, "max_depth", None), int):
            return "a fitted tree's tree_ has no max_depth"
    return None


def guard(forest: Any) -> bool:
    """Whether ``forest``'s trees are as the walk reads them; says what is wrong (a warning
    naming scikit-learn and its version) when not."""
    return guarded("sklearn", internals_problem(forest))


class Forest:
    """A fitted random forest or extra-trees model of scikit-learn, predicted without joblib for
    small batches.

    scikit-learn's forest predicts each tree in a joblib task: ~15 ms on one row for 150 trees
    with two workers, nearly all of it dispatch. Up to ``FEW_ROWS`` rows walk the trees from flat
    arrays (``FlatTrees``; a number goes left when ``<=`` its threshold, in float32 as the forest
    reads its input, a missing value the node's missing side); their leaf values are added tree
    after tree onto zeros and divided by the number of trees, as the forest does with one worker
    (with more, its order of addition varies from call to call). Up to ``SMALL_BATCH`` rows go
    through the forest with one worker, more through the forest as fitted. Forests whose flat
    form would take more than ``FLAT_BYTES`` keep the forest's own walk.
    """

    #: The most memory the flat form may take (~50 bytes a node plus its values): a bagged
    #: forest of 2,048-leaf trees has one per fold in the serving process.
    FLAT_BYTES = 16 * 2**20

    kind = "forest"

    def __init__(self, est: Any) -> None:
        # shallow copies share the fitted trees; without the fitted column names, which a
        # matrix does not carry (scikit-learn would warn on every call)
        self.est, self.single = copy.copy(est), copy.copy(est)
        self.single.n_jobs = 1
        for copied in (self.est, self.single):
            copied.__dict__.pop("feature_names_in_", None)
        self.classify = hasattr(est, "classes_")
        self.flat: FlatTrees | None = None
        self.values: np.ndarray | None = None  # (nodes, outputs): what each leaf adds
        self.flat_built = False

    def flat_trees(self) -> FlatTrees | None:
        """The trees in flat arrays, built on first use by a few rows; None when they would
        take more than ``FLAT_BYTES`` (or the forest has several outputs)."""
        if self.flat_built:
            return self.flat
        self.flat_built = True
        est = self.est
        trees = [e.tree_ for e in est.estimators_]
        n_nodes = sum(t.node_count for t in trees)
        width = int(est.n_classes_) if self.classify else 1
        if n_nodes * (50 + 8 * width) > self.FLAT_BYTES or int(est.n_outputs_) != 1:
            return None
        parts = linked_parts()
        roots, values = [], []
        offset = depth = 0
        for t in trees:
            roots.append(offset)
            leaf = add_linked(parts, offset, t.children_left, t.children_right, t.feature,
                               t.threshold.astype(np.float64), t.missing_go_to_left)  # fmt: skip
            values.append(t.value[:, 0, :width])  # what the tree's predict reads for a leaf
            depth = max(depth, int(t.max_depth))
            offset += len(leaf)
        f = {name: np.concatenate(p) for name, p in parts.items()}
        self.values = np.concatenate(values).astype(np.float64)
        self.flat = FlatTrees(
            roots=np.asarray(roots, dtype=np.intp), depth=depth, value=np.arange(offset),
            table=None, table_row=None, strict=False, wrap=False, **f,
        )  # fmt: skip
        return self.flat

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """Class probabilities (rows, classes) or regression values."""
        # what the forest's input check makes of it; compared with the float64 thresholds in
        # float64, as the forest's own walk compares
        X = M.astype(np.float32)
        flat = self.flat_trees() if len(X) <= FEW_ROWS else None
        nodes = None if flat is None else flat.nodes(X)
        if flat is None or nodes is None or self.values is None:
            est = self.single if small else self.est
            return est.predict_proba(X) if self.classify else est.predict(X)
        leaves = self.values[nodes]  # (rows, trees, outputs)
        running = np.concatenate([np.zeros_like(leaves[:, :1]), leaves], axis=1)
        out = np.cumsum(running, axis=1)[:, -1] / len(flat.roots)
        return out if self.classify else out[:, 0]


def build(est: Any, stack: ColumnStack, task: Task) -> Built | None:
    """The compiled form of a scikit-learn forest behind its category-codes step (``est``, a
    two-step pipeline) and a trees-style stack, else None."""
    from mlre.models.adapters import CategoryCodes

    inner = getattr(est, "steps", None)
    if not trees_style(stack) or inner is None or len(inner) != 2:
        return None
    if not isinstance(inner[0][1], CategoryCodes):
        return None
    forest = inner[1][1]  # the codes its step gives are the matrix's own
    if type(forest).__name__ not in FORESTS or type(forest).__module__.split(".")[0] != "sklearn":
        return None
    if task == "binary" and len(forest.classes_) != 2:
        return None
    if not guard(forest):
        return None
    try:
        return Built(Forest(forest))
    except (AttributeError, TypeError, ValueError) as error:
        fall_back("sklearn", f"{type(forest).__name__} could not be copied ({error!r})")
        return None
