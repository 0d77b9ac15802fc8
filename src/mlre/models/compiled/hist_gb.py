"""scikit-learn's HistGradientBoosting predicted from the matrix, without its input step.

Its own input step (an OrdinalEncoder in a ColumnTransformer, ~5 ms on one row, several times the
trees' time) becomes a lookup from our encoder's codes to its ordinal codes and a column order
(``recode``); its trees are walked all at once for a few rows (``HistForest``) and by its own
routine for more. This reads scikit-learn's private parts (the fitted model's trees, baseline,
loss, bin mapper and input step, and its routine that walks one tree): ``guard`` checks them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlre.features.transformers import CategoryEncoder, ColumnStack
from mlre.models.compiled.flat_trees import FlatTrees, add_linked, category_rows, linked_parts
from mlre.models.compiled.matrix import trees_style
from mlre.models.compiled.predictor import FEW_ROWS, Built, Recode, fall_back, guarded
from mlre.spec import Task

#: The private parts of a fitted HistGradientBoosting model the compiled path reads.
PRIVATE = ("_predictors", "_baseline_prediction", "_loss", "_bin_mapper", "_preprocessor")

#: The fields of its trees' nodes (``TreePredictor.nodes``) the walk reads.
TREE_NODE_FIELDS = ("left", "right", "feature_idx", "num_threshold", "missing_go_to_left",
                    "is_categorical", "is_leaf", "value", "bitset_idx", "depth")  # fmt: skip


def internals_problem(est: Any) -> str | None:
    """What in a fitted HistGradientBoosting model, or in scikit-learn's routine that walks its
    trees, is not as the compiled path reads it; None when all is."""
    try:
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data
    except ImportError:
        return "no tree routine sklearn.ensemble._hist_gradient_boosting._predictor._predict_from_raw_data"
    if not callable(_predict_from_raw_data):
        return "_predict_from_raw_data is not a function"
    missing = [name for name in PRIVATE if not hasattr(est, name)]
    if missing:
        return f"a fitted HistGradientBoosting model has no {', '.join(missing)}"
    if getattr(est, "_in_fit", False):
        return "the HistGradientBoosting model is being fitted"
    k = int(est.n_trees_per_iteration_)
    base = est._baseline_prediction
    if not isinstance(base, np.ndarray) or base.shape != (1, k):
        return f"HistGradientBoosting's _baseline_prediction is not one row of {k} values"
    loss = est._loss
    needs = ["link.inverse", *(["predict_proba"] if hasattr(est, "classes_") else [])]
    if not all(callable(_attribute(loss, name)) for name in needs):
        return f"HistGradientBoosting's _loss has no {' or '.join(needs)}"
    if not callable(getattr(est._bin_mapper, "make_known_categories_bitsets", None)):
        return "HistGradientBoosting's _bin_mapper has no make_known_categories_bitsets"
    return _trees_problem(est._predictors, k) or _input_step_problem(est._preprocessor)


def _attribute(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name, None)
    return obj


def _trees_problem(predictors: Any, k: int) -> str | None:
    """What is unexpected in the fitted trees (a list per iteration of ``k`` trees, each with its
    nodes as a structured array and its categories' bitsets); None when nothing is."""
    if not isinstance(predictors, list) or any(
        not isinstance(it, list) or len(it) != k for it in predictors
    ):
        return f"HistGradientBoosting's _predictors is not a list per iteration of {k} trees"
    for tree in (tree for it in predictors for tree in it):
        nodes = getattr(tree, "nodes", None)
        names = nodes.dtype.names if isinstance(nodes, np.ndarray) else None
        lacking = [f for f in TREE_NODE_FIELDS if f not in (names or ())]
        if lacking:
            return f"HistGradientBoosting's tree nodes have no {', '.join(lacking)}"
        if not hasattr(tree, "raw_left_cat_bitsets"):
            return "HistGradientBoosting's trees have no raw_left_cat_bitsets"
    return None


def _input_step_problem(pre: Any) -> str | None:
    """What is unexpected in the model's input step (none, or a fitted ColumnTransformer of an
    ordinal "encoder" and the "numerical" columns); None when nothing is."""
    if pre is None:  # no categorical columns
        return None
    parts = [part for part in getattr(pre, "transformers_", None) or [] if part[0] != "remainder"]
    if [part[0] for part in parts] != ["encoder", "numerical"]:
        return "HistGradientBoosting's _preprocessor is not an encoder and the numerical columns"
    if not hasattr(parts[0][1], "categories_"):
        return "HistGradientBoosting's _preprocessor encoder has no categories_"
    return None


def guard(est: Any) -> bool:
    """Whether ``est`` has the private parts the compiled path reads; says what is wrong (a
    warning naming scikit-learn and its version) when not."""
    return guarded("sklearn", internals_problem(est))


class HistForest:
    """A fitted HistGradientBoosting model's trees, walked the fastest way for the batch.

    A few rows are walked down every tree at once from flat arrays (``FlatTrees``: ~0.05 ms for
    150 trees on one row, where scikit-learn's routine, called once per tree, takes 0.59 ms).
    The decisions are its routine's, node for node: missing goes the node's missing side; a
    category goes left when in the node's bitset, right when known in training, else the
    missing side; a number goes left when ``<=`` the threshold.
    Larger batches, and forests whose flat form would take more than ``FLAT_BYTES``, go tree
    by tree through its routine.
    """

    #: The most memory the flat form may take (arrays and category tables, ~80 bytes a node).
    FLAT_BYTES = 16 * 2**20

    def __init__(self, est: Any) -> None:
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data

        self.walk = _predict_from_raw_data
        self.n_outputs = int(est.n_trees_per_iteration_)
        self.known, self.f_idx_map = est._bin_mapper.make_known_categories_bitsets()
        self.trees = [
            (k, p.nodes, p.raw_left_cat_bitsets) for it in est._predictors for k, p in enumerate(it)
        ]
        self.flat: FlatTrees | None = None
        self.flat_built = False
        self.columns: list[np.ndarray] = []  # each output's trees, in order

    def add_to(self, raw: np.ndarray, M: np.ndarray) -> None:
        """Add every tree's value to ``raw`` (rows, outputs), tree after tree as scikit-learn's
        caller does: a running sum, so the float additions happen in the same order."""
        flat = self.flat_trees()
        values = None if flat is None else flat.leaves(M)
        if values is None:
            self.add_to_by_tree(raw, M, 1)
            return
        for k, columns in enumerate(self.columns):
            running = np.column_stack([raw[:, k], values[:, columns]])
            raw[:, k] = np.cumsum(running, axis=1)[:, -1]

    def add_to_by_tree(self, raw: np.ndarray, M: np.ndarray, threads: int) -> None:
        """``add_to`` by scikit-learn's routine, tree by tree (threads across rows)."""
        out = np.empty(len(M), dtype=np.float64)
        for k, nodes, left_bits in self.trees:
            self.walk(nodes, M, left_bits, self.known, self.f_idx_map, threads, out)
            raw[:, k] += out

    def flat_trees(self) -> FlatTrees | None:
        """All trees in flat arrays, built on first use; None when they would take more than
        ``FLAT_BYTES``."""
        if self.flat_built:
            return self.flat
        self.flat_built = True
        n_nodes = sum(len(nodes) for _, nodes, _ in self.trees)
        n_categorical = sum(int(nodes["is_categorical"].sum()) for _, nodes, _ in self.trees)
        if n_nodes * 60 + n_categorical * 257 > self.FLAT_BYTES:
            return None
        parts = linked_parts("value", "bitset")
        roots, klass, bitsets = [], [], []
        offset = bit_offset = depth = 0
        for k, nodes, left_bits in self.trees:
            roots.append(offset)
            klass.append(k)
            add_linked(parts, offset, nodes["left"], nodes["right"], nodes["feature_idx"],
                        nodes["num_threshold"].astype(np.float64), nodes["missing_go_to_left"],
                        nodes["is_categorical"], leaf=nodes["is_leaf"])  # fmt: skip
            parts["value"].append(nodes["value"].astype(np.float64))
            parts["bitset"].append(nodes["bitset_idx"].astype(np.intp) + bit_offset)
            bitsets.append(np.asarray(left_bits, dtype=np.uint32).reshape(-1, 8))
            offset += len(nodes)
            bit_offset += len(bitsets[-1])
            depth = max(depth, int(nodes["depth"].max()))
        f = {name: np.concatenate(p) for name, p in parts.items()}
        klass_ = np.asarray(klass, dtype=np.intp)
        self.columns = [np.flatnonzero(klass_ == k) for k in range(self.n_outputs)]
        table, table_row = self._category_table(f, np.concatenate(bitsets))
        f.pop("bitset")  # read into the table
        self.flat = FlatTrees(
            roots=np.asarray(roots, dtype=np.intp), depth=depth, table=table,
            table_row=table_row, strict=False, wrap=True, **f,
        )  # fmt: skip
        return self.flat

    def _category_table(self, f: dict[str, np.ndarray], left_bits: np.ndarray) -> tuple:
        """For each categorical node, the side each category code (0-255; 256 for a negative
        one) goes to, and each node's row in that table (None, None when there is none)."""
        nodes, rows = category_rows(f["categorical"])
        if not len(nodes):
            return None, None
        known_bits = np.asarray(self.known, dtype=np.uint32).reshape(-1, 8)
        known_row = np.asarray(self.f_idx_map, dtype=np.intp)
        codes = np.arange(256)
        word, bit = codes >> 5, (codes & 31).astype(np.uint32)
        table = np.zeros((len(nodes), 257), dtype=bool)
        for i, j in enumerate(nodes):
            in_left = (left_bits[f["bitset"][j], word] >> bit) & 1
            known = (known_bits[known_row[f["feature"][j]], word] >> bit) & 1
            missing_side = f["missing_left"][j]
            table[i, :256] = np.where(in_left == 1, True, np.where(known == 1, False, missing_side))
            table[i, 256] = missing_side
        return table, rows


class HistGbPredictor:
    """A fitted HistGradientBoosting model predicting the recoded matrix."""

    kind = "hist_gb"

    def __init__(self, est: Any, task: Task) -> None:
        self.est, self.task = est, task
        self.forest = HistForest(est)

    def predict(self, M: np.ndarray, small: bool) -> np.ndarray:
        """The model's probabilities or values for the rows of ``M``."""
        # what the estimator's predict does after its input step: the baseline plus each tree's
        # value, added tree by tree in the same order, then its loss's inverse link
        est = self.est
        base = est._baseline_prediction
        raw = np.zeros((len(M), est.n_trees_per_iteration_), dtype=base.dtype, order="F")
        raw += base
        if len(M) <= FEW_ROWS:
            self.forest.add_to(raw, M)
        else:
            from mlre.models.families.base import n_threads

            self.forest.add_to_by_tree(raw, M, 1 if small else n_threads())
        if self.task == "regression":
            return np.asarray(est._loss.link.inverse(raw.ravel()), dtype=np.float64)
        return np.asarray(est._loss.predict_proba(raw), dtype=np.float64)


def recode(stack: ColumnStack, est: Any) -> Recode | None:
    """The lookups and column order standing in for a fitted HistGradientBoosting's input step,
    or None when that step is not the one this reproduces."""
    pre = getattr(est, "_preprocessor", None)
    names = list(getattr(stack, "feature_names_out_", []))
    if pre is None:  # no categorical columns: it takes the stack's columns as they are
        if getattr(est, "n_features_in_", None) != len(names):
            return None
        return {}, np.arange(len(names))
    parts = [(n, t, np.asarray(c)) for n, t, c in pre.transformers_ if n != "remainder"]
    if [n for n, _, _ in parts] != ["encoder", "numerical"] or len(names) != len(parts[0][2]):
        return None
    mask = parts[0][2].astype(bool)
    if not np.array_equal(~mask, parts[1][2].astype(bool)):
        return None
    encoder = parts[0][1]
    # which of our encoders made each output column, and its levels
    levels: dict[int, list[str]] = {}
    position = 0
    for _, fitted, columns in stack.parts_:
        if isinstance(fitted, CategoryEncoder):
            for c in columns:
                levels[position] = fitted.levels_[c]
                position += 1
        elif fitted is None:
            position += len(columns)
        else:
            position += len(fitted.get_feature_names_out(columns))
    categorical = np.flatnonzero(mask)
    if position != len(names) or set(categorical) != set(levels):
        return None
    luts: dict[int, np.ndarray] = {}
    for j, known in zip(categorical.tolist(), encoder.categories_, strict=True):
        index = {v: float(i) for i, v in enumerate(known) if isinstance(v, str)}
        luts[j] = np.array([index.get(v, np.nan) for v in levels[j]] + [np.nan])
    order = np.concatenate([categorical, np.flatnonzero(~mask)])
    return luts, order


def build(est: Any, stack: ColumnStack, task: Task) -> Built | None:
    """The compiled form of a fitted HistGradientBoosting model behind a trees-style stack, else
    None."""
    if not trees_style(stack) or not guard(est):
        return None
    codes = recode(stack, est)
    if codes is None:
        return None
    try:
        predictor = HistGbPredictor(est, task)
    except (ImportError, AttributeError, KeyError, ValueError) as error:
        fall_back("sklearn", f"HistGradientBoosting's trees could not be read ({error!r})")
        return None
    return Built(predictor, codes)
