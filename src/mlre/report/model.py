"""The report's view of the model itself: how well it fits (its training score against its
holdout score and the naive baseline's, a learning curve of its leading configuration) and, for
a single glass-box model, the model shown whole."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlre.evaluate.diagnostics import Diagnostic
from mlre.evaluate.fit import fit_diagnosis, learning_curve
from mlre.evaluate.metrics import Metric
from mlre.spec import Task

#: Rows of the training part scored to compare training and holdout scores.
TRAIN_SAMPLE = 2_000


def fit_diagnostic(job: Any, metric: Metric, task: Task, interval: Any, seed: int) -> Diagnostic:
    """Under- or overfitting: the score on a sample of training rows against the holdout's
    (with its ``interval``) and the naive baseline's."""
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


def learning_curve_diagnostic(
    job: Any, metric: Metric, task: Task, seed: int, deadline: float
) -> Diagnostic:
    """Refit the ensemble's leading configuration on growing parts of the training rows."""
    from mlre.models.final import member_predict
    from mlre.search.trial import TrialData, fit_pipeline

    ev = job.evaluation
    lead = leading_member(job.model)
    n_classes = 0 if ev.classes is None else len(ev.classes)
    data = TrialData(ev.X_train, ev.y_train, [], task, n_classes, ev.plan, metric, seed)
    rng = np.random.default_rng(seed)
    seconds_per_row = _fit_cost(job, lead)

    # rows in time order: windows of the latest rows, each stopped early on its own latest tenth
    ordered = str(job.scheme.get("holdout", "")).startswith("time-ordered")

    def fit_predict(rows: np.ndarray) -> np.ndarray:
        cut = max(1, len(rows) // 10)  # early stopping, as in the final refit
        if ordered:
            valid, train = rows[-cut:], rows[:-cut]
        else:
            shuffled = rng.permutation(rows)
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
        latest_first=ordered,
    )
    d.data["family"] = lead.family
    return d


def leading_member(model: Any) -> Any:
    """The member with the most weight; in a stacked model, the first layer's (a second-layer
    member reads that layer's predictions, and cannot be fitted on the table alone)."""
    members = model.members
    weights = getattr(model, "level_one", None) or [m.weight for m in members]
    return max(zip(members, weights, strict=True), key=lambda mw: mw[1])[0]


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


def whole_model(job: Any, task: Task, classes: list[str] | None) -> dict[str, Any] | None:
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
