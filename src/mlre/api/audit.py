"""``mlre audit`` and ``mlre init``: load a table, check it, record it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mlre.api.inputs import (
    Inputs,
    Progress,
    contract_of,
    load_inputs,
    resolve_spec,
    table_inputs,
)
from mlre.data.audit import AuditContext, run_checks
from mlre.data.contract import DataContract
from mlre.data.load import Table
from mlre.data.profile import ColumnProfile, profile_frame
from mlre.errors import InputError
from mlre.findings import Findings
from mlre.spec import SPEC_FILE, Spec, Task, render_template

log = logging.getLogger(__name__)


@dataclass
class AuditReport:
    """The outcome of ``mlre audit``: findings, profile, data contract and where they were recorded."""

    findings: Findings
    profiles: dict[str, ColumnProfile]
    contract: DataContract
    spec: Spec
    task: Task | None
    source: str
    data_sha256: str
    n_rows: int
    n_cols: int
    test_source: str | None = None
    run_id: str | None = None
    tracking_uri: str | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """1 when any finding is an error (the data should not be learned from as is), else 0."""
        return 1 if self.findings.has_errors else 0

    def summary(self) -> dict[str, Any]:
        """The headline facts of the audit."""
        return {
            "source": self.source,
            "test": self.test_source,
            "rows": self.n_rows,
            "columns": self.n_cols,
            "target": self.spec.target,
            "task": self.task,
            "data_sha256": self.data_sha256,
            "findings": self.findings.counts(),
            "run_id": self.run_id,
            "tracking_uri": self.tracking_uri,
            "seconds": round(self.seconds, 2),
            **({"streamed": self.details["streamed"]} if "streamed" in self.details else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (what ``mlre audit --json`` prints)."""
        return {
            "summary": self.summary(),
            "findings": self.findings.to_list(),
            "profile": [p.model_dump(mode="json") for p in self.profiles.values()],
        }


def audit_inputs(
    inputs: Inputs,
    step: Progress,
    model_sample: int = 20_000,
    whole_file: dict[str, Any] | None = None,
) -> AuditReport:
    """Profile, check and build the contract of loaded inputs (nothing recorded);
    ``whole_file``: exact statistics of the file ``inputs`` sample, for the profiles."""
    spec, df = inputs.spec, inputs.df
    step("profiling columns")
    profiles = profile_frame(df, spec.id_columns, spec.roles)
    if whole_file is not None:
        from mlre.data.audit.stream import apply_whole_file

        apply_whole_file(profiles, whole_file)
    ctx = AuditContext(
        df=df,
        profiles=profiles,
        target=spec.target,
        task=inputs.task,
        test=inputs.test.frame if inputs.test else None,
        seed=spec.seed,
        declared_ids=tuple(spec.id_columns),
        time_column=spec.time_column,
        model_sample=model_sample,
    )
    findings = run_checks(ctx, progress=step)
    contract = contract_of(inputs, profiles)
    return AuditReport(
        findings=findings,
        profiles=profiles,
        contract=contract,
        spec=spec,
        task=inputs.task,
        source=inputs.table.source,
        data_sha256=inputs.table.sha256,
        n_rows=len(df),
        n_cols=df.shape[1],
        test_source=inputs.test.source if inputs.test else None,
        details=inputs.table.details,
    )


def audit(
    data: str | Path | pd.DataFrame | None = None,
    *,
    target: str | None = None,
    test: str | Path | pd.DataFrame | None = None,
    sql: str | None = None,
    db: str | Path | None = None,
    spec: Spec | str | Path | None = None,
    track: bool = True,
    encoding: str | None = None,
    delimiter: str | None = None,
    progress: Progress | None = None,
    stream: bool | None = None,
    **spec_overrides: Any,
) -> AuditReport:
    """Check a table like a careful engineer and record the result in MLflow.

    ``data`` is a file, a folder of files or a DataFrame; or give ``sql`` (and ``db``). Keyword
    arguments not listed here override keys of the spec (``task``, ``seed``, ``id_columns``, ...).

    A Parquet or CSV file over 256 MB (or any, with ``stream=True``) is audited in bounded
    memory: exact whole-file counts by DuckDB, the other checks on a uniform random sample of
    200,000 rows (``mlre.data.audit.stream``); ``stream=False`` loads it whole.
    """
    started = time.perf_counter()
    step = progress or (lambda _: None)
    overrides = {"target": target, **spec_overrides}
    if _streams(data, test, sql, stream) and isinstance(data, str | Path):
        the_spec = resolve_spec(spec, overrides)

        def checked() -> AuditReport:
            return _audit_streamed(Path(data), the_spec, step)

        test_table = None
    else:
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
        )
        the_spec, test_table = inputs.spec, inputs.test

        def checked() -> AuditReport:
            return audit_inputs(inputs, step)

    if not track:
        report = checked()
        report.seconds = time.perf_counter() - started
        return report
    from mlre.track import tracked_run, tracking_uri

    with tracked_run(the_spec.project_name, "audit", {"mlre.kind": "audit"}) as run:
        report = checked()
        step("recording in MLflow")
        _record(run, report, test_table)
        report.run_id = run.run_id
    report.tracking_uri = tracking_uri()
    report.seconds = time.perf_counter() - started
    return report


def _streams(data: Any, test: Any, sql: str | None, stream: bool | None) -> bool:
    """Whether ``data`` is audited in bounded memory: a Parquet or CSV file (or a folder of
    Parquet) over the streaming size, or any such file when asked."""
    from mlre.api.stream import file_kind, large

    if stream is False or sql is not None or test is not None or file_kind(data) is None:
        return False
    return bool(stream) or large(Path(data))


def _audit_streamed(path: Path, spec: Spec, step: Progress) -> AuditReport:
    """The audit of a file too large to load: whole-file counts, checks on a sample."""
    from mlre.data.audit.stream import audit_file
    from mlre.data.load import file_sha256, parquet_files

    step("hashing the file")
    sha = file_sha256(parquet_files(path))

    def audit_sample(sample: pd.DataFrame, stats: dict[str, Any]) -> AuditReport:
        table = Table(sample, str(path), "parquet" if path.is_dir() else path.suffix[1:], sha, {})
        return audit_inputs(table_inputs(table, spec), step, whole_file=stats)

    report, _ = audit_file(path, audit_sample, target=spec.target, seed=spec.seed, step=step)
    return report


def _record(run: Any, report: AuditReport, test_table: Table | None) -> None:
    counts = report.findings.counts()
    run.set_tags(
        {
            "mlre.data_sha256": report.data_sha256,
            "mlre.source": report.source,
            "mlre.test_sha256": test_table.sha256 if test_table else None,
            "mlre.verdict": "fail" if report.findings.has_errors else "pass",
        }
    )
    run.log_params(
        {
            "target": report.spec.target,
            "task": report.task,
            "rows": report.n_rows,
            "columns": report.n_cols,
            "source": report.source,
            "test_source": report.test_source,
            "seed": report.spec.seed,
        }
    )
    run.log_metrics({f"findings_{k}": v for k, v in counts.items()})
    run.log_json(report.findings.to_list(), "audit/findings.json")
    run.log_json(
        [p.model_dump(mode="json") for p in report.profiles.values()], "audit/profile.json"
    )
    run.log_text(report.contract.model_dump_json(indent=2), "audit/contract.json")
    run.log_text(report.spec.model_dump_json(indent=2), "audit/spec.json")


def init(
    path: str | Path = SPEC_FILE,
    *,
    target: str | None = None,
    project: str | None = None,
    force: bool = False,
) -> Path:
    """Write a commented objective spec (mlre.yaml); never overwrites one unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise InputError(f"{path} already exists", hint="edit it, or pass --force to overwrite it")
    path.write_text(render_template(target=target, project=project), encoding="utf-8")
    return path
