"""Many trees' nodes in flat arrays, walked for a few rows all at once (``FlatTrees``).

Shared by the libraries whose trees mlre walks itself (scikit-learn's HistGradientBoosting and
forests, XGBoost): each library's module reads its trees into these arrays, in its own rules for
thresholds, missing values and categories, and the walk gives the leaves its own routine reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The node arrays a forest's trees are read into (``linked_parts``).
NODE_FIELDS = (
    "feature", "threshold", "missing_left", "left", "right", "value", "categorical", "bitset", "leaf",
)  # fmt: skip


@dataclass
class FlatTrees:
    """Many trees' nodes in flat arrays, walked for a few rows all at once, a level per step.

    Leaves point at themselves. A number goes left when below its threshold (``<=`` when not
    ``strict``), a missing value the node's missing side, a category the side its node's row of
    ``table`` gives for its code (the last column: a negative code, or with ``wrap`` off one past
    the table; with ``wrap`` on a code is read as a uint8, as scikit-learn's routine reads it).
    """

    roots: np.ndarray
    depth: int
    leaf: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    categorical: np.ndarray
    table: np.ndarray | None  # (categorical nodes, codes + 1) -> goes left
    table_row: np.ndarray | None  # each node's row in ``table``
    strict: bool
    wrap: bool
    # the categorical nodes' features (as positions in ``category_features``) and their rows'
    # starts in ``table`` read flat, for ``row``
    category_features: np.ndarray = field(init=False, repr=False)
    node_category: np.ndarray = field(init=False, repr=False)
    category_start: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.table is None:
            return
        assert self.table_row is not None
        nodes = np.flatnonzero(self.categorical)
        self.category_features, self.node_category = np.unique(
            self.feature[nodes], return_inverse=True
        )
        self.category_start = self.table_row[nodes] * self.table.shape[1]

    def leaves(self, X: np.ndarray) -> np.ndarray | None:
        """Each row's leaf value in each tree, (rows, trees); None if a walk did not end at a
        leaf (trees read wrong: the caller's library answers instead)."""
        nodes = self.nodes(X)
        return None if nodes is None else self.value[nodes]

    def nodes(self, X: np.ndarray) -> np.ndarray | None:
        """Each row's leaf in each tree (flat node indices), (rows, trees), or None (as
        ``leaves``). Row by row (``row``) costs about a nanosecond per node of the forest, level
        by level (``by_level``) about 12 us per level; the cheaper estimate walks."""
        if len(X) * (len(self.feature) / 400 + 10) <= self.depth * 12:
            found = [self.row(x) for x in X]
            walked = [f for f in found if f is not None]
            return None if len(walked) < len(found) else np.vstack(walked)
        return self.by_level(X)

    def by_level(self, X: np.ndarray) -> np.ndarray | None:
        """``nodes`` for all rows together, walking down a level per step."""
        n, n_trees = len(X), len(self.roots)
        node = np.tile(self.roots, n)  # one walker per (row, tree), row-major
        row = np.repeat(np.arange(n, dtype=np.intp), n_trees)
        active = np.arange(n * n_trees)
        for _ in range(self.depth):
            here = node[active]
            done = self.leaf[here]
            if done.any():  # walkers that reached a leaf stop: many trees are shallow
                active, here = active[~done], here[~done]
                if not len(active):
                    break
            x = X[row[active], self.feature[here]]
            threshold = self.threshold[here]
            left = x < threshold if self.strict else x <= threshold
            missing = np.isnan(x)
            if self.table is not None and self.table_row is not None:
                cat = np.flatnonzero(self.categorical[here] & ~missing)
                if len(cat):
                    left[cat] = self.table[self.table_row[here[cat]], self._columns(x[cat])]
            if missing.any():
                left[missing] = self.missing_left[here[missing]]
            node[active] = np.where(left, self.left[here], self.right[here])
        if not self.leaf[node].all():
            return None
        return node.reshape(n, n_trees)

    def row(self, x: np.ndarray) -> np.ndarray | None:
        """One row's leaf in each tree, or None (as ``nodes``). Every node decides at once, then
        each tree follows its decisions from the root, a level per step: a few numpy calls over
        all nodes and one per level, where the walk of many rows makes about fifteen a level.
        150 trees of ~60 nodes on one row: ~45 us, against ~100 us (six levels) and ~250 us
        (twenty) level by level."""
        at = x[self.feature]
        left = at < self.threshold if self.strict else at <= self.threshold
        missing = np.isnan(x)
        if self.table is not None:
            code = x[self.category_features]
            code = np.where(np.isnan(code), -1.0, code)  # a missing value's side comes below
            column = self._columns(code)[self.node_category]
            left[self.categorical] = self.table.ravel()[self.category_start + column]
        if missing.any():
            left = np.where(missing[self.feature], self.missing_left, left)
        child = np.where(left, self.left, self.right)
        node = self.roots
        for _ in range(self.depth):
            node = child[node]
        if not self.leaf[node].all():
            return None
        return node

    def _columns(self, code: np.ndarray) -> np.ndarray:
        assert self.table is not None
        last = self.table.shape[1] - 1
        negative = code < 0
        column = np.where(negative, 0.0, code).astype(np.int64)
        column = column & 0xFF if self.wrap else np.minimum(column, last)
        column[negative] = last
        return column


def _linked(left: np.ndarray, right: np.ndarray, leaf: np.ndarray, offset: int) -> tuple:
    """A tree's child links as flat indices, its leaves pointing at themselves."""
    index = np.arange(offset, offset + len(leaf))
    return np.where(leaf, index, left + offset), np.where(leaf, index, right + offset)


def linked_parts(*extra: str) -> dict[str, list[np.ndarray]]:
    """Per-tree node arrays to concatenate: those ``add_linked`` fills, and ``extra`` ones
    (HistGradientBoosting's leaf values and bitsets; XGBoost's leaf value is its threshold,
    forests keep a table of theirs)."""
    return {name: [] for name in NODE_FIELDS if name not in ("bitset", "value") or name in extra}


def add_linked(
    parts: dict[str, list[np.ndarray]],
    offset: int,
    left: Any,
    right: Any,
    feature: Any,
    threshold: np.ndarray,
    missing_left: Any,
    categorical: Any = None,
    leaf: Any = None,
) -> np.ndarray:
    """Append one tree's node fields to ``parts``; its leaf mask (given, or where the child
    links are -1)."""
    left, right = np.asarray(left, dtype=np.intp), np.asarray(right, dtype=np.intp)
    leaf = left == -1 if leaf is None else np.asarray(leaf, dtype=bool)
    links = _linked(left, right, leaf, offset)
    parts["left"].append(links[0])
    parts["right"].append(links[1])
    parts["leaf"].append(leaf)
    parts["feature"].append(np.where(leaf, 0, feature).astype(np.intp))
    parts["threshold"].append(threshold)
    parts["missing_left"].append(np.asarray(missing_left, dtype=bool))
    split = np.zeros(len(leaf), dtype=bool) if categorical is None else categorical
    parts["categorical"].append(np.asarray(split, dtype=bool) & ~leaf)
    return leaf


def category_rows(categorical: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The categorical nodes, and each node's row in a table of them."""
    nodes = np.flatnonzero(categorical)
    rows = np.zeros(len(categorical), dtype=np.intp)
    rows[nodes] = np.arange(len(nodes))
    return nodes, rows


def tree_depth(left: np.ndarray, right: np.ndarray) -> int:
    """The longest path from node 0 to a leaf (children -1)."""
    depth, level = 0, [0]
    while True:
        inner = [i for i in level if left[i] != -1]
        if not inner:
            return depth
        level = [int(c) for i in inner for c in (left[i], right[i])]
        depth += 1
