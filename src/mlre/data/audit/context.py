"""What every audit check reads: the table, its profile, the target and the spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from mlre.data.profile import ColumnProfile
from mlre.data.roles import Role
from mlre.spec import Task


@dataclass
class AuditContext:
    """The inputs of one audit, with the derived quantities that several checks share."""

    df: pd.DataFrame
    profiles: dict[str, ColumnProfile]
    target: str | None = None
    task: Task | None = None
    test: pd.DataFrame | None = None
    seed: int = 0
    declared_ids: tuple[str, ...] = ()
    #: The column the spec says orders the rows in time, if any.
    time_column: str | None = None
    #: Rows used by the model-based checks (leakage, label issues) on large tables.
    model_sample: int = 20_000
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Rows in the training table."""
        return len(self.df)

    @cached_property
    def features(self) -> list[str]:
        """Columns other than the target."""
        return [c for c in self.df.columns if c != self.target]

    @cached_property
    def model_features(self) -> list[str]:
        """Features a model could use: not identifiers, not free text, not constant."""
        return [
            c
            for c in self.features
            if self.profiles[c].role not in (Role.IDENTIFIER, Role.TEXT)
            and self.profiles[c].n_unique > 1
        ]

    def role(self, column: str) -> Role:
        """The inferred role of a column."""
        return self.profiles[column].role

    @cached_property
    def _hashes(self) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """One pass over the columns: row hashes (all columns, features only) and column digests."""
        rows = np.full(len(self.df), _SEED, dtype=np.uint64)
        feature_rows = rows.copy()
        digests: dict[str, int] = {}
        for col in self.df.columns:
            h = hash_column(self.df[col])
            rows = _combine(rows, h)
            if col != self.target:
                feature_rows = _combine(feature_rows, h)
            digests[col] = int(h.sum(dtype=np.uint64))
        return rows, feature_rows, digests

    @property
    def row_hashes(self) -> np.ndarray:
        """A 64-bit hash of every training row (all columns)."""
        return self._hashes[0]

    @property
    def feature_row_hashes(self) -> np.ndarray:
        """A 64-bit hash of every training row over its features only (equal to ``hash_rows``)."""
        return self._hashes[1]

    @property
    def column_digests(self) -> dict[str, int]:
        """A 64-bit digest of each column's values: equal columns have equal digests."""
        return self._hashes[2]

    @cached_property
    def labelled(self) -> pd.Series:
        """Boolean mask of rows whose target is present."""
        if self.target is None:
            return pd.Series(True, index=self.df.index)
        return self.df[self.target].notna()

    def sample_index(self, n: int, stratify: pd.Series | None = None) -> np.ndarray:
        """Positions of up to ``n`` labelled rows drawn at random (stratified when asked)."""
        positions = np.flatnonzero(self.labelled.to_numpy())
        if len(positions) <= n:
            return positions
        rng = np.random.default_rng(self.seed)
        if stratify is None:
            return np.sort(rng.choice(positions, n, replace=False))
        labels = stratify.to_numpy()[positions]
        picked = []
        for value in pd.unique(labels):
            members = positions[labels == value]
            k = max(1, round(n * len(members) / len(positions)))
            picked.append(rng.choice(members, min(k, len(members)), replace=False))
        return np.sort(np.concatenate(picked))


_SEED = np.uint64(0xCBF29CE484222325)
_PRIME = np.uint64(0x100000001B3)


def hash_column(s: pd.Series) -> np.ndarray:
    """A 64-bit hash of each value (missing values hash alike; unhashable values by their text)."""
    try:
        return pd.util.hash_pandas_object(s, index=False).to_numpy()
    except TypeError:
        return pd.util.hash_pandas_object(s.astype(str), index=False).to_numpy()


def _combine(acc: np.ndarray, h: np.ndarray) -> np.ndarray:
    # FNV-style mixing; uint64 arithmetic wraps around, which is what a hash wants
    return (acc ^ h) * _PRIME


def hash_rows(df: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per row, equal for rows with equal values (missing values compare equal)."""
    acc = np.full(len(df), _SEED, dtype=np.uint64)
    for col in df.columns:
        acc = _combine(acc, hash_column(df[col]))
    return acc
