"""The data contract: the schema a model was trained on, saved beside it and checked on new data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from mlre.data.profile import ColumnProfile, logical_dtype
from mlre.data.roles import Role
from mlre.errors import InputError
from mlre.spec import Task

CONTRACT_VERSION = 1
#: Categorical columns with more distinct values than this are open (any value allowed).
MAX_CATEGORIES = 1000


class ColumnContract(BaseModel):
    """What one column must look like."""

    name: str
    role: Role
    dtype: str
    nullable: bool
    categories: list[Any] | None = None
    min: Any = None
    max: Any = None


class Violation(BaseModel):
    """One way a table breaks the contract."""

    column: str | None
    kind: Literal[
        "missing_column", "wrong_type", "unexpected_null", "unseen_category", "extra_column"
    ]
    message: str
    blocking: bool
    rows: list[int] = Field(default_factory=list)


class DataContract(BaseModel):
    """The versioned schema of a training table."""

    contract_version: int = CONTRACT_VERSION
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    mlre_version: str = ""
    target: str | None = None
    task: Task | None = None
    n_rows: int = 0
    data_sha256: str | None = None
    columns: list[ColumnContract]
    # sensitive columns the model reads at prediction time (a fairness post-processing does)
    sensitive_inputs: list[str] = Field(default_factory=list)

    @property
    def features(self) -> list[ColumnContract]:
        """Every column but the target."""
        return [c for c in self.columns if c.name != self.target]

    def column(self, name: str) -> ColumnContract:
        """The contract of one column."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def save(self, path: str | Path) -> Path:
        """Write the contract as JSON."""
        path = Path(path)
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> DataContract:
        """Read a contract written by :meth:`save`."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise InputError(
                f"cannot read data contract {path}: {err}", hint="was it written by mlre?"
            ) from None
        if raw.get("contract_version", 0) > CONTRACT_VERSION:
            raise InputError(
                f"data contract {path} is version {raw['contract_version']}, newer than this mlre understands",
                hint="upgrade mlre",
            )
        return cls.model_validate(raw)

    def validate_frame(
        self, df: pd.DataFrame, *, with_target: bool = False, values: np.ndarray | None = None
    ) -> list[Violation]:
        """Every way ``df`` breaks the contract; ``blocking`` ones make prediction impossible.
        ``values``: a small table's values as objects (``df.to_numpy(dtype=object)``), when the
        caller has taken them out already."""
        out: list[Violation] = []
        expected = self.columns if with_target else self.features
        names = {c.name for c in expected}
        small = len(df) <= SMALL_ROWS
        table = None
        if small:  # every value in one pandas call, not one call per column
            table = df.to_numpy(dtype=object) if values is None else values
        # names looked up in a dict: a pandas Index's `in` costs microseconds a column
        position = {name: j for j, name in enumerate(df.columns)}
        for col in expected:
            if col.name not in position:
                out.append(
                    Violation(
                        column=col.name,
                        kind="missing_column",
                        blocking=True,
                        message=f"column {col.name!r} is missing",
                    )
                )
                continue
            if table is not None and col.dtype != "datetime":
                out.extend(_check_small(col, table[:, position[col.name]].tolist()))
            else:
                out.extend(_check_column(col, df[col.name]))
        for extra in df.columns:
            if extra not in names and extra != self.target:
                out.append(
                    Violation(
                        column=str(extra),
                        kind="extra_column",
                        blocking=False,
                        message=f"column {extra!r} is not used by the model and is ignored",
                    )
                )
        return out


def _rows(mask: np.ndarray, limit: int = 10) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)[:limit]]


#: Up to this many rows a table is handled value by value in Python: pandas' fixed cost per
#: operation made checking a one-row request cost more than 10 ms. The same bound decides when
#: a served request is a table of its JSON values and when the model's first step reads such a
#: table's values directly (``mlre.serve.protocol``, ``ColumnCoercer``).
SMALL_ROWS = 64


_ALLOWED: dict[int, tuple[list[Any], frozenset[str]]] = {}


def _allowed(categories: list[Any]) -> frozenset[str]:
    """The categories as text, built once per contract column (a served model checks every
    request against the same lists; rebuilding a set of up to 1,000 values each time showed)."""
    entry = _ALLOWED.get(id(categories))
    if entry is None or entry[0] is not categories:
        if len(_ALLOWED) >= 4096:
            _ALLOWED.clear()
        entry = _ALLOWED[id(categories)] = (categories, frozenset(str(v) for v in categories))
    return entry[1]


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)


def _not_a_number(v: Any) -> bool:
    if isinstance(v, (bool, int, np.integer)):
        return False
    try:
        return not np.isfinite(float(v.strip() if isinstance(v, str) else v))
    except (TypeError, ValueError):
        return True


def _check_small(col: ColumnContract, values: list[Any]) -> list[Violation]:
    """``_check_column`` for a few rows, with the same findings and messages."""
    out: list[Violation] = []
    missing = [_is_missing(v) for v in values]
    if not col.nullable and any(missing):
        out.append(
            Violation(
                column=col.name,
                kind="unexpected_null",
                blocking=False,
                rows=[i for i, m in enumerate(missing) if m][:10],
                message=f"column {col.name!r} has missing values but had none in training",
            )
        )
    present = [(i, v) for i, (v, m) in enumerate(zip(values, missing, strict=True)) if not m]
    if col.dtype in {"integer", "float"}:
        bad = [(i, v) for i, v in present if _not_a_number(v)]
        if bad:
            out.append(
                Violation(
                    column=col.name,
                    kind="wrong_type",
                    blocking=True,
                    rows=[i for i, _ in bad[:10]],
                    message=f"column {col.name!r} expects numbers but got {bad[0][1]!r}",
                )
            )
    if col.categories is not None:
        allowed = _allowed(col.categories)
        unseen = [(i, str(v)) for i, v in present if str(v) not in allowed]
        if unseen:
            shown = sorted({v for _, v in unseen})[:5]
            out.append(
                Violation(
                    column=col.name,
                    kind="unseen_category",
                    blocking=False,
                    rows=[i for i, _ in unseen[:10]],
                    message=f"column {col.name!r} has values never seen in training: {', '.join(shown)}",
                )
            )
    return out


def _check_column(col: ColumnContract, s: pd.Series) -> list[Violation]:
    out: list[Violation] = []
    missing = s.isna().to_numpy()
    if not col.nullable and missing.any():
        out.append(
            Violation(
                column=col.name,
                kind="unexpected_null",
                blocking=False,
                rows=_rows(missing),
                message=f"column {col.name!r} has missing values but had none in training",
            )
        )
    if col.dtype in {"integer", "float"}:
        coerced = (
            pd.to_numeric(s, errors="coerce") if not pd.api.types.is_numeric_dtype(s.dtype) else s
        )
        bad = (coerced.isna().to_numpy() & ~missing) | np.isinf(
            pd.Series(coerced, dtype="float64").to_numpy(na_value=np.nan)
        )
        if bad.any():
            example = s[bad].iloc[0]
            out.append(
                Violation(
                    column=col.name,
                    kind="wrong_type",
                    blocking=True,
                    rows=_rows(bad),
                    message=f"column {col.name!r} expects numbers but got {example!r}",
                )
            )
    elif col.dtype == "datetime":
        parsed = (
            pd.to_datetime(s, errors="coerce", format="mixed")
            if not pd.api.types.is_datetime64_any_dtype(s.dtype)
            else s
        )
        bad = parsed.isna().to_numpy() & ~missing
        if bad.any():
            out.append(
                Violation(
                    column=col.name,
                    kind="wrong_type",
                    blocking=True,
                    rows=_rows(bad),
                    message=f"column {col.name!r} expects dates but got {s[bad].iloc[0]!r}",
                )
            )
    if col.categories is not None:
        allowed = _allowed(col.categories)
        present = s[~missing]
        unseen = ~present.astype(str).isin(allowed).to_numpy()
        if unseen.any():
            values = sorted({str(v) for v in present[unseen].head(1000)})[:5]
            out.append(
                Violation(
                    column=col.name,
                    kind="unseen_category",
                    blocking=False,
                    rows=[int(i) for i in np.flatnonzero(~missing)[unseen][:10]],
                    message=f"column {col.name!r} has values never seen in training: {', '.join(values)}",
                )
            )
    return out


def build_contract(
    df: pd.DataFrame,
    profiles: dict[str, ColumnProfile],
    *,
    target: str | None,
    task: Task | None,
    data_sha256: str | None,
) -> DataContract:
    """The contract of a training table, from its profile."""
    from mlre.version import __version__

    columns = []
    for name, prof in profiles.items():
        categories = None
        if prof.role in (Role.CATEGORICAL, Role.BOOLEAN) and prof.n_unique <= MAX_CATEGORIES:
            values = pd.unique(df[name].dropna())
            categories = sorted(
                (v.item() if isinstance(v, np.generic) else v for v in values), key=str
            )
        lo, hi = (
            (prof.min, prof.max) if prof.role in (Role.NUMERIC, Role.DATETIME) else (None, None)
        )
        columns.append(
            ColumnContract(
                name=name,
                role=prof.role,
                dtype=prof.dtype if prof.dtype != "mixed" else "string",
                nullable=prof.n_missing > 0,
                categories=categories,
                min=lo,
                max=hi,
            )
        )
    return DataContract(
        mlre_version=__version__,
        target=target,
        task=task,
        n_rows=len(df),
        data_sha256=data_sha256,
        columns=columns,
    )


__all__ = ["ColumnContract", "DataContract", "Violation", "build_contract", "logical_dtype"]
