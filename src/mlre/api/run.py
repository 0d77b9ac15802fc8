"""``mlre run``: give me the best honest model. Load and audit the data, search within the time
budget, score the holdout the search never saw, audit fairness when asked, record and register
the model, and write the report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlre.api.audit import AuditReport, audit_inputs
from mlre.api.inputs import Inputs, load_inputs
from mlre.api.run_tracking import record_run, trial_logger
from mlre.errors import GateError, InputError
from mlre.findings import Finding, Findings, Severity
from mlre.spec import Spec, Task

if TYPE_CHECKING:
    from mlre.models.final import MlreModel
    from mlre.search.refit import StoredModel

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class RunResult:
    """The outcome of ``mlre run``: the model, its honest score, the leaderboard and where it lives."""

    project: str
    task: Task
    metric: str
    model: MlreModel
    search_score: float
    holdout: dict[str, float]
    baseline: dict[str, float]
    leaderboard: list[dict[str, Any]]
    findings: Findings
    scheme: dict[str, Any]
    budget: float
    seconds: float = 0.0
    run_id: str | None = None
    model_uri: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    ensemble: list[dict[str, Any]] = field(default_factory=list)
    report: dict[str, Any] | None = None
    report_path: str | None = None
    fairness: dict[str, Any] | None = None
    # when ``model`` is the recipe refitted on every labelled row: the model the holdout
    # scored (fitted on the training part, kept on disk) and what the refit was
    scored: StoredModel | None = None
    refit: dict[str, Any] | None = None
    # where the holdout score was expected to fall (95%), from the search estimate and the
    # noise of the rows behind both numbers
    search_interval: tuple[float, float] | None = None

    @property
    def scored_model(self) -> MlreModel | None:
        """The model the holdout scored, when the registered ``model`` is its recipe refitted
        on every labelled row (read from disk on each call); None when there was no refit."""
        return None if self.scored is None else self.scored.load()

    @property
    def holdout_score(self) -> float:
        """The holdout value of the optimised metric."""
        return self.holdout[self.metric]

    def summary(self) -> dict[str, Any]:
        """The headline facts, JSON-ready."""
        return {
            "project": self.project,
            "task": self.task,
            "metric": self.metric,
            "search_score": self.search_score,
            "search_interval": None if self.search_interval is None else list(self.search_interval),
            "holdout_score": self.holdout_score,
            "holdout": self.holdout,
            "baseline": self.baseline,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "model_version": self.model_version,
            "seconds": round(self.seconds, 2),
            "budget": self.budget,
            "scheme": self.scheme,
            "ensemble": self.ensemble,
            "trials": len(self.leaderboard),
            "fairness": self.fairness,
            "refit": self.refit,
        }


def _reserve(budget: float, track: bool) -> float:
    """Seconds kept back from the search for scoring the holdout, logging and registering."""
    fixed = 4.0 if track else 1.0
    return min(0.3 * budget, fixed + 0.05 * budget)


def _report_reserve(budget: float) -> float:
    """Seconds kept back for the report's diagnostics: 15% of the budget, at most 5 minutes."""
    return min(300.0, 0.15 * budget)


def run(
    data: str | Path | pd.DataFrame | None = None,
    *,
    target: str | None = None,
    test: str | Path | pd.DataFrame | None = None,
    sql: str | None = None,
    db: str | Path | None = None,
    spec: Spec | str | Path | None = None,
    time_budget: float | None = None,
    metric: str | None = None,
    track: bool = True,
    force: bool = False,
    families: list[str] | None = None,
    search_rows: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    progress: Progress | None = None,
    report: str | Path | bool | None = None,
    interpretable: bool | None = None,
    ray: str | None = None,
    **spec_overrides: Any,
) -> RunResult:
    """Find the best honest model within the time budget; track and register it.

    Audits the data first (error findings stop the run unless ``force``), keeps an outer holdout
    the search never sees, searches, ensembles, scores the holdout and registers the model under
    the project's name with the alias ``candidate``. ``search_rows`` caps the rows the search
    fits (default 100,000): a larger training part is sampled, and the chosen models are refitted
    on all of it when the time left allows.

    ``interpretable=True`` (or ``interpretable: true`` in the spec) searches glass-box models
    only and keeps the best one alone, refitted on every training row.

    ``report``: where to write the HTML report (and the Markdown beside it); ``True`` or, when
    tracking, ``None`` mean ``report.html`` in the working directory; ``False`` writes none.
    With tracking on, the report and its data are also logged to the run either way.

    ``ray``: fit the search's trials as Ray tasks, on a Ray started for this run (``"auto"``) or
    on a cluster (``"ray://HOST:10001"``; default ``MLRE_RAY_ADDRESS``). Starting or reaching
    Ray counts against the time budget; everything else (scoring, ensembling, MLflow) happens
    here, as in a local run.
    """
    started = time.monotonic()
    step = progress or (lambda _: None)
    overrides = {
        "target": target,
        "time_budget": time_budget,
        "metric": metric,
        "interpretable": interpretable or None,
        **spec_overrides,
    }
    inputs = load_inputs(
        data,
        test=test,
        sql=sql,
        db=db,
        spec=spec,
        encoding=encoding,
        delimiter=delimiter,
        step=step,
        overrides=overrides,
        sample_large=True,
    )
    _check_labels(inputs)
    audit_report = _audit_gate(inputs, force, step)
    return _build(
        inputs,
        audit_report,
        started=started,
        step=step,
        track=track,
        report=report,
        families=families,
        search_rows=search_rows,
        ray=ray,
    )


def _build(
    inputs: Inputs,
    audit_report: AuditReport,
    *,
    started: float,
    step: Progress,
    track: bool,
    report: str | Path | bool | None,
    families: list[str] | None,
    search_rows: int | None,
    ray: str | None,
) -> RunResult:
    """Search, score and (when tracking) record and register a model of audited inputs, then
    write its report."""
    report_path, want_report = _report_destination(report, track)
    spec, budget = inputs.spec, inputs.spec.time_budget
    task = inputs.require_task("mlre run")
    deadline = started + budget
    metric_name = spec.resolved_metric(task)
    noted = [*audit_report.findings, *_budget_findings(budget), *_sample_findings(inputs)]
    reserve = _reserve(budget, track) + (_report_reserve(budget) if want_report else 0.0)
    with _tracking(track, spec.project_name) as parent:
        on_trial = trial_logger(parent, metric_name, step)
        job = _search(
            inputs,
            task,
            audit_report.contract,
            on_trial,
            step,
            deadline,
            reserve,
            families=families,
            search_rows=search_rows,
            ray=ray,
        )
        result = _result(job, inputs, task, metric_name, budget, noted)
        if parent is not None:
            step("registering the model")
            record_run(parent, result, audit_report, inputs)
        if want_report:
            step("writing the report")
            result.seconds = time.monotonic() - started
            _write_report(result, job, audit_report, spec, parent, report_path, deadline)
    result.seconds = time.monotonic() - started
    return result


@contextmanager
def _tracking(track: bool, project: str) -> Iterator[Any | None]:
    """The run's parent MLflow run when tracking (a run that fails is recorded as FAILED),
    else None."""
    if not track:
        yield None
        return
    from mlre.track import tracked_run

    with tracked_run(project, "run", {"mlre.kind": "run"}) as parent:
        yield parent


def _report_destination(report: str | Path | bool | None, track: bool) -> tuple[Path | None, bool]:
    """Where the report file goes (None: no file) and whether a report is made at all (with
    tracking on it is logged to the run even when no file is written)."""
    if report is None:
        report = track
    path = Path("report.html") if report is True else (Path(report) if report else None)
    return path, bool(report) or track


def _check_labels(inputs: Inputs) -> None:
    """A run needs a target, and a given test table needs its labels to score the holdout."""
    inputs.require_task("mlre run")
    target = inputs.spec.target
    if inputs.test is not None and target not in inputs.test.frame.columns:
        raise InputError(
            f"the test table has no {target!r} column",
            hint="the holdout needs labels to score the model",
        )


def _audit_gate(inputs: Inputs, force: bool, step: Progress) -> AuditReport:
    """The audit of the run's data; its errors stop the run unless ``force``."""
    budget = inputs.spec.time_budget
    # model-based audit checks scale down with the budget so they never eat the search
    audit_report = audit_inputs(
        inputs, step, model_sample=int(min(20_000, max(2_000, 100 * budget)))
    )
    errors = audit_report.findings.of(Severity.ERROR)
    if errors and not force:
        raise GateError(
            f"the audit found {len(errors)} error(s): " + "; ".join(f.message for f in errors[:3]),
            hint="fix the data (see `mlre audit`), or pass --force to train anyway",
        )
    return audit_report


def _budget_findings(budget: float) -> list[Finding]:
    """A warning when the time budget is too small for a real search."""
    if budget >= 10:
        return []
    return [
        Finding(
            severity=Severity.WARNING,
            check="small_budget",
            message=f"a {budget:g}s budget leaves little room to search",
            fix="give --time-budget 60 or more for a real search",
        )
    ]


def _sample_findings(inputs: Inputs) -> list[Finding]:
    """A warning when the run learns from a sample of a table larger than memory."""
    sampled = inputs.table.details.get("sampled")
    if not sampled:
        return []
    return [
        Finding(
            severity=Severity.WARNING,
            check="sampled_table",
            message=f"the table is larger than memory: the run learned from {sampled['rule']}",
            evidence=sampled,
            fix="give the run more memory (MLRE_LOAD_MEMORY) to learn from more rows",
        )
    ]


def _search(
    inputs: Inputs,
    task: Task,
    contract: Any,
    on_trial: Callable[[Any], None],
    step: Progress,
    deadline: float,
    reserve: float,
    *,
    families: list[str] | None,
    search_rows: int | None,
    ray: str | None,
) -> Any:
    """The search job: holdout kept apart, search, ensemble, holdout scored (here or on Ray)."""
    from mlre.search.executor import executor_for, ray_address
    from mlre.search.job import run_job

    address = ray_address(ray)
    if address:
        step(f"starting Ray ({address})")
    with executor_for(address) as executor:
        return run_job(
            inputs.df,
            inputs.spec,
            task,
            contract,
            test=inputs.test.frame if inputs.test else None,
            deadline=deadline,
            reserve=reserve,
            on_trial=on_trial,
            families=families,
            executor=executor,
            **({"search_rows": search_rows} if search_rows else {}),
        )


def _result(
    job: Any,
    inputs: Inputs,
    task: Task,
    metric_name: str,
    budget: float,
    findings: list[Finding],
) -> RunResult:
    """The run's result from its finished job: the leaderboard best first, the fairness audit
    when the spec names sensitive columns, and every finding (``findings`` first)."""
    from mlre.evaluate.metrics import get_metric

    spec = inputs.spec
    m = get_metric(metric_name)
    board = sorted(
        (t.row(m) for t in job.search.trials),
        key=lambda r: (
            r[m.name] is None,
            -(r[m.name] or 0) if m.greater_is_better else (r[m.name] or 0),
        ),
    )
    fairness, fairness_findings = _fairness(job, spec, task) if spec.sensitive else (None, [])
    return RunResult(
        project=spec.project_name,
        task=task,
        metric=metric_name,
        model=job.model,
        search_score=job.search_score,
        holdout=job.holdout,
        baseline=job.baseline,
        leaderboard=board,
        findings=Findings([*findings, *job.findings, *fairness_findings]),
        scheme=job.scheme,
        budget=budget,
        ensemble=job.model.describe(),
        fairness=None if fairness is None else fairness.to_dict(),
        scored=job.scored_model,
        refit=job.refit,
        search_interval=job.search_interval,
    )


def _fairness(job: Any, spec: Spec, task: Task) -> tuple[Any, list[Finding]]:
    """The fairness audit of the holdout predictions by the spec's sensitive columns, and its
    findings; a breach is an error (the run's gate) when the spec sets a fairness constraint.
    An audit that cannot be made says why in a finding instead of failing the finished run."""
    from mlre.fairness.audit import audit_predictions, find_proxies, proxy_findings, sensitive_frame

    ev = job.evaluation

    def skipped(reason: str) -> tuple[None, list[Finding]]:
        return None, [
            Finding(severity=Severity.WARNING, check="fairness_not_audited", message=reason)
        ]

    if task == "multiclass":
        return skipped(
            "the fairness audit covers binary classification and regression; this run is "
            "multiclass (audit one class against the rest with a binary target)"
        )
    try:
        groups = sensitive_frame(ev.hold_frame, spec.sensitive)
    except InputError as err:
        return skipped(f"the fairness audit was not made: {err.message}")
    if task == "binary":
        y, prediction = ev.y_hold.astype(float), ev.pred_hold.argmax(axis=1).astype(float)
    else:
        y, prediction = ev.y_hold.astype(float), np.asarray(ev.pred_hold, dtype=float)
    constraint = spec.constraints.fairness
    limits = {} if constraint is None else {constraint.metric: constraint.max_difference}
    audit = audit_predictions(y, prediction, groups, task=task, limits=limits, seed=spec.seed)
    if constraint is not None:  # asked for: a breach of the constraint fails the run's gate
        audit.findings = [
            f.model_copy(update={"severity": Severity.ERROR})
            if f.check == f"fairness_{constraint.metric}"
            else f
            for f in audit.findings
        ]
    features = [c for c in ev.X_hold.columns if c not in spec.sensitive]
    audit.proxies = find_proxies(ev.hold_frame[features], groups[spec.sensitive], seed=spec.seed)
    audit.findings += proxy_findings(audit.proxies)
    return audit, audit.findings


def _write_report(
    result: RunResult,
    job: Any,
    audit_report: Any,
    spec: Spec,
    parent: Any | None,
    path: Path | None,
    deadline: float,
) -> None:
    """Compute the report's diagnostics, write it to ``path`` and log it to the run."""
    from mlre.report.collect import collect
    from mlre.report.render import render_html, render_markdown, save_report

    data = collect(
        job,
        summary=result.summary(),
        leaderboard=result.leaderboard,
        findings=result.findings,
        audit=audit_report,
        spec=spec,
        deadline=deadline - (1.5 if parent is not None else 0.5),
    )
    result.report = data
    html, md = render_html(data), render_markdown(data)
    if path is not None:
        result.report_path = str(save_report(html, md, path)[0])
    if parent is not None:
        parent.log_json(data, "report/report.json")
        parent.log_text(html, "report/report.html")
        parent.log_text(md, "report/report.md")
