"""Data quality of incoming traffic against the model's data contract: missing columns, wrong
types, unexpected missing values, categories never seen in training, numbers outside the
training range."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlre.data.contract import DataContract
from mlre.findings import Finding, Severity

#: Share of rows outside the training range from which a column is reported.
OUT_OF_RANGE_SHARE = 0.01


def quality_findings(contract: DataContract, current: pd.DataFrame) -> list[Finding]:
    """Every way the current table breaks the contract, as findings with row counts."""
    out = []
    for v in contract.validate_frame(current):
        if v.kind == "extra_column":
            continue
        severity = Severity.ERROR if v.kind == "missing_column" else Severity.WARNING
        out.append(
            Finding(
                severity=severity,
                check=f"quality_{v.kind}",
                column=v.column,
                message=v.message,
                evidence={"example_rows": v.rows},
                fix="fix the pipeline that feeds the model" if v.blocking else None,
            )
        )
    for col in contract.features:
        if col.name not in current.columns or col.dtype not in ("integer", "float"):
            continue
        if col.min is None or col.max is None:
            continue
        x = pd.to_numeric(current[col.name], errors="coerce").to_numpy(dtype=float)
        x = x[~np.isnan(x)]
        if not len(x):
            continue
        outside = (x < float(col.min)) | (x > float(col.max))
        share = float(outside.mean())
        if share >= OUT_OF_RANGE_SHARE:
            out.append(
                Finding(
                    severity=Severity.WARNING,
                    check="quality_out_of_range",
                    column=col.name,
                    message=f"{share:.1%} of {col.name!r} lies outside the training range "
                    f"[{col.min:g}, {col.max:g}] (seen {x.min():g} to {x.max():g}): the model "
                    "extrapolates there",
                    evidence={"share": share, "min": float(x.min()), "max": float(x.max())},
                )
            )
    return out
