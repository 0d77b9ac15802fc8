"""``mlre monitor``: has the data moved, is the model still good, and what to do when it is not.
Drift, data quality against the contract, performance on labels (or estimated without them),
alerts (exit code, JSON, webhook), an HTML page and an MLflow record."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlre.errors import InputError
from mlre.findings import Finding, Findings, Severity
from mlre.spec import Task

if TYPE_CHECKING:
    from mlre.monitor.drift import DataDrift
    from mlre.monitor.estimate import Estimated
    from mlre.monitor.performance import Window

#: The score each task is watched by.
WATCHED: dict[Task, str] = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}


@dataclass
class MonitorResult:
    """What the monitor saw."""

    drift: DataDrift
    reference_score: Window | None = None
    windows: list[Window] = field(default_factory=list)
    estimated: dict[str, Estimated] = field(default_factory=dict)
    metric: str | None = None
    findings: Findings = field(default_factory=Findings)
    webhook: dict[str, Any] | None = None
    run_id: str | None = None

    @property
    def alert(self) -> bool:
        """True when a finding is an error: drift of the data set, a broken contract, or a
        score worse than the reference beyond its interval."""
        return self.findings.has_errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what the webhook receives)."""
        return {
            "alert": self.alert,
            "drift": self.drift.to_dict(),
            "metric": self.metric,
            "reference_score": None
            if self.reference_score is None
            else self.reference_score.to_dict(),
            "windows": [w.to_dict() for w in self.windows],
            "estimated": {k: v.to_dict() for k, v in self.estimated.items()},
            "findings": self.findings.to_list(),
            "webhook": self.webhook,
            "run_id": self.run_id,
        }


def _frame(data: str | Path | pd.DataFrame, what: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    from mlre.data.load import load_table

    frame = load_table(data).frame
    if frame.empty:
        raise InputError(f"the {what} table has no rows")
    return frame


def _is_span(value: Any) -> bool:
    """True for a span of the prediction log rather than a table."""
    return (
        isinstance(value, str)
        and (value == "all" or value.startswith(("last:", "since:")))
        and not Path(value).exists()
    )


def _reference(
    reference: Any, model: str | None, loaded: Any
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """A table, or the training table of the run that made the model; with the latter, which
    rows the run held out (the model's score on rows it learnt from would flatter it)."""
    if not (isinstance(reference, str) and reference == "training"):
        return _frame(reference, "reference"), None
    if loaded is None or model is None:
        raise InputError("--reference training needs --model")
    from mlre.api.inputs import contract_of, load_run_inputs
    from mlre.api.recorded import recorded_task, run_inputs
    from mlre.search.job import prepare
    from mlre.track.releases import resolve_version
    from mlre.track.store import store_client

    name, version = resolve_version(model)
    run_id = store_client().get_model_version(name, version).run_id
    run, spec, (_, source) = run_inputs(run_id, None)
    inputs = load_run_inputs(source, spec)
    task = recorded_task(run, inputs)
    prepared = prepare(inputs.df, spec, task, contract_of(inputs), None)
    if prepared.hold_rows is None:  # the run was scored on a separate test table
        return prepared.labelled.reset_index(drop=True), None
    held = np.zeros(len(prepared.labelled), dtype=bool)
    held[prepared.hold_rows] = True
    return prepared.labelled.reset_index(drop=True), held


def _current(
    current: Any, model: str | None, loaded: Any, prediction_log: Any
) -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray] | None]:
    """A table, or a span of the prediction log with the model's logged answers."""
    if not _is_span(current):
        return _frame(current, "current"), None
    from mlre.monitor.log import read_log, since_of

    since = since_of(str(current))
    if loaded is None or model is None:
        raise InputError("reading the prediction log needs --model")
    from mlre.serve.predlog import default_path
    from mlre.track.releases import resolve_version

    name, _ = resolve_version(model)
    logged = read_log(prediction_log or default_path(), name, since=since)
    frame = logged.inputs
    target = loaded.contract.target
    if target and logged.labels.notna().any():
        frame = frame.assign(**{target: logged.labels.to_numpy()})
    if loaded.task == "regression":
        values = pd.to_numeric(logged.predictions, errors="coerce").to_numpy(dtype=float)
        return frame, (values, values)
    if logged.probabilities is None:
        raise InputError(
            f"the prediction log of {name!r} holds no class probabilities to monitor",
            hint="the log must come from the classifier given with --model",
        )
    classes = [str(c) for c in loaded.classes_]
    proba = logged.probabilities.reindex(columns=classes).to_numpy(dtype=float)
    watched = proba[:, 1] if loaded.task == "binary" else proba.max(axis=1)
    return frame, (proba, watched)


def _model(name: str) -> Any:
    """A registered model by URI, or by name (its champion, else its latest candidate)."""
    from mlre.track.registry import load_model

    if not name.startswith("models:/"):
        from mlre.track.releases import read_release

        version = read_release(name).serving
        if version is None:
            raise InputError(f"{name!r} has no champion or candidate version to monitor")
        name = f"models:/{name}/{version}"
    return load_model(name).model


def _outputs(model: Any, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """What the model answers (probabilities or values) and the one number per row whose
    drift is watched (the positive-class probability, the top probability, the value)."""
    if model.task == "regression":
        values = np.asarray(model.predict(X), dtype=float)
        return values, values
    proba = np.asarray(model.predict_proba(X), dtype=float)
    watched = proba[:, 1] if model.task == "binary" else proba.max(axis=1)
    return proba, watched


def watch(
    reference: str | Path | pd.DataFrame,
    current: str | Path | pd.DataFrame,
    *,
    model: str | None = None,
    target: str | None = None,
    time_column: str | None = None,
    window: str | None = None,
    drift_share: float | None = None,
    p_value: float | None = None,
    distance: float | None = None,
    webhook: str | None = None,
    spec: Any = None,
    prediction_log: str | Path | None = None,
    report: str | Path | None = None,
    project: str | None = None,
    track: bool = True,
) -> MonitorResult:
    """Compare ``current`` with ``reference``: drift of every feature (and of the model's
    predictions with ``model``), data quality against the model's contract, the score per
    ``window`` when ``current`` has the ``target``, else an estimate without labels for a
    binary classifier. An alert (``result.alert``) POSTs the JSON document to ``webhook``.

    With ``model``, ``reference`` may be ``"training"`` (the table of the run that made the
    model) and ``current`` a span of the service's prediction log (``last:7d``,
    ``since:2026-11-01``, ``all``; labels from ``/feedback``). Thresholds and the webhook not
    given come from the spec's ``monitor`` section (./mlre.yaml, or ``spec``)."""
    from mlre.monitor.drift import column_drift, data_drift, drift_findings

    thresholds, webhook = _policy(spec, drift_share, p_value, distance, webhook)
    loaded = _model(model) if model else None
    ref, held = _reference(reference, model, loaded)
    cur, logged = _current(current, model, loaded, prediction_log)
    if loaded is not None:
        target = target or loaded.contract.target
        columns = [c.name for c in loaded.contract.features]
    else:
        columns = [c for c in ref.columns if c != target and c != time_column]
    shared, findings = _shared_columns(columns, ref, cur, loaded)
    drift = data_drift(ref, cur, shared, thresholds)
    if target is not None and target in ref.columns and target in cur.columns:
        labelled = cur[target].dropna()
        if len(labelled):
            drift.target = column_drift(ref[target].dropna(), labelled, target, thresholds)
    result = MonitorResult(drift)
    if loaded is not None and len(shared) == len(columns):
        ref_out, ref_watch = _outputs(loaded, ref)
        cur_out, cur_watch = logged if logged is not None else _outputs(loaded, cur)
        drift.prediction = column_drift(
            pd.Series(ref_watch), pd.Series(cur_watch), "prediction", thresholds
        )
        _score(result, loaded, ref, cur, ref_out, cur_out, target, time_column, window, held)
    findings += drift_findings(drift)
    findings += _score_findings(result)
    result.findings = Findings(findings)
    if webhook and result.alert:
        result.webhook = _post(webhook, result.to_dict())
    page = None
    if report is not None or track:
        page = _page(result)
        if report is not None:
            Path(report).write_text(page, encoding="utf-8")
    if track:
        params = {
            "model": model or "",
            "target": target or "",
            "window": window or "",
            "drift_share": thresholds.drift_share,
        }
        name = project or (model.split("/")[-1].split("@")[0] if model else "monitor")
        result.run_id = _record(result, name, params, page)
    return result


def _policy(
    spec: Any,
    drift_share: float | None,
    p_value: float | None,
    distance: float | None,
    webhook: str | None,
) -> tuple[Any, str | None]:
    """The drift thresholds and the webhook: those given, else the spec's ``monitor`` section."""
    from mlre.monitor.drift import Thresholds
    from mlre.spec import load_spec

    policy = (
        spec if spec is not None and not isinstance(spec, (str, Path)) else load_spec(spec)
    ).monitor
    drift_share = policy.drift_share if drift_share is None else drift_share
    p_value = policy.p_value if p_value is None else p_value
    distance = policy.distance if distance is None else distance
    webhook = webhook or policy.webhook
    if not 0 < drift_share <= 1 or not 0 < p_value < 1 or distance <= 0:
        raise InputError("drift share must be in (0, 1], p-value in (0, 1), distance positive")
    return Thresholds(p_value=p_value, distance=distance, drift_share=drift_share), webhook


def _shared_columns(
    columns: list[str], ref: pd.DataFrame, cur: pd.DataFrame, loaded: Any
) -> tuple[list[str], list[Finding]]:
    """The watched ``columns`` the current table has, and the data quality findings: against
    the model's contract with a model, else a missing column is an error."""
    missing_ref = [c for c in columns if c not in ref.columns]
    if missing_ref:
        raise InputError(f"the reference table has no column {missing_ref[0]!r}")
    findings: list[Finding] = []
    if loaded is not None:
        from mlre.monitor.quality import quality_findings

        findings += quality_findings(loaded.contract, cur)
    shared = [c for c in columns if c in cur.columns]
    if not shared:
        raise InputError("the current table shares no feature column with the reference")
    if loaded is None:
        for c in (c for c in columns if c not in cur.columns):
            findings.append(
                Finding(
                    severity=Severity.ERROR,
                    check="quality_missing_column",
                    column=c,
                    message=f"column {c!r} is missing from the current table",
                )
            )
    return shared, findings


def _record(result: MonitorResult, project: str, params: dict[str, Any], page: str | None) -> str:
    """Record the monitoring in MLflow: drift share, PSI per column, estimated scores."""
    from mlre.track.store import record

    drift = result.drift
    metrics = {"share_drifted": drift.share}
    metrics |= {f"psi.{c.column}": c.psi for c in drift.columns}
    metrics |= {f"estimated.{k}": e.value for k, e in result.estimated.items()}
    return record(
        project,
        "monitor",
        tags={"mlre.alert": str(result.alert).lower()},
        params=params,
        metrics=metrics,
        document=result.to_dict(),
        page=page,
    )


def _score(
    result: MonitorResult,
    model: Any,
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    ref_out: np.ndarray,
    cur_out: np.ndarray,
    target: str | None,
    time_column: str | None,
    window: str | None,
    held: np.ndarray | None = None,
) -> None:
    """The reference's score (on ``held`` rows only, when given), the current windows' scores
    when labelled, else the estimate (calibrated on the same rows)."""
    from mlre.monitor.performance import Window, score_with_interval, windows
    from mlre.search.job import encode_target

    if target is None or target not in ref.columns:
        return
    metric = WATCHED[model.task]
    result.metric = metric
    classes = None if model.task == "regression" else model.classes_
    keep = ref[target].notna().to_numpy().copy()
    if held is not None:
        keep &= held
    y_ref = encode_target(ref[target][keep], model.task, classes).y
    known = y_ref >= 0 if model.task != "regression" else ~np.isnan(y_ref)
    keep[np.flatnonzero(keep)[~known]] = False
    y_ref = y_ref[known]
    value, low, high = score_with_interval(metric, y_ref, ref_out[keep])
    result.reference_score = Window("reference", int(keep.sum()), value, low, high)
    if target in cur.columns and cur[target].notna().any():
        keep = cur[target].notna().to_numpy().copy()
        y_cur = encode_target(cur[target][keep], model.task, classes).y
        known = y_cur >= 0 if model.task != "regression" else ~np.isnan(y_cur)
        keep[np.flatnonzero(keep)[~known]] = False
        y_cur = y_cur[known]
        times = None
        if time_column is not None:
            if time_column not in cur.columns:
                raise InputError(f"the current table has no time column {time_column!r}")
            times = cur[time_column][keep]
        result.windows = windows(metric, y_cur, cur_out[keep], times, window)
    elif model.task == "binary":
        from mlre.monitor.estimate import Calibrator, estimate_binary

        calibrator = Calibrator().fit(ref_out[keep][:, 1], y_ref)
        result.estimated = estimate_binary(cur_out[:, 1], calibrator)


def _score_findings(result: MonitorResult) -> list[Finding]:
    from mlre.evaluate.metrics import get_metric
    from mlre.monitor.performance import performance_findings

    if result.reference_score is None or result.metric is None:  # both set by _score
        return []
    better = get_metric(result.metric).greater_is_better
    out = performance_findings(result.metric, result.reference_score, result.windows, better)
    est = result.estimated.get("roc_auc")
    if est is not None:
        from mlre.monitor.performance import clearly_worse

        ref = result.reference_score.value
        worse = clearly_worse(result.reference_score, est.value, est.low, est.high, True)
        out.append(
            Finding(
                severity=Severity.ERROR if worse else Severity.INFO,
                check="performance_estimated",
                message=f"estimated ROC AUC without labels: {est.value:.4f} [{est.low:.4f}, "
                f"{est.high:.4f}] against {ref:.4f} on the reference"
                + (": the model is likely worse on this data" if worse else ""),
                evidence={k: v.to_dict() for k, v in result.estimated.items()},
            )
        )
    return out


def _post(url: str, document: dict[str, Any]) -> dict[str, Any]:
    """POST the alert; a failure is reported, never raised (the exit code still alerts)."""
    import json

    import httpx

    try:
        response = httpx.post(
            url,
            content=json.dumps(document, default=str),
            headers={"content-type": "application/json"},
            timeout=10,
        )
        return {"url": url, "status": response.status_code}
    except httpx.HTTPError as err:
        return {"url": url, "error": str(err).splitlines()[0] if str(err) else type(err).__name__}


def _page(result: MonitorResult) -> str:
    from mlre.report.page import Section, sections_page

    d = result.drift
    head = (
        f"{'ALERT: ' if result.alert else ''}{len(d.drifted)} of {len(d.columns)} columns drifted"
        f" ({d.share:.0%}; data set drift at {d.thresholds.drift_share:.0%})"
    )
    rows = [
        [
            c.column,
            c.kind,
            c.test,
            "" if c.p_value is None else f"{c.p_value:.3g}",
            "" if c.distance is None else f"{c.distance:.3f}",
            f"{c.psi:.3f}",
            c.psi_band,
            "drifted" if c.drifted else "",
        ]
        for c in sorted(d.columns, key=lambda c: -c.psi)
    ]
    sections = [
        Section(
            "Drift by column",
            [
                "Numbers: Kolmogorov-Smirnov on small references, Wasserstein distance (in "
                "reference standard deviations) on large ones; categories: chi-squared, or "
                "Jensen-Shannon distance. PSI below 0.1 is stable, 0.1-0.25 moderate, above 0.25 "
                "major."
            ],
            ["column", "kind", "test", "p", "distance", "PSI", "band", ""],
            rows,
            [c.figure for c in d.drifted[:8]],
        )
    ]
    if d.prediction is not None:
        p = d.prediction
        sections.append(
            Section(
                "Prediction drift",
                [f"PSI {p.psi:.3f} ({p.psi_band}); {'drifted' if p.drifted else 'stable'}."],
                figures=[p.figure],
            )
        )
    if result.reference_score is not None:
        ref = result.reference_score
        table = [
            [w.label, f"{w.rows:,}", f"{w.value:.4f}", f"[{w.low:.4f}, {w.high:.4f}]"]
            for w in [ref, *result.windows]
        ]
        table += [
            [
                f"estimated {k} (no labels)",
                f"{e.rows:,}",
                f"{e.value:.4f}",
                f"[{e.low:.4f}, {e.high:.4f}]",
            ]
            for k, e in result.estimated.items()
        ]
        sections.append(
            Section(
                f"Performance ({result.metric})",
                [],
                ["window", "rows", result.metric or "", "95% CI"],
                table,
            )
        )
    sections.append(
        Section(
            "Findings",
            header=["severity", "check", "finding"],
            rows=[[f.severity.value, f.check, f.message] for f in result.findings],
        )
    )
    return sections_page("Monitoring report", head, sections)
