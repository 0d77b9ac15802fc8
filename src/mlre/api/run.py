"""``mlre run``, ``mlre predict``, ``mlre leaderboard`` and ``mlre runs``: the model-building verbs
of the public API (re-exported by ``mlre``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlre.api.audit import _audit_inputs, _load_inputs
from mlre.errors import GateError, InputError, SpecError
from mlre.findings import Finding, Findings, Severity
from mlre.spec import Spec

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass
class RunResult:
    """The outcome of ``mlre run``: the model, its honest score, the leaderboard and where it lives."""

    project: str
    task: str
    metric: str
    model: Any
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
    if report is None:
        report = track
    report_path = Path("report.html") if report is True else (Path(report) if report else None)
    want_report = bool(report) or track
    step = progress or (lambda _: None)
    inputs = _load_inputs(
        data,
        test=test,
        sql=sql,
        db=db,
        spec=spec,
        encoding=encoding,
        delimiter=delimiter,
        step=step,
        overrides={
            "target": target,
            "time_budget": time_budget,
            "metric": metric,
            "interpretable": interpretable or None,
            **spec_overrides,
        },
        sample_large=True,
    )
    the_spec = inputs.spec
    if the_spec.target is None or inputs.task is None:
        raise SpecError(
            "mlre run needs a target", hint="pass --target COLUMN or set target: in mlre.yaml"
        )
    if (
        test is not None
        and inputs.test is not None
        and the_spec.target not in inputs.test.frame.columns
    ):
        raise InputError(
            f"the test table has no {the_spec.target!r} column",
            hint="the holdout needs labels to score the model",
        )
    budget = the_spec.time_budget
    deadline = started + budget
    metric_name = the_spec.resolved_metric(inputs.task)
    # model-based audit checks scale down with the budget so they never eat the search
    audit_report = _audit_inputs(
        inputs, step, model_sample=int(min(20_000, max(2_000, 100 * budget)))
    )
    errors = audit_report.findings.of(Severity.ERROR)
    if errors and not force:
        raise GateError(
            f"the audit found {len(errors)} error(s): " + "; ".join(f.message for f in errors[:3]),
            hint="fix the data (see `mlre audit`), or pass --force to train anyway",
        )
    if budget < 10:
        report_findings = [
            Finding(
                severity=Severity.WARNING,
                check="small_budget",
                message=f"a {budget:g}s budget leaves little room to search",
                fix="give --time-budget 60 or more for a real search",
            )
        ]
    else:
        report_findings = []
    sampled = inputs.table.details.get("sampled")
    if sampled:
        report_findings.append(
            Finding(
                severity=Severity.WARNING,
                check="sampled_table",
                message=f"the table is larger than memory: the run learned from {sampled['rule']}",
                evidence=sampled,
                fix="give the run more memory (MLRE_LOAD_MEMORY) to learn from more rows",
            )
        )

    def body(parent: Any | None) -> RunResult:
        from mlre.search.executor import executor_for, ray_address
        from mlre.search.job import run_job

        on_trial = _trial_logger(parent, metric_name, step)
        address = ray_address(ray)
        if address:
            step(f"starting Ray ({address})")
        with executor_for(address) as executor:
            job = run_job(
                inputs.df,
                the_spec,
                inputs.task,
                audit_report.contract,
                test=inputs.test.frame if inputs.test else None,
                deadline=deadline,
                reserve=_reserve(budget, parent is not None)
                + (_report_reserve(budget) if want_report else 0.0),
                on_trial=on_trial,
                families=families,
                executor=executor,
                **({"search_rows": search_rows} if search_rows else {}),
            )
        from mlre.evaluate.metrics import get_metric

        m = get_metric(metric_name)
        board = sorted(
            (t.row(m) for t in job.search.trials),
            key=lambda r: (
                r[m.name] is None,
                -(r[m.name] or 0) if m.greater_is_better else (r[m.name] or 0),
            ),
        )
        fairness, fairness_findings = (
            _fairness(job, the_spec, inputs.task) if the_spec.sensitive else (None, [])
        )
        findings = Findings(
            [*audit_report.findings, *report_findings, *job.findings, *fairness_findings]
        )
        result = RunResult(
            project=the_spec.project_name,
            task=inputs.task,
            metric=metric_name,
            model=job.model,
            search_score=job.search_score,
            holdout=job.holdout,
            baseline=job.baseline,
            leaderboard=board,
            findings=findings,
            scheme=job.scheme,
            budget=budget,
            ensemble=job.model.describe(),
            fairness=None if fairness is None else fairness.to_dict(),
        )
        if parent is not None:
            step("registering the model")
            _record_run(parent, result, audit_report, inputs)
        if want_report:
            step("writing the report")
            result.seconds = time.monotonic() - started
            _write_report(result, job, audit_report, the_spec, parent, report_path, deadline)
        return result

    if not track:
        result = body(None)
    else:
        from mlre.track import tracked_run

        with tracked_run(the_spec.project_name, "run", {"mlre.kind": "run"}) as parent:
            result = body(parent)
    result.seconds = time.monotonic() - started
    return result


def _fairness(job: Any, spec: Spec, task: str) -> tuple[Any, list[Finding]]:
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


def build_report(run_id: str | None = None, output: str | Path = "report.html") -> Path:
    """(Re)build the report of a run (default: the most recent ``mlre run``) from its logged
    report data; writes ``output`` and the Markdown beside it. Returns the HTML path."""
    from mlre.report.render import write_report
    from mlre.track.store import read_json_artifact

    run_id = run_id or _latest_run_id()
    try:
        data = read_json_artifact(run_id, "report/report.json")
    except Exception as err:
        raise InputError(
            f"run {run_id} has no report data ({str(err).splitlines()[0]})",
            hint="reports are kept for runs made with tracking on; list them with `mlre runs`",
        ) from None
    html, _ = write_report(data, output)
    return html


def _latest_run_id() -> str:
    from mlre.track.store import find_runs

    recent = find_runs("run", max_results=1)
    if not recent:
        raise InputError(
            "no `mlre run` recorded in this store", hint="run `mlre run DATA --target COL` first"
        )
    return recent[0].info.run_id


def _trial_logger(parent: Any | None, metric: str, step: Progress):
    from mlre.evaluate.metrics import get_metric
    from mlre.track.store import experiment_of, log_child_run

    m = get_metric(metric)
    experiment = experiment_of(parent) if parent is not None else None

    def on_trial(t) -> None:
        score = m.to_score(t.loss) if t.status == "ok" else None
        step(
            f"trial {t.id}: {t.family} "
            + (f"{metric}={score:.4f}" if score is not None else t.status)
        )
        if parent is None:
            return
        log_child_run(
            parent,
            experiment,
            f"{t.id:03d}-{t.family}",
            params=t.params,
            metrics={
                f"cv_{metric}": score,
                "fit_seconds": t.fit_seconds,
                "predict_seconds": t.predict_seconds,
            },
            tags={
                "mlre.kind": "trial",
                "mlre.family": t.family,
                "mlre.phase": t.phase,
                "mlre.status": t.status,
                "mlre.error": t.error,
            },
            steps={f"fold_{metric}": [m.to_score(v) for v in t.fold_losses]},
            status="FINISHED" if t.status in ("ok", "pruned", "cut") else "FAILED",
        )

    return on_trial


def _record_run(parent: Any, result: RunResult, report: Any, inputs: Any) -> None:
    from mlre.track.registry import log_and_register

    spec = inputs.spec
    parent.set_tags(
        {
            "mlre.data_sha256": inputs.table.sha256,
            "mlre.source": inputs.table.source,
            **({"mlre.test_source": inputs.test.source} if inputs.test else {}),
            "mlre.task": result.task,
            "mlre.metric": result.metric,
        }
    )
    parent.log_params(
        {
            "target": spec.target,
            "task": result.task,
            "metric": result.metric,
            "time_budget": spec.time_budget,
            "seed": spec.seed,
            "holdout": spec.holdout,
            "holdout_method": result.scheme["holdout"],
            "search": result.scheme["search"],
            "rows": report.n_rows,
            "columns": report.n_cols,
        }
    )
    parent.log_metrics(
        {
            f"search_{result.metric}": result.search_score,
            **{f"holdout_{k}": v for k, v in result.holdout.items()},
            **{f"baseline_{k}": v for k, v in result.baseline.items()},
            "trials": len(result.leaderboard),
        }
    )
    parent.log_json(result.leaderboard, "leaderboard.json")
    parent.log_text(
        pd.DataFrame(result.leaderboard).drop(columns=["params"]).to_csv(index=False),
        "leaderboard.csv",
    )
    parent.log_json(result.findings.to_list(), "findings.json")
    parent.log_json(result.summary(), "summary.json")
    parent.log_text(spec.model_dump_json(indent=2), "spec.json")
    # what `mlre reproduce` refits: every member exactly (weights unrounded, folds or a refit)
    parent.log_json(recipe(result.model), "recipe.json")
    features = result.scheme["features"]
    registered = log_and_register(
        parent.run_id,
        result.model,
        inputs.df[features],
        name=result.project,
        tags={
            "mlre.metric": result.metric,
            "mlre.holdout_score": f"{result.holdout_score:.6f}",
            "mlre.data_sha256": inputs.table.sha256,
        },
    )
    parent.set_tags(
        {
            "mlre.model_uri": registered.uri,
            "mlre.model_version": registered.version,
            "mlre.model_sha256": registered.sha256,
        }
    )
    result.run_id = parent.run_id
    result.model_uri = registered.uri
    result.model_version = registered.version
    result.model_sha256 = registered.sha256


def recipe(model: Any) -> dict[str, Any]:
    """How the final model was built, exactly enough to build it again."""
    return {
        "task": model.task,
        "members": [
            {
                "family": m.family,
                "params": m.params,
                "weight": float(m.weight),
                "bagged_models": len(m.pipelines),
            }
            for m in model.members
        ],
    }


# --------------------------------------------------------------------------- predict


@dataclass
class Prediction:
    """Predictions for a table, and what was noticed about its columns."""

    frame: pd.DataFrame | None  # None when the predictions were streamed to a file
    warnings: list[str]
    model_uri: str
    model_version: str | None
    rows: int = 0


def predict(
    model_uri: str,
    data: str | Path | pd.DataFrame,
    *,
    output: str | Path | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    batch_rows: int | None = None,
) -> Prediction:
    """Predict with a registered model after checking its hash and the input against its contract.

    With an ``output`` file, a Parquet or CSV input larger than memory allows (or any, when
    ``batch_rows`` is given) is predicted in batches of rows, memory bounded by the batch."""
    from mlre.api.stream import BATCH_ROWS, predict_streamed, streamable
    from mlre.track.registry import load_model, predict_frame

    loaded = load_model(model_uri)
    model = loaded.model
    if output is not None and (batch_rows is not None or streamable(data, output)):
        rows, warnings = predict_streamed(model, data, output, rows=batch_rows or BATCH_ROWS)
        return Prediction(None, warnings, model_uri, loaded.version, rows)
    features, warnings = checked_input(model, data, encoding=encoding, delimiter=delimiter)
    frame = predict_frame(model, features)
    if output is not None:
        out = Path(output)
        if out.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(out, index=False)
        else:
            frame.to_csv(out, index=False)
    return Prediction(frame, warnings, model_uri, loaded.version, len(frame))


def checked_input(
    model: Any,
    data: str | Path | pd.DataFrame,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The model's input columns of ``data``, checked against its data contract, and warnings.

    A missing column or an impossible type is an InputError naming the column; extra columns
    and unseen categories are warnings.
    """
    from mlre.api.audit import _as_table

    table = _as_table(data, spec=Spec(), encoding=encoding, delimiter=delimiter)
    violations = model.contract.validate_frame(table.frame)
    blocking = [v for v in violations if v.blocking]
    if blocking:
        first = blocking[0]
        more = f" (and {len(blocking) - 1} more problem(s))" if len(blocking) > 1 else ""
        raise InputError(
            f"{first.message}{more}",
            hint="the table must have the columns and types the model was trained on",
        )
    features = [c.name for c in model.contract.features]
    return table.frame[features], [v.message for v in violations]


# --------------------------------------------------------------------------- listing


def leaderboard(run_id: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The leaderboard of a run (default: the most recent ``mlre run``)."""
    from mlre.track.store import read_json_artifact

    run_id = run_id or _latest_run_id()
    try:
        return run_id, read_json_artifact(run_id, "leaderboard.json")
    except Exception as err:
        raise InputError(
            f"run {run_id} has no leaderboard ({str(err).splitlines()[0]})",
            hint="list runs with `mlre runs`",
        ) from None


def runs(max_results: int = 20) -> list[dict[str, Any]]:
    """Recent mlre runs in the store, newest first."""
    from mlre.track.store import find_runs

    out = []
    for r in find_runs(None, max_results=5 * max_results):
        if r.data.tags.get("mlre.kind") not in ("audit", "run") or len(out) >= max_results:
            continue
        metric = r.data.tags.get("mlre.metric")
        out.append(
            {
                "run_id": r.info.run_id,
                "kind": r.data.tags.get("mlre.kind"),
                "name": r.info.run_name,
                "status": r.info.status,
                "started": pd.Timestamp(r.info.start_time, unit="ms").isoformat(timespec="seconds"),
                "metric": metric,
                "holdout": r.data.metrics.get(f"holdout_{metric}") if metric else None,
                "model": r.data.tags.get("mlre.model_uri"),
            }
        )
    return out
