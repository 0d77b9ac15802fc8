"""What every audit check reads: the table, its profile, the target and the spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from mlre.data.profile import ColumnProfile
from mlre.data.roles import Role


@dataclass
class AuditContext:
    """The inputs of one audit, with the derived quantities that several checks share."""

    df: pd.DataFrame
    profiles: dict[str, ColumnProfile]
    target: str | None = None
    task: str | None = None
    test: pd.DataFrame | None = None
    seed: int = 0
    declared_ids: tuple[str, ...] = ()
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
    def row_hashes(self) -> np.ndarray:
        """A 64-bit hash of every training row (all columns)."""
        return hash_rows(self.df)

    @cached_property
    def feature_row_hashes(self) -> np.ndarray:
        """A 64-bit hash of every training row over its features only."""
        return hash_rows(self.df[self.features]) if self.target else self.row_hashes

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


def hash_rows(df: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash per row, equal for rows with equal values (missing values compare equal)."""
    return pd.util.hash_pandas_object(df, index=False).to_numpy()
