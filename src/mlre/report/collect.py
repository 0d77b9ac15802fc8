"""Everything a report shows, computed once at the end of a run and kept as plain JSON, so that
``mlre report RUN_ID`` can rebuild the report later without the model or the data.

The pieces live beside this module by what they show: ``model`` (how well the model fits; a
glass-box model whole), ``explanations`` (what it relies on), ``data`` (the table it learnt
from), ``card`` (the model card) and ``summary`` (the first section in plain words). ``collect``
measures them within the run's deadline and puts them together.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mlre.evaluate.diagnostics import (
    Diagnostic,
    calibration,
    classification_curves,
    holdout_intervals,
    residuals,
)
from mlre.evaluate.metrics import Metric, get_metric
from mlre.evaluate.slices import error_slices
from mlre.findings import Findings
from mlre.report.card import model_card
from mlre.report.data import data_section
from mlre.report.explanations import (
    example_explanations,
    partial_dependence,
    permutation_importance,
    ranking,
    seconds_per_row,
    shapley_importance,
)
from mlre.report.model import fit_diagnostic, learning_curve_diagnostic, whole_model
from mlre.report.summary import executive_summary
from mlre.spec import METRICS, Task

log = logging.getLogger(__name__)

#: Version of the report data layout; a reader refuses data of a newer version.
REPORT_VERSION = 1


class _Timed:
    """Measures the report's pieces one after another: how long each took, and the diagnostics
    among them in the order they were made."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.timings: dict[str, float] = {}

    def __call__(self, name: str, make: Callable[[], Any]) -> Any:
        t0 = time.monotonic()
        out = make()
        self.timings[name] = round(time.monotonic() - t0, 3)
        if isinstance(out, Diagnostic):
            self.diagnostics.append(out)
        return out


def _share(fraction: float, deadline: float) -> float:
    """The moment by which ``fraction`` of the time left before ``deadline`` will have passed."""
    return time.monotonic() + fraction * max(0.0, deadline - time.monotonic())


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
    started = time.monotonic()
    timed = _Timed()
    interval = _holdout_interval(timed, ev, task, metric, seed)
    # what the model relies on comes first, Shapley values with 40% of the time: the later
    # pieces shrink to what is left. Everything that predicts many copies of holdout rows sizes
    # its work by the served model's prediction time, measured once here.
    per_row = seconds_per_row(job.model, ev.X_hold, task)
    until = _share(0.4, deadline)
    shapley = timed(
        "shapley",
        lambda: shapley_importance(
            job.model, ev.X_hold, deadline=until, seed=seed, per_row=per_row
        ),
    )
    _diagnose(timed, job, task, metric, classes, interval, seed)
    explained = _explain(timed, job, task, metric, shapley, per_row, seed, deadline)
    timed("learning_curve", lambda: learning_curve_diagnostic(job, metric, task, seed, deadline))
    all_findings = Findings([*findings, *(f for d in timed.diagnostics for f in d.findings)])
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
        "data": data_section(audit, spec, ranking(shapley, explained["importance"])),
        "selection": _selection(summary, leaderboard),
        "performance": _performance(summary, ev),
        "diagnostics": [d.to_dict() for d in timed.diagnostics],
        "importance": explained["importance"],
        "shapley": shapley,
        "examples": explained["examples"],
        "dependence": explained["dependence"],
        "whole_model": whole_model(job, task, classes),
        "findings": all_findings.to_list(),
        "fairness": summary.get("fairness"),
        "card": model_card(summary, spec, audit),
        "seconds": round(time.monotonic() - started, 2),
        "timings": timed.timings,
    }
    data["summary"] = executive_summary(data)
    return data


def _holdout_interval(
    timed: _Timed, ev: Any, task: Task, metric: Metric, seed: int
) -> tuple[float, float] | None:
    """Measure the holdout score of every metric of the task with its 95% interval (the
    optimised metric first); return the optimised metric's interval."""
    others = [get_metric(m) for m, (tasks, _) in METRICS.items() if task in tasks]
    ordered = [metric, *[m for m in others if m.name != metric.name]]
    intervals = timed(
        "intervals", lambda: holdout_intervals(ordered, ev.y_hold, ev.pred_hold, seed=seed)
    )
    return next(
        ((r["low"], r["high"]) for r in intervals.data["rows"] if r["metric"] == metric.name),
        None,
    )


def _diagnose(
    timed: _Timed,
    job: Any,
    task: Task,
    metric: Metric,
    classes: list[str] | None,
    interval: tuple[float, float] | None,
    seed: int,
) -> None:
    """Measure how the model fits and where it errs: training against holdout, residuals or
    calibration and the classification curves, and the slices of rows it does worst on."""
    ev = job.evaluation
    timed("fit", lambda: fit_diagnostic(job, metric, task, interval, seed))
    if task == "regression":
        timed("residuals", lambda: residuals(ev.y_hold, ev.pred_hold, ev.X_hold, seed=seed))
    else:
        if classes is None:
            raise ValueError("a classifier's curves are drawn per class: its classes are needed")
        timed("calibration", lambda: calibration(ev.y_hold, ev.pred_hold))
        timed("curves", lambda: classification_curves(ev.y_hold, ev.pred_hold, classes))
    timed("slices", lambda: error_slices(ev.X_hold, ev.y_hold, ev.pred_hold, task))


def _explain(
    timed: _Timed,
    job: Any,
    task: Task,
    metric: Metric,
    shapley: dict[str, Any] | None,
    per_row: float,
    seed: int,
    deadline: float,
) -> dict[str, Any]:
    """Permutation importance, partial dependence of the columns relied on most and example
    explanations, each with a share of the time left before ``deadline``."""
    # permutation importance with 40% of what is left, then partial dependence and example
    # explanations, each with a share of the rest, and the learning curve (refits of the leading
    # configuration) last
    ev = job.evaluation
    until = _share(0.4, deadline)
    importance = timed(
        "importance",
        lambda: permutation_importance(
            job.model,
            ev.X_hold,
            ev.y_hold,
            metric,
            task,
            deadline=until,
            seed=seed,
            per_row=per_row,
        ),
    )
    ranked = ranking(shapley, importance)
    until = _share(0.4, deadline)
    dependence = timed(
        "dependence",
        lambda: partial_dependence(
            job.model, ev.X_hold, task, ranked, deadline=until, seed=seed, per_row=per_row
        ),
    )
    until = _share(0.5, deadline)
    examples = timed("examples", lambda: example_explanations(job, task, until, seed, per_row))
    return {"importance": importance, "dependence": dependence, "examples": examples}


def _selection(summary: dict[str, Any], leaderboard: list[dict[str, Any]]) -> dict[str, Any]:
    """The model selection section: the leaderboard, the search's scheme and the ensemble."""
    return {
        "leaderboard": leaderboard,
        "trials": len(leaderboard),
        "budget": summary["budget"],
        "seconds": summary["seconds"],
        "scheme": {k: v for k, v in summary["scheme"].items() if k != "features"},
        "features": summary["scheme"].get("features", []),
        "ensemble": summary["ensemble"],
    }


def _performance(summary: dict[str, Any], ev: Any) -> dict[str, Any]:
    """The honest performance section: search and holdout scores, the naive baseline's."""
    return {
        "search_score": summary["search_score"],
        "search_interval": summary.get("search_interval"),
        "holdout_score": summary["holdout_score"],
        "holdout": summary["holdout"],
        "baseline": summary["baseline"],
        "holdout_rows": len(ev.y_hold),
        "train_rows": len(ev.y_train),
    }
