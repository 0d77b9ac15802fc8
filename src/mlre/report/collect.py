"""Everything a report shows, computed once at the end of a run and kept as plain JSON, so that
``mlre report RUN_ID`` can rebuild the report later without the model or the data."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from mlre.evaluate.diagnostics import (
    Diagnostic,
    calibration,
    classification_curves,
    holdout_intervals,
    residuals,
)
from mlre.evaluate.fit import fit_diagnosis, learning_curve
from mlre.evaluate.metrics import Metric, get_metric
from mlre.evaluate.slices import error_slices
from mlre.findings import Findings, Severity
from mlre.spec import METRICS

log = logging.getLogger(__name__)

#: Version of the report data layout; a reader refuses data of a newer version.
REPORT_VERSION = 1
#: Rows of the training part scored to compare training and holdout scores.
TRAIN_SAMPLE = 2_000
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


def collect(
    job: Any,
    *,
    summary: dict[str, Any],
    leaderboard: list[dict[str, Any]],
    findings: Findings,
    audit: Any,
    spec: Any,
    deadline: float,
) -> dict[str, Any]:
    """The report data of a finished run: diagnostics, importance, summary and model card.

    ``job`` is the search job's result (with its evaluation data); work that would run past
    ``deadline`` (the learning curve's larger fits, importance of the last features) is left out
    and said so.
    """
    ev = job.evaluation
    task, metric = summary["task"], get_metric(summary["metric"])
    classes = [str(c) for c in ev.classes] if ev.classes is not None else None
    seed = spec.seed
    diagnostics: list[Diagnostic] = []
    timings: dict[str, float] = {}
    started = time.monotonic()

    def timed(name: str, make: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        out = make()
        timings[name] = round(time.monotonic() - t0, 3)
        if isinstance(out, Diagnostic):
            diagnostics.append(out)
        return out

    others = [get_metric(m) for m, (tasks, _) in METRICS.items() if task in tasks]
    ordered = [metric, *[m for m in others if m.name != metric.name]]
    intervals = timed(
        "intervals", lambda: holdout_intervals(ordered, ev.y_hold, ev.pred_hold, seed=seed)
    )
    interval = next(
        ((r["low"], r["high"]) for r in intervals.data["rows"] if r["metric"] == metric.name),
        None,
    )
    # what the model relies on comes first, Shapley values with 40% of the time: the later
    # pieces shrink to what is left. Everything that predicts many copies of holdout rows sizes
    # its work by the served model's prediction time, measured once here.
    per_row = seconds_per_row(job.model, ev.X_hold, task)
    share = time.monotonic() + 0.4 * max(0.0, deadline - time.monotonic())
    shapley = timed(
        "shapley",
        lambda: shapley_importance(
            job.model, ev.X_hold, deadline=share, seed=seed, per_row=per_row
        ),
    )
    timed("fit", lambda: _fit(job, metric, task, interval, seed))
    if task == "regression":
        timed("residuals", lambda: residuals(ev.y_hold, ev.pred_hold, ev.X_hold, seed=seed))
    else:
        timed("calibration", lambda: calibration(ev.y_hold, ev.pred_hold))
        timed("curves", lambda: classification_curves(ev.y_hold, ev.pred_hold, classes))
    timed("slices", lambda: error_slices(ev.X_hold, ev.y_hold, ev.pred_hold, task))
    # permutation importance with 40% of what is left, then partial dependence and example
    # explanations, each with a share of the rest, and the learning curve (refits of the leading
    # configuration) last
    share = time.monotonic() + 0.4 * max(0.0, deadline - time.monotonic())
    importance = timed(
        "importance",
        lambda: permutation_importance(
            job.model,
            ev.X_hold,
            ev.y_hold,
            metric,
            task,
            deadline=share,
            seed=seed,
            per_row=per_row,
        ),
    )
    share = time.monotonic() + 0.4 * max(0.0, deadline - time.monotonic())
    dependence = timed(
        "dependence",
        lambda: partial_dependence(
            job.model,
            ev.X_hold,
            task,
            ranking(shapley, importance),
            deadline=share,
            seed=seed,
            per_row=per_row,
        ),
    )
    share = time.monotonic() + 0.5 * max(0.0, deadline - time.monotonic())
    examples = timed("examples", lambda: _examples(job, task, share, seed, per_row))
    timed("learning_curve", lambda: _learning_curve(job, metric, task, seed, deadline))
    diag_findings = [f for d in diagnostics for f in d.findings]
    all_findings = Findings([*findings, *diag_findings])
    data = {
        "version": REPORT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "project": summary["project"],
        "run_id": summary.get("run_id"),
        "model_uri": summary.get("model_uri"),
        "model_version": summary.get("model_version"),
        "task": task,
        "metric": metric.name,
        "greater_is_better": metric.greater_is_better,
        "target": spec.target,
        "classes": classes,
        "data": _data_section(audit, spec, ranking(shapley, importance)),
        "selection": {
            "leaderboard": leaderboard,
            "trials": len(leaderboard),
            "budget": summary["budget"],
            "seconds": summary["seconds"],
            "scheme": {k: v for k, v in summary["scheme"].items() if k != "features"},
            "features": summary["scheme"].get("features", []),
            "ensemble": summary["ensemble"],
        },
        "performance": {
            "search_score": summary["search_score"],
            "holdout_score": summary["holdout_score"],
            "holdout": summary["holdout"],
            "baseline": summary["baseline"],
            "holdout_rows": len(ev.y_hold),
            "train_rows": len(ev.y_train),
        },
        "diagnostics": [d.to_dict() for d in diagnostics],
        "importance": importance,
        "shapley": shapley,
        "examples": examples,
        "dependence": dependence,
        "whole_model": _whole_model(job, task, classes),
        "findings": all_findings.to_list(),
        "fairness": summary.get("fairness"),
        "card": model_card(summary, spec, audit),
        "seconds": round(time.monotonic() - started, 2),
        "timings": timings,
    }
    data["summary"] = executive_summary(data)
    return data


# --------------------------------------------------------------------------- pieces


def _fit(job: Any, metric: Metric, task: str, interval: Any, seed: int) -> Diagnostic:
    from mlre.evaluate.metrics import naive_prediction

    ev = job.evaluation
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(ev.y_train), min(len(ev.y_train), TRAIN_SAMPLE), replace=False))
    X = ev.X_train.iloc[rows]
    pred = job.model.predict(X) if task == "regression" else job.model.predict_proba(X)
    n_classes = 0 if ev.classes is None else len(ev.classes)
    naive = naive_prediction(task, ev.y_train, len(ev.y_hold), n_classes)
    return fit_diagnosis(
        metric,
        train_score=metric(ev.y_train[rows], pred),
        holdout_score=metric(ev.y_hold, ev.pred_hold),
        baseline_score=metric(ev.y_hold, naive),
        holdout_interval=interval,
    )


def _learning_curve(job: Any, metric: Metric, task: str, seed: int, deadline: float) -> Diagnostic:
    """Refit the ensemble's leading configuration on growing parts of the training rows."""
    from mlre.models.final import member_predict
    from mlre.search.trial import TrialData, fit_pipeline

    ev = job.evaluation
    lead = max(job.model.members, key=lambda m: m.weight)
    n_classes = 0 if ev.classes is None else len(ev.classes)
    data = TrialData(ev.X_train, ev.y_train, [], task, n_classes, ev.plan, metric, seed)
    rng = np.random.default_rng(seed)
    seconds_per_row = _fit_cost(job, lead)

    def fit_predict(rows: np.ndarray) -> np.ndarray:
        shuffled = rng.permutation(rows)
        cut = max(1, len(rows) // 10)  # early stopping, as in the final refit
        valid, train = np.sort(shuffled[:cut]), np.sort(shuffled[cut:])
        pipe, _ = fit_pipeline(lead.family, lead.params, data, train, valid, seed, deadline)
        return member_predict(pipe, ev.X_hold, task, n_classes)

    d = learning_curve(
        fit_predict,
        len(ev.y_train),
        ev.y_hold,
        metric,
        deadline=deadline,
        seed=seed,
        seconds_per_row=seconds_per_row,
    )
    d.data["family"] = lead.family
    return d


def _fit_cost(job: Any, lead: Any) -> float | None:
    """Seconds per training row of one fit of the leading configuration, as seen in the search."""
    weights = job.search.ensemble
    if not weights:
        return None
    trial_id = max(weights, key=weights.get)
    trial = next((t for t in job.search.trials if t.id == trial_id), None)
    if trial is None or trial.oof is None or not trial.fold_losses or trial.family != lead.family:
        return None
    k = len(trial.fold_losses)
    rows_per_fit = len(trial.oof) * ((k - 1) / k if k > 1 else 0.8)
    return trial.fit_seconds / k / max(1.0, rows_per_fit)


def _predict(model: Any, frame: pd.DataFrame, task: str) -> np.ndarray:
    return model.predict(frame) if task == "regression" else model.predict_proba(frame)


def seconds_per_row(model: Any, X: pd.DataFrame, task: str) -> float:
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
    task: str,
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
    task: str,
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


def _examples(
    job: Any, task: str, deadline: float, seed: int, per_row: float
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


def _whole_model(job: Any, task: str, classes: list[str] | None) -> dict[str, Any] | None:
    """A single glass-box model, shown whole (coefficients, tree, shape functions)."""
    from mlre.models.families import FAMILIES
    from mlre.models.glassbox import describe

    members = job.model.members
    if len(members) != 1 or len(members[0].pipelines) != 1:
        return None
    family = FAMILIES.get(members[0].family)
    if family is None or not family.interpretable:
        return None
    view = describe(members[0].pipelines[0], task, classes)
    if view is not None:
        view["family"] = members[0].family
    return view


def _actual(ev: Any, i: int) -> Any:
    if ev.classes is None:
        return float(ev.y_hold[i])
    return str(ev.classes[int(ev.y_hold[i])])


def _data_section(audit: Any, spec: Any, ranked: list[str]) -> dict[str, Any]:
    profiles = audit.profiles
    order = [c for c in ranked if c in profiles] + [
        c for c in profiles if c not in ranked and c != spec.target
    ]
    columns = []
    for name in ([spec.target] if spec.target in profiles else []) + order[:12]:
        p = profiles[name].model_dump(mode="json")
        columns.append({k: p.get(k) for k in _PROFILE_KEYS})
    return {
        "source": audit.source,
        "sha256": audit.data_sha256,
        "rows": audit.n_rows,
        "columns": audit.n_cols,
        "profile": columns,
        "audit_findings": audit.findings.to_list(),
    }


_PROFILE_KEYS = (
    "name",
    "role",
    "dtype",
    "missing_frac",
    "n_unique",
    "top",
    "mean",
    "min",
    "median",
    "max",
)


def model_card(summary: dict[str, Any], spec: Any, audit: Any) -> dict[str, Any]:
    """The model card: intended use, data, metrics, limitations, ethics and how to reproduce."""
    target = spec.target
    return {
        "model": f"{summary['project']} ({summary.get('model_uri') or 'not registered'})",
        "intended_use": f"predict {target!r} ({summary['task']}) for new rows drawn from the "
        "same population as the training data; not validated outside it",
        "training_data": {
            "source": audit.source,
            "sha256": audit.data_sha256,
            "rows": audit.n_rows,
            "columns": audit.n_cols,
        },
        "metrics": summary["holdout"],
        "evaluation": summary["scheme"].get("holdout"),
        "ethics": ethics(summary.get("fairness")),
        "reproduce": f"mlre run {audit.source} --target {target} --metric {summary['metric']} "
        f"--time-budget {summary['budget']:g} --seed {spec.seed}",
    }


def ethics(fairness: dict[str, Any] | None) -> str:
    """The model card's ethical considerations, from the fairness audit when there was one."""
    if not fairness:
        return (
            "no fairness audit was run for this model (no sensitive columns named): check group "
            "metrics with `mlre fairness` before using it for decisions about people"
        )
    breaches = [d for d in fairness["disparities"] if d["breached"]]
    columns = sorted({g["column"] for g in fairness["groups"] if " × " not in g["column"]})
    text = f"audited by {', '.join(columns)} on the holdout: "
    if breaches:
        text += "; ".join(
            f"{d['name'].replace('_', ' ')} by {d['column']} is {d['value']:.3f} (limit "
            f"{d['limit']:g})"
            for d in breaches[:4]
        )
        text += " — the model treats these groups differently; see the fairness section"
    else:
        text += "no disparity beyond its limit"
    if fairness.get("proxies"):
        p = fairness["proxies"][0]
        text += f"; {p['feature']} stands in for {p['sensitive']} (AUC {p['auc']:.2f})"
    return text


# --------------------------------------------------------------------------- plain words


def describe_score(
    metric: str, value: float, baseline: float | None, classes: list[str] | None = None
) -> str:
    """A metric's value in words a non-specialist can act on."""
    base = f" (a naive baseline: {baseline:.4g})" if baseline is not None else ""
    if metric == "roc_auc":
        if classes and len(classes) == 2:
            pair = (
                f"a randomly chosen {classes[1]!r} row above a randomly chosen {classes[0]!r} row"
            )
        else:
            pair = "a randomly chosen row of a class above a row of another class (on average)"
        return (
            f"it ranks {pair} {100 * value:.1f}% of the time (ROC AUC {value:.3f}; guessing "
            "gives 50%)"
        )
    if metric == "accuracy":
        return f"it is right for {100 * value:.1f}% of the rows{base}"
    if metric == "balanced_accuracy":
        return f"it is right for {100 * value:.1f}% of each class's rows on average{base}"
    if metric == "f1":
        return f"its F1 score is {value:.3f}{base}"
    if metric == "log_loss":
        return f"its log loss is {value:.4f}, lower being better{base}"
    if metric == "rmse":
        return f"its predictions are typically off by {value:.4g} (root mean squared error){base}"
    if metric == "mae":
        return f"its predictions are off by {value:.4g} on average (mean absolute error){base}"
    if metric == "r2":
        return f"it explains {100 * value:.1f}% of the variation in the target (R²)"
    if metric == "mape":
        return f"its predictions are off by {100 * value:.1f}% on average (MAPE){base}"
    return f"{metric} {value:.4g}{base}"


def executive_summary(data: dict[str, Any]) -> dict[str, Any]:
    """The report's first section in plain words: what, how well, risks, what next."""
    perf = data["performance"]
    metric = data["metric"]
    score = perf["holdout_score"]
    baseline = perf["baseline"].get(metric)
    interval = next(
        (
            r
            for d in data["diagnostics"]
            if d["name"] == "intervals"
            for r in d["data"]["rows"]
            if r["metric"] == metric
        ),
        None,
    )
    what = (
        f"The model predicts {data['target']!r}"
        + (f" (one of {', '.join(data['classes'][:6])})" if data["classes"] else "")
        + f" from {len(data['selection']['features'])} columns."
    )
    how = (
        f"On {perf['holdout_rows']:,} rows it never saw during training, "
        + describe_score(metric, score, baseline, data["classes"])
        + "."
    )
    if interval and np.isfinite(interval["low"]):
        how += f" With 95% confidence the true {metric} lies between {interval['low']:.4g} and {interval['high']:.4g}."
    better = (score > baseline) == data["greater_is_better"] if baseline is not None else True
    if baseline is not None:
        how += (
            f" That is better than the naive baseline ({baseline:.4g})."
            if better
            else f" That is no better than the naive baseline ({baseline:.4g})."
        )
    serious = [
        f
        for f in data["findings"]
        if f["severity"] in (Severity.ERROR.value, Severity.WARNING.value)
    ]
    risks = [f["message"] for f in serious[:5]]
    steps = []
    for f in serious:
        if f.get("fix") and f["fix"] not in steps:
            steps.append(f["fix"])
    if not steps:
        steps.append(
            "deploy as a shadow first and compare its live predictions with outcomes before "
            "letting it decide anything"
        )
    return {"what": what, "how_well": how, "risks": risks, "next": steps[:4], "better": better}
