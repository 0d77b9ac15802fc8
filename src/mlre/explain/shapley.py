"""Why the served model predicts what it predicts, row by row: Shapley values of every input
column, computed by the ``shap`` library's permutation explainer on the whole ensemble.

The explainer sees the model as one function of the raw input columns, so the attributions are
exact to what is served (preprocessing and every ensemble member included) and add up: a row's
base value plus its attributions is its prediction. A hidden column takes its values from
background rows of the training data kept with the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Background rows over which a hidden column's values are averaged.
BACKGROUND_ROWS = 50


@dataclass
class RowExplanation:
    """One row: what was predicted, from what base value, and each column's contribution."""

    row: int
    prediction: Any
    output: str  # what the contributions explain, e.g. "P(income = '>50K')"
    value: float  # that output's value for the row
    base_value: float
    contributions: list[dict[str, Any]] = field(default_factory=list)  # largest first

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        """JSON-ready, with the ``top`` largest contributions and the rest summed."""
        shown = self.contributions[:top] if top else self.contributions
        rest = sum(c["contribution"] for c in self.contributions[len(shown) :])
        return {
            "row": self.row,
            "prediction": _plain(self.prediction),
            "output": self.output,
            "value": self.value,
            "base_value": self.base_value,
            "contributions": shown,
            "other_columns": rest,
        }


class _Codec:
    """Raw columns as numbers and back: shap's maskers need a numeric matrix."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.columns = list(frame.columns)
        self.dtypes = frame.dtypes
        self.vocab: dict[str, np.ndarray] = {}
        for c in self.columns:
            if not pd.api.types.is_numeric_dtype(frame[c].dtype) or pd.api.types.is_bool_dtype(
                frame[c].dtype
            ):
                self.vocab[c] = np.array(pd.unique(frame[c].astype(object)), dtype=object)

    def extend(self, frame: pd.DataFrame) -> None:
        """Make room for values of ``frame`` the background never had."""
        for c, known in self.vocab.items():
            new = [v for v in pd.unique(frame[c].astype(object)) if not _isin(v, known)]
            if new:
                self.vocab[c] = np.concatenate([known, np.array(new, dtype=object)])

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.columns)), dtype=float)
        for j, c in enumerate(self.columns):
            if c in self.vocab:
                lookup = {_key(v): i for i, v in enumerate(self.vocab[c])}
                out[:, j] = [lookup[_key(v)] for v in frame[c].astype(object)]
            else:
                out[:, j] = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        data = {}
        for j, c in enumerate(self.columns):
            if c in self.vocab:
                data[c] = pd.Series(self.vocab[c][matrix[:, j].astype(int)], dtype=object)
                if isinstance(self.dtypes[c], pd.CategoricalDtype):
                    data[c] = data[c].astype(self.dtypes[c])
            else:  # numbers come back as floats; the model's own coercion takes them as such
                data[c] = pd.Series(matrix[:, j])
        return pd.DataFrame(data)


def _key(value: Any) -> Any:
    return (
        "__missing__" if value is None or (isinstance(value, float) and np.isnan(value)) else value
    )


def _isin(value: Any, known: np.ndarray) -> bool:
    return any(_key(value) == _key(k) for k in known)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def background_sample(X: pd.DataFrame, seed: int = 0, rows: int = BACKGROUND_ROWS) -> pd.DataFrame:
    """The rows kept with a model to stand in for hidden columns."""
    if len(X) <= rows:
        return X.reset_index(drop=True).copy()
    return X.sample(n=rows, random_state=seed).reset_index(drop=True)


def explain_rows(
    model: Any,
    X: pd.DataFrame,
    *,
    background: pd.DataFrame | None = None,
    seed: int = 0,
    max_evals: int | None = None,
) -> list[RowExplanation]:
    """Shapley values of every input column for each row of ``X``.

    Classification explains the probability of the class predicted for the row (binary: of the
    positive class, the second in ``classes_``); regression the predicted value.
    """
    import shap

    background = background if background is not None else getattr(model, "background", None)
    if background is None or len(background) == 0:
        raise ValueError("the model keeps no background rows to explain against")
    columns = list(background.columns)
    X = X[columns].reset_index(drop=True)
    codec = _Codec(background)
    codec.extend(X)
    regression = getattr(model, "task", None) == "regression"

    def f(matrix: np.ndarray) -> np.ndarray:
        frame = codec.decode(matrix)
        return model.predict(frame) if regression else model.predict_proba(frame)

    explainer = shap.PermutationExplainer(
        f, shap.maskers.Independent(codec.encode(background), max_samples=len(background)),
        seed=seed,
    )  # fmt: skip
    evals = max_evals or max(2 * len(columns) + 1, 10 * 2 * len(columns))
    out = explainer(codec.encode(X), max_evals=evals, silent=True)
    values = np.asarray(out.values)
    bases = np.asarray(out.base_values)
    explained = []
    if regression:
        preds = model.predict(X)
    else:
        proba = model.predict_proba(X)
        classes = list(model.classes_)
    for i in range(len(X)):
        if regression:
            k, row_values, base = None, values[i], float(np.ravel(bases)[i])
            prediction, value, output = preds[i], float(preds[i]), "predicted value"
        else:
            k = 1 if len(classes) == 2 else int(proba[i].argmax())
            row_values, base = values[i][:, k], float(np.asarray(bases[i]).ravel()[k])
            prediction = classes[int(proba[i].argmax())]
            value, output = float(proba[i, k]), f"P({classes[k]})"
        contributions = [
            {"feature": c, "value": _plain(X.at[i, c]), "contribution": float(v)}
            for c, v in zip(columns, row_values, strict=True)
        ]
        contributions.sort(key=lambda r: -abs(r["contribution"]))
        explained.append(
            RowExplanation(
                row=i,
                prediction=_plain(prediction),
                output=output,
                value=value,
                base_value=base,
                contributions=contributions,
            )
        )
    return explained
