"""What the model relies on, measured on the served model and the holdout rows: permutation
importance, Shapley values, partial dependence and explanations of a few telling predictions.

Each piece predicts many copies of holdout rows and sizes its work by the model's prediction
time, so that it finishes by the deadline it is given."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from mlre.evaluate.metrics import Metric
from mlre.spec import Task

#: Holdout rows shuffled per feature for permutation importance (fewer when time is short).
IMPORTANCE_ROWS = 1_000
MIN_IMPORTANCE_ROWS = 100
#: Holdout rows whose Shapley values make the global importance (fewer when time is short, none
#: below the minimum), the background rows they are measured against, and a bound on the rows
#: of one model call (explained rows x background rows x (columns + 1)).
SHAPLEY_ROWS = 500
MIN_SHAPLEY_ROWS = 20
SHAPLEY_BACKGROUND = 20
SHAPLEY_CELLS = 400_000


def _predict(model: Any, frame: pd.DataFrame, task: Task | None) -> np.ndarray:
    # a model that does not say its task (None) is read as a classifier, as explanations read it
    return model.predict(frame) if task == "regression" else model.predict_proba(frame)


def seconds_per_row(model: Any, X: pd.DataFrame, task: Task | None) -> float:
    """The model's prediction time per row in calls of a few thousand rows, from timed calls on
    10 and 300 rows of ``X``: an ensemble's fixed cost per call (each pipeline's pandas work) is
    most of a small call's time, so one small call would overestimate large ones severalfold."""
    small, large = min(10, len(X)), min(300, len(X))
    t0 = time.monotonic()
    _predict(model, X.head(small), task)
    t1 = time.monotonic()
    _predict(model, X.head(large), task)
    t2 = time.monotonic()
    fixed_and_small, fixed_and_large = t1 - t0, t2 - t1
    if large <= small:
        return fixed_and_large / max(1, large)
    marginal = max(0.0, fixed_and_large - fixed_and_small) / (large - small)
    fixed = max(0.0, fixed_and_small - marginal * small)
    return max(marginal + fixed / 2_000, 1e-7)


def _rows_that_fit(per_row: float, copies: int, seconds: float) -> int:
    """How many rows can be predicted ``copies`` times over in one call within ``seconds``."""
    return int(max(0.0, seconds) / max(per_row * copies, 1e-9))


def permutation_importance(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    metric: Metric,
    task: Task,
    *,
    deadline: float = float("inf"),
    seed: int = 0,
    per_row: float | None = None,
) -> dict[str, Any]:
    """How much the holdout loss grows when one column's values are shuffled, per input column.

    Model-agnostic and measured on the model that is served (the whole ensemble). The shuffled
    copies are predicted in one call (an ensemble's fixed cost per call is most of its time on
    small batches); short of time it uses fewer rows, down to 100 (one call of 100 rows per
    column: a report must say what the model relies on).
    """
    rng = np.random.default_rng(seed)
    columns = list(X.columns)
    per_row = seconds_per_row(model, X, task) if per_row is None else per_row
    fits = _rows_that_fit(per_row, len(columns) + 1, deadline - time.monotonic())
    n = min(len(y), IMPORTANCE_ROWS, max(MIN_IMPORTANCE_ROWS, fits))
    rows = np.sort(rng.choice(len(y), n, replace=False))
    X, y = X.iloc[rows].reset_index(drop=True), y[rows]
    copies = [X]
    for col in columns:
        shuffled = X.copy()
        shuffled[col] = X[col].to_numpy()[rng.permutation(n)]
        copies.append(shuffled)
    pred = _predict(model, pd.concat(copies, ignore_index=True), task)
    base = metric.loss(y, pred[:n])
    scores = [
        {"feature": col, "importance": metric.loss(y, pred[(i + 1) * n : (i + 2) * n]) - base}
        for i, col in enumerate(columns)
    ]
    scores.sort(key=lambda r: -r["importance"])
    return {
        "method": "permutation",
        "metric": metric.name,
        "rows": n,
        "features": scores,
        "not_measured": [],
    }


def ranking(shapley: dict[str, Any] | None, importance: dict[str, Any]) -> list[str]:
    """The input columns, most relied on first: by Shapley values when they were measured, by
    permutation importance otherwise."""
    rows = shapley["features"] if shapley else importance["features"]
    return [r["feature"] for r in rows]


def shapley_importance(
    model: Any,
    X: pd.DataFrame,
    *,
    deadline: float = float("inf"),
    seed: int = 0,
    per_row: float | None = None,
    top: int = 3,
) -> dict[str, Any] | None:
    """Global importance as the mean absolute Shapley value of each column over a sample of
    holdout rows (of the whole served model), and the values of the ``top`` columns row by row
    for dependence plots. As many rows as fit before ``deadline`` (at most 500, at least 20);
    ``None`` only for a model kept without background rows."""
    from mlre.explain.shapley import sampled_shapley

    background = getattr(model, "background", None)
    if background is None or len(background) == 0 or len(X) == 0:
        return None
    task = getattr(model, "task", None)
    per_row = seconds_per_row(model, X, task) if per_row is None else per_row
    m = X.shape[1]
    # fewer background rows and orders before fewer explained rows: the importance averages
    # over rows, and each single order already adds up exactly
    n = 0
    for b, permutations in ((SHAPLEY_BACKGROUND, 2), (10, 2), (5, 2), (5, 1)):
        b = min(b, len(background))
        copies = permutations * (m + 1) * b
        fits = _rows_that_fit(per_row, copies, deadline - time.monotonic())
        n = min(len(X), SHAPLEY_ROWS, fits, max(1, SHAPLEY_CELLS // ((m + 1) * b)))
        if n >= min(50, len(X)):
            break
    # never fewer than 20 rows (one call of about 2,000 rows with 5 background rows and one
    # order): like permutation importance, a report must say what the model relies on
    n = max(n, min(MIN_SHAPLEY_ROWS, len(X)))
    rng = np.random.default_rng(seed)
    sample = X.iloc[np.sort(rng.choice(len(X), n, replace=False))].reset_index(drop=True)
    bg = background.sample(n=b, random_state=seed) if len(background) > b else background
    result = sampled_shapley(model, sample, bg, permutations=permutations, seed=seed)
    # multiclass: the columns' weight summed over the classes' probabilities
    strength = np.abs(result.values).mean(axis=0).sum(axis=1)
    order = np.argsort(-strength, kind="stable")
    k = int(np.argmax(result.base)) if len(result.outputs) > 1 else 0
    dependence = []
    for j in order[:top]:
        col = result.columns[j]
        values = sample[col]
        numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
            values.dtype
        )
        dependence.append(
            {
                "feature": col,
                "numeric": bool(numeric),
                "x": [
                    (float(v) if numeric else str(v)) if pd.notna(v) else None
                    for v in values.to_numpy()
                ],
                "shap": [float(v) for v in result.values[:, j, k]],
            }
        )
    return {
        "method": "shapley",
        "outputs": result.outputs,
        "output": result.outputs[k],
        "base": [float(v) for v in result.base],
        "rows": n,
        "background_rows": result.background_rows,
        "permutations": result.permutations,
        "features": [{"feature": result.columns[j], "mean_abs": float(strength[j])} for j in order],
        "dependence": dependence,
    }


def partial_dependence(
    model: Any,
    X: pd.DataFrame,
    task: Task,
    ranked: list[str],
    *,
    top: int = 3,
    grid: int = 8,
    deadline: float = float("inf"),
    seed: int = 0,
    per_row: float | None = None,
) -> list[dict[str, Any]]:
    """Partial dependence of the ``top`` most important columns: the model's average output over
    holdout rows when the column is set to each value of a grid (numbers: quantiles; categories:
    the most frequent levels), all predicted in one call sized to finish by ``deadline`` (50
    rows at the least).
    Output: the positive class's probability (binary), the most frequent class's (multiclass)
    or the prediction (regression)."""
    plans = []
    for col in ranked[:top]:
        values = X[col]
        numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
            values.dtype
        )
        if numeric:
            levels = np.unique(np.nanquantile(values.astype(float), np.linspace(0.05, 0.95, grid)))
        else:
            levels = values.astype(object).dropna().value_counts().index[:grid].to_numpy()
        if len(levels) >= 2:
            plans.append((col, bool(numeric), levels))
    copies = sum(len(levels) for _, _, levels in plans)
    if not copies:
        return []
    # at least 50 rows (one call of a few thousand rows) even when time is short
    per_row = seconds_per_row(model, X, task) if per_row is None else per_row
    n = min(len(X), 200, max(50, _rows_that_fit(per_row, copies, deadline - time.monotonic())))
    rng = np.random.default_rng(seed)
    sample = X.iloc[np.sort(rng.choice(len(X), n, replace=False))].reset_index(drop=True)
    frames = []
    for col, numeric, levels in plans:
        for level in levels:
            changed = sample.copy()
            changed[col] = float(level) if numeric else level
            frames.append(changed)
    pred = _predict(model, pd.concat(frames, ignore_index=True), task)
    if task == "regression":
        k, output, column = None, "prediction", pred
    else:
        k = 1 if pred.shape[1] == 2 else int(pred.mean(axis=0).argmax())
        output, column = f"P({model.classes_[k]})", pred[:, k]
    out, start = [], 0
    for col, numeric, levels in plans:
        means = []
        for _ in levels:
            means.append(float(np.mean(column[start : start + n])))
            start += n
        out.append(
            {
                "feature": col,
                "numeric": numeric,
                "values": [float(v) if numeric else str(v) for v in levels],
                "average": means,
                "output": output,
            }
        )
    return out


def example_explanations(
    job: Any, task: Task, deadline: float, seed: int, per_row: float
) -> list[dict[str, Any]]:
    """Shapley explanations of three telling holdout predictions, if they fit before ``deadline``:
    the most confident of each side and the least sure (regression: lowest, median, highest)."""
    from mlre.explain.shapley import explain_rows

    ev = job.evaluation
    background = getattr(job.model, "background", None)
    if background is None or len(ev.y_hold) < 3:
        return []
    if task == "regression":
        order = np.argsort(ev.pred_hold)
        picks = [order[0], order[len(order) // 2], order[-1]]
    else:
        confidence = ev.pred_hold.max(axis=1)
        top = ev.pred_hold.argmax(axis=1)
        picks = [
            int(np.argmax(np.where(top == top.max(), confidence, -1))),
            int(np.argmax(np.where(top == top.min(), confidence, -1))),
            int(np.argmin(confidence)),
        ]
    picks = list(dict.fromkeys(int(p) for p in picks))
    n_features = ev.X_hold.shape[1]
    # the permutation explainer predicts about 20 x columns x background rows per explained row
    needed = len(picks) * 20 * n_features * len(background)
    if _rows_that_fit(per_row, 1, deadline - time.monotonic()) < needed:
        return []
    rows = explain_rows(job.model, ev.X_hold.iloc[picks], seed=seed)
    out = []
    for pick, r in zip(picks, rows, strict=True):
        d = r.to_dict(top=8)
        d["row"] = pick
        d["actual"] = _actual(ev, pick)
        out.append(d)
    return out


def _actual(ev: Any, i: int) -> Any:
    if ev.classes is None:
        return float(ev.y_hold[i])
    return str(ev.classes[int(ev.y_hold[i])])
