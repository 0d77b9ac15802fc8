"""The tables a command works on: loaded from a file, a folder, SQL or a DataFrame, shaped by the
spec (ignored columns dropped, every named column checked) and with the task the target asks for.

``mlre audit``, ``mlre run``, ``mlre compare`` and the commands that replay a recorded run all
load their data here, so that a table means the same thing to each of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from mlre.data.contract import DataContract, build_contract
from mlre.data.load import Table, load_table
from mlre.data.profile import ColumnProfile, profile_frame
from mlre.data.roles import detect_task
from mlre.errors import InputError, SpecError, did_you_mean
from mlre.spec import METRICS, Spec, Task, load_spec

Progress = Callable[[str], None]


@dataclass
class Inputs:
    """The loaded tables of one command, with the spec applied."""

    spec: Spec
    table: Table
    df: pd.DataFrame
    task: Task | None
    test: Table | None

    def require_task(self, command: str) -> Task:
        """The task of inputs with a target; a SpecError saying that ``command`` needs one
        when the spec names none."""
        if self.spec.target is None or self.task is None:
            raise SpecError(
                f"{command} needs a target", hint="pass --target COLUMN or set target: in mlre.yaml"
            )
        return self.task


def resolve_spec(spec: Spec | str | Path | None, overrides: dict[str, Any]) -> Spec:
    """The spec of a command: a given Spec or the spec file, with the keys set by arguments."""
    if isinstance(spec, Spec):
        values = spec.model_dump() | {k: v for k, v in overrides.items() if v not in (None, [], ())}
        from mlre.spec import build_spec

        return build_spec(values)
    return load_spec(spec, **overrides)


def load_inputs(
    data: str | Path | pd.DataFrame | None,
    *,
    test: str | Path | pd.DataFrame | None,
    sql: str | None,
    db: str | Path | None,
    spec: Spec | str | Path | None,
    encoding: str | None,
    delimiter: str | None,
    step: Progress,
    overrides: dict[str, Any],
    sample_large: bool = False,
) -> Inputs:
    """Load ``data`` (and ``test``) shaped by the spec; with ``sample_large``, a Parquet table
    too large for memory is read as a uniform sample that fits (``load_parquet_sample``)."""
    the_spec = resolve_spec(spec, overrides)
    step("loading data")
    table = _large_sample(data, sql, the_spec.seed) if sample_large else None
    if table is None:
        table = as_table(
            data, sql=sql, db=db, encoding=encoding, delimiter=delimiter, spec=the_spec
        )
    inputs = table_inputs(table, the_spec)
    if test is not None:
        step("loading test data")
        test_table = as_table(test, encoding=encoding, delimiter=delimiter, spec=the_spec)
        test_table.frame = test_table.frame.drop(
            columns=[c for c in the_spec.drop if c in test_table.frame.columns]
        )
        inputs.test = test_table
    return inputs


def load_run_inputs(source: Any, spec: Spec, test: Any = None) -> Inputs:
    """A recorded run's table (and test table), loaded and shaped by its spec as the run was."""
    return load_inputs(
        source, test=test, sql=None, db=None, spec=spec, encoding=None, delimiter=None,
        step=lambda _: None, overrides={}, sample_large=True,
    )  # fmt: skip


def table_inputs(table: Table, spec: Spec) -> Inputs:
    """The inputs of one loaded table (no test table): the spec applied, the task found."""
    df = _prepare(table, spec)
    return Inputs(spec, table, df, _task_of(df, spec), None)


def as_table(
    data: str | Path | pd.DataFrame | None,
    *,
    spec: Spec,
    sql: str | None = None,
    db: str | Path | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Table:
    """``data`` as a Table: a DataFrame as it is (hashed by its rows), anything else loaded."""
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise InputError("the DataFrame has no rows", hint="pass a table with data")
        import hashlib

        from mlre.data.audit.context import hash_rows

        sha = hashlib.sha256(
            hash_rows(data).tobytes() + ",".join(map(str, data.columns)).encode()
        ).hexdigest()
        frame = data.copy()
        frame.columns = [str(c) for c in frame.columns]
        return Table(frame, "DataFrame", "dataframe", sha, {})
    return load_table(
        data, sql=sql, db=db, encoding=encoding, delimiter=delimiter, na_values=spec.na_values
    )


def contract_of(inputs: Inputs, profiles: dict[str, ColumnProfile] | None = None) -> DataContract:
    """The data contract of loaded inputs, from their column profiles (no audit checks)."""
    spec = inputs.spec
    if profiles is None:
        profiles = profile_frame(inputs.df, spec.id_columns, spec.roles)
    return build_contract(
        inputs.df, profiles, target=spec.target, task=inputs.task, data_sha256=inputs.table.sha256
    )


def _require_columns(df: pd.DataFrame, names: Sequence[str], what: str) -> None:
    for name in names:
        if name not in df.columns:
            raise InputError(
                f"{what} {name!r} is not a column of the data",
                hint=did_you_mean(name, df.columns)
                or "columns: " + ", ".join(map(str, df.columns[:20])),
            )


def _prepare(table: Table, spec: Spec) -> pd.DataFrame:
    """Apply the spec to a loaded table: drop ignored columns, check every named column exists."""
    df = table.frame
    _require_columns(df, spec.drop, "dropped column")
    _require_columns(df, list(spec.roles), "column named in roles")
    ignored = [c for c, role in spec.roles.items() if role == "ignore"]
    if spec.drop or ignored:
        df = df.drop(columns=[*spec.drop, *ignored])
    if spec.target is not None:
        _require_columns(df, [spec.target], "target")
    _require_columns(df, spec.id_columns, "id column")
    _require_columns(df, spec.sensitive, "sensitive column")
    for key in ("time_column", "group_column"):
        value = getattr(spec, key)
        if value is not None:
            _require_columns(df, [value], key.replace("_", " "))
    if spec.time_column is not None:
        check_time_column(df[spec.time_column])
        if spec.gap:
            _check_gap(spec, df)
    return df


def _check_gap(spec: Spec, df: pd.DataFrame) -> None:
    """Refuse a gap that leaves too few rows to train on before the holdout (before anything
    is recorded; the split checks it again with ties of time)."""
    from mlre.data.split import MIN_TRAIN_ROWS, holdout_size

    labelled = int(df[spec.target].notna().sum()) if spec.target in df.columns else len(df)
    before = labelled - holdout_size(labelled, spec.holdout)
    if before - spec.gap < MIN_TRAIN_ROWS:
        raise InputError(
            f"a gap of {spec.gap:,} row(s) before the latest {labelled - before:,} leaves "
            f"{max(0, before - spec.gap):,} row(s) to train on",
            hint=f"use a gap under {max(0, before - MIN_TRAIN_ROWS):,} rows, or more data",
        )


#: A time column with more than this share of values that are not dates is refused outright
#: (fewer are reported by the audit as rows that cannot be placed in time).
MAX_UNPARSABLE_TIMES = 0.2


def check_time_column(values: pd.Series) -> None:
    """Refuse a time column that does not hold dates: numbers, or text of which more than
    ``MAX_UNPARSABLE_TIMES`` cannot be read as a date."""
    from mlre.data.split import parse_times

    name = values.name
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        raise InputError(
            f"time column {name!r} holds numbers, not dates",
            hint="give dates or timestamps (e.g. 2024-03-01 or 2024-03-01T12:00); a year or a "
            "period number is a numeric feature, not a time column",
        )
    present = values.notna() & (values.astype(str).str.strip() != "")
    if not present.any():
        raise InputError(f"time column {name!r} is empty in every row")
    times = parse_times(values[present])
    bad = times.isna()
    if bad.mean() > MAX_UNPARSABLE_TIMES:
        examples = ", ".join(repr(v) for v in values[present][bad.to_numpy()].astype(str)[:3])
        raise InputError(
            f"time column {name!r} is not a date column: {bad.mean():.0%} of its values cannot "
            f"be read as dates (e.g. {examples})",
            hint="name a column of dates or timestamps, or fix how they are written",
        )


def _task_of(df: pd.DataFrame, spec: Spec) -> Task | None:
    if spec.target is None:
        return None
    y = df[spec.target]
    if y.notna().sum() == 0:
        raise InputError(
            f"target {spec.target!r} is missing in every row",
            hint="check the column name and how missing values are written (na_values)",
        )
    detected = detect_task(y)  # raises on a single-valued target
    task = spec.task or _by_metric(spec.metric, y) or detected
    if task == "regression" and not pd.api.types.is_numeric_dtype(y.dtype):
        raise SpecError(
            f"task is regression but target {spec.target!r} is not numeric",
            hint="set task: binary or multiclass, or clean the target's values",
        )
    if task == "binary" and detected != "binary":
        raise SpecError(
            f"task is binary but target {spec.target!r} has {y.nunique()} classes",
            hint="set task: multiclass",
        )
    spec.resolved_metric(task)
    return task


def _by_metric(metric: str | None, y: pd.Series) -> Task | None:
    """The task a metric named without a task implies: a regression metric on a numeric target
    of more than two values (a count with few values is still a quantity when the user judges
    it by RMSE; two values are a yes or no, and RMSE on them is refused as a metric that does
    not fit)."""
    if metric is None or metric not in METRICS:
        return None
    tasks, _ = METRICS[metric]
    numeric = pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype)
    if tasks == {"regression"} and numeric and y.nunique() > 2:
        return "regression"
    return None


def _large_sample(data: Any, sql: str | None, seed: int) -> Table | None:
    """A sample of a Parquet table too large for memory, or None."""
    from mlre.api.stream import file_kind
    from mlre.data.load import load_parquet_sample

    if sql is not None or file_kind(data) != "parquet":
        return None
    return load_parquet_sample(Path(data), seed)
