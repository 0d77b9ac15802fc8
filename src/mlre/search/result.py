"""What a search produced: every trial, the final ensemble's members and weights, and (for a
stacked model) what its second layer reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlre.models.final import Member
from mlre.search.trial import TrialResult

OnTrial = Callable[[TrialResult], None]


@dataclass
class SearchResult:
    """Every trial, the ensemble weights over the kept ones, and the final model's members."""

    trials: list[TrialResult]
    members: list[Member]
    loss: float
    best_single_loss: float
    ensemble: dict[int, float] = field(default_factory=dict)  # trial id -> weight, as members
    seconds: float = 0.0
    executor: dict[str, Any] = field(default_factory=dict)  # where the trials were fitted
    # a stacked model: member by member, the weights of the level-one blend, and that blend's
    # out-of-fold predictions on the search's rows (what a refit of the second layer reads)
    level_one: list[float] | None = None
    level_one_oof: np.ndarray | None = None
    # the final model's out-of-fold predictions (its estimate's rows: ``validated_rows``)
    oof: np.ndarray | None = None

    @property
    def finished(self) -> list[TrialResult]:
        """Trials that completed every fold."""
        return [t for t in self.trials if t.status == "ok"]
