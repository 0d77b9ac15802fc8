"""``mlre explain``: why a registered model predicts what it predicts for given rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlre.errors import InputError

if TYPE_CHECKING:
    from mlre.explain.shapley import RowExplanation

#: Rows explained when the caller does not say: each costs a few hundred model evaluations.
DEFAULT_ROWS = 10


@dataclass
class Explanations:
    """Per-row attributions of a registered model, and what was noticed about the input."""

    model_uri: str
    model_version: str | None
    rows: list[RowExplanation]
    total_rows: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready, each row with its ``top`` largest contributions."""
        return {
            "model_uri": self.model_uri,
            "model_version": self.model_version,
            "explained_rows": len(self.rows),
            "total_rows": self.total_rows,
            "warnings": self.warnings,
            "rows": [r.to_dict(top) for r in self.rows],
        }


def explain_predictions(
    model_uri: str,
    data: str | Path | pd.DataFrame,
    *,
    rows: int | None = DEFAULT_ROWS,
    seed: int = 0,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Explanations:
    """Shapley attributions of every input column for the first ``rows`` rows of ``data``.

    The model's artifact is hash-checked before it is loaded and the input is checked against
    its data contract, as for ``mlre predict``.
    """
    from mlre.api.prediction import checked_input
    from mlre.explain.shapley import explain_rows
    from mlre.track.registry import load_model

    if rows is not None and rows < 1:
        raise InputError(f"rows must be at least 1, not {rows}")
    loaded = load_model(model_uri)
    model = loaded.model
    if getattr(model, "background", None) is None:
        raise InputError(
            "this model was saved without the background rows explanations need",
            hint="train it again with this version of mlre",
        )
    features, warnings = checked_input(model, data, encoding=encoding, delimiter=delimiter)
    chosen = features.head(rows) if rows else features
    explained = explain_rows(model, chosen, seed=seed)
    return Explanations(model_uri, loaded.version, explained, len(features), warnings)
