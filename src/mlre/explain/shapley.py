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

from mlre.values import plain

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
            "prediction": plain(self.prediction),
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
            {"feature": c, "value": plain(X.at[i, c]), "contribution": float(v)}
            for c, v in zip(columns, row_values, strict=True)
        ]
        contributions.sort(key=lambda r: -abs(r["contribution"]))
        explained.append(
            RowExplanation(
                row=i,
                prediction=plain(prediction),
                output=output,
                value=value,
                base_value=base,
                contributions=contributions,
            )
        )
    return explained


@dataclass
class ShapleySample:
    """Shapley values of many rows at once: ``values[i, j, k]`` is column ``j``'s contribution to
    output ``k`` of row ``i``; ``base[k]`` the average output over the background rows."""

    columns: list[str]
    outputs: list[str]
    values: np.ndarray
    base: np.ndarray
    permutations: int
    background_rows: int


def _output(model: Any, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """What is explained, as a (rows, outputs) matrix: the prediction (regression), the positive
    class's probability (binary) or every class's probability (multiclass)."""
    if getattr(model, "task", None) == "regression":
        return np.asarray(model.predict(frame), dtype=float).reshape(-1, 1), ["predicted value"]
    proba = np.asarray(model.predict_proba(frame), dtype=float)
    classes = [str(c) for c in model.classes_]
    if proba.shape[1] == 2:
        return proba[:, 1:], [f"P({classes[1]})"]
    return proba, [f"P({c})" for c in classes]


def sampled_shapley(
    model: Any,
    X: pd.DataFrame,
    background: pd.DataFrame,
    *,
    permutations: int = 2,
    seed: int = 0,
    max_rows_per_call: int = 100_000,
) -> ShapleySample:
    """Shapley values of every column for every row of ``X``, estimated by antithetic
    permutation sampling against ``background`` rows (interventional, as shap's Independent
    masker), with every row of ``X`` in the same few model calls.

    Written here because shap's model-agnostic explainers call the model once or more per
    explained row, and an ensemble's fixed cost per call (each pipeline's pandas work) then makes
    a few hundred rows take minutes; batching all rows into one call per permutation makes them
    take seconds. Each permutation's values add up exactly (base plus contributions equals the
    prediction); more permutations lower the sampling noise. ``permutations`` above one is
    rounded up to an even number: each random order is followed by its reverse.
    """
    columns = list(background.columns)
    X = X[columns].reset_index(drop=True)
    Z = background[columns].reset_index(drop=True)
    n, b, m = len(X), len(Z), len(columns)
    if n == 0 or b == 0 or m == 0:
        raise ValueError("Shapley values need rows to explain, background rows and columns")
    rng = np.random.default_rng(seed)
    rounds = 1 if permutations == 1 else permutations + permutations % 2
    # row r of one call: (state k, explained row i, background row j), k = 0..m columns switched
    states = m + 1
    k_idx = np.repeat(np.arange(states), n * b)
    i_idx = np.tile(np.repeat(np.arange(n), b), states)
    j_idx = np.tile(np.arange(b), states * n)
    x_cols = {c: _column_values(X[c]) for c in columns}
    z_cols = {c: _column_values(Z[c]) for c in columns}
    kinds = {c: _restore(X[c], Z[c]) for c in columns}
    per_round = states * n * b
    group = max(1, max_rows_per_call // per_round)  # rounds predicted in one call
    orders: list[np.ndarray] = []
    for r in range(rounds):
        # a random order of the columns for each row, then the same orders reversed
        orders.append(np.argsort(rng.random((n, m)), axis=1) if r % 2 == 0 else orders[-1][:, ::-1])
    values = np.zeros((n, m, 0))
    base: np.ndarray | None = None
    outputs: list[str] = []
    for first in range(0, rounds, group):
        chosen = orders[first : first + group]
        switched = []
        for order in chosen:
            position = np.empty_like(order)
            np.put_along_axis(position, order, np.arange(m)[None, :].repeat(n, axis=0), axis=1)
            switched.append(position[i_idx] < k_idx[:, None])  # (rows of a round, columns)
        mask = np.concatenate(switched)
        xi, zj = np.tile(i_idx, len(chosen)), np.tile(j_idx, len(chosen))
        frame = pd.DataFrame(
            {
                c: kinds[c](np.where(mask[:, j], x_cols[c][xi], z_cols[c][zj]))
                for j, c in enumerate(columns)
            }
        )
        out, outputs = _chunked_output(model, frame, max_rows_per_call)
        for r, order in enumerate(chosen):
            part = out[r * per_round : (r + 1) * per_round]
            g = part.reshape(states, n, b, -1).mean(axis=2)  # (states, n, outputs)
            steps = np.diff(g, axis=0)  # steps[k, i]: what the (k+1)-th switched column added
            contrib = np.zeros((n, m, g.shape[2]))
            np.put_along_axis(contrib, order[:, :, None], steps.transpose(1, 0, 2), axis=1)
            values = contrib if values.shape[2] == 0 else values + contrib
            base = g[0].mean(axis=0) if base is None else base
    assert base is not None
    return ShapleySample(columns, outputs, values / rounds, base, rounds, b)


def _chunked_output(model: Any, frame: pd.DataFrame, limit: int) -> tuple[np.ndarray, list[str]]:
    parts: list[np.ndarray] = []
    outputs: list[str] = []
    for start in range(0, len(frame), limit):
        out, outputs = _output(model, frame.iloc[start : start + limit].reset_index(drop=True))
        parts.append(out)
    return np.concatenate(parts), outputs


def _column_values(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    return s.astype(object).to_numpy()


def _restore(x: pd.Series, z: pd.Series) -> Any:
    """How a mixed column is given back its dtype: categories keep every level of both parts."""
    if isinstance(x.dtype, pd.CategoricalDtype) or isinstance(z.dtype, pd.CategoricalDtype):
        levels = pd.unique(pd.concat([x.astype(object), z.astype(object)]).dropna())
        return lambda v: pd.Categorical(v, categories=levels)
    return lambda v: v
