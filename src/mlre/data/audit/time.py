"""Time in a table: rows that cannot be placed in time, and tables that are events in time
without saying so (their splits should go forward, not be shuffled)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from scipy import stats

from mlre.data.audit.context import AuditContext
from mlre.data.roles import Role
from mlre.data.split import parse_times
from mlre.findings import Finding, Severity

#: Share of consecutive rows that must go forward in time for a table to count as in time order.
IN_ORDER = 0.95
#: The fewest distinct times before a column can say anything about order or drift.
MIN_TIMES = 20
#: A target drifts with a date when its rank correlation with it is at least this strong
#: (Cramér's V for classes), and unlikely by chance at this level.
DRIFT_STRENGTH = 0.2
DRIFT_P = 1e-3


def unplaceable_times(ctx: AuditContext) -> Iterator[Finding]:
    """Rows whose time column value is missing or cannot be read as a date: a time-ordered split
    cannot place them (they are not silently sorted first or last)."""
    col = ctx.time_column
    if col is None or col not in ctx.df.columns:
        return
    values = ctx.df[col][ctx.labelled.to_numpy()]
    bad = parse_times(values).isna().to_numpy()
    if not bad.any():
        return
    examples = values[bad].astype(str).unique()[:3].tolist()
    yield Finding(
        severity=Severity.ERROR,
        check="time_unplaceable",
        column=col,
        message=f"{int(bad.sum()):,} labelled row(s) have no readable time in {col!r} "
        f"(missing or not a date, e.g. {', '.join(repr(e) for e in examples)}): they cannot be "
        "placed before or after the others",
        evidence={
            "rows": int(bad.sum()),
            "share": round(float(bad.mean()), 4),
            "examples": examples,
        },
        fix="fill in or correct those times, or drop the rows; with --force the run leaves them out",
    )


def _date_columns(ctx: AuditContext) -> Iterator[tuple[str, pd.Series]]:
    """Each date column other than the time column, parsed, with enough distinct times."""
    for col in ctx.features:
        if col == ctx.time_column or ctx.role(col) is not Role.DATETIME:
            continue
        times = parse_times(ctx.df[col])
        if times.nunique() >= MIN_TIMES:
            yield col, times


def time_order(ctx: AuditContext) -> Iterator[Finding]:
    """A date column the rows are sorted by, or that the target drifts with, when no time column
    is declared: shuffled folds would then let the search learn from the future."""
    if ctx.time_column is not None or ctx.target is None:
        return
    for col, times in _date_columns(ctx):
        known = times.dropna().to_numpy()
        steps = np.diff(known.astype("datetime64[ns]").astype(np.int64))
        forward = float((steps >= 0).mean()) if len(steps) else 0.0
        if forward >= IN_ORDER and (steps > 0).any():
            yield Finding(
                severity=Severity.WARNING,
                check="rows_in_time_order",
                column=col,
                message=f"the rows are in order of {col!r} ({forward:.0%} of consecutive rows go "
                "forward in time): they look like events in time, and shuffled folds would "
                "validate on the past with models that saw the future",
                evidence={"forward_share": round(forward, 4)},
                fix=f"set time_column: {col} (or --time-column {col}) to validate forward in time",
            )
            continue
        drift = _target_drift(ctx, times)
        if drift is not None:
            strength, p = drift
            yield Finding(
                severity=Severity.WARNING,
                check="target_drifts_with_time",
                column=col,
                message=f"the target {ctx.target!r} drifts with {col!r} (strength {strength:.2f}, "
                f"p = {p:.1g}): a model validated on shuffled rows is judged on a mix of old and "
                "new that the future will not give it",
                evidence={"strength": round(strength, 4), "p_value": p},
                fix=f"set time_column: {col} (or --time-column {col}) to validate forward in time",
            )


def _target_drift(ctx: AuditContext, times: pd.Series) -> tuple[float, float] | None:
    """How strongly the target moves with ``times`` and how likely that is by chance, when it
    is strong and unlikely; None otherwise."""
    assert ctx.target is not None
    y = ctx.df[ctx.target]
    keep = (times.notna() & y.notna()).to_numpy()
    if keep.sum() < 3 * MIN_TIMES:
        return None
    t = times[keep].astype("datetime64[ns]").astype(np.int64).to_numpy()
    target = y[keep]
    if ctx.task == "regression" and pd.api.types.is_numeric_dtype(target.dtype):
        rho, p = stats.spearmanr(t, target.to_numpy(dtype=float))
        strength = abs(float(rho))
    else:  # classes against fifths of the time span
        bins = pd.qcut(pd.Series(t).rank(method="first"), 5, labels=False)
        table = pd.crosstab(bins.to_numpy(), target.astype(str).to_numpy())
        if table.shape[1] < 2:
            return None
        chi2, p, _, _ = stats.chi2_contingency(table)
        strength = float(np.sqrt(chi2 / (table.to_numpy().sum() * (min(table.shape) - 1))))
    p = float(p)
    if np.isfinite(strength) and strength >= DRIFT_STRENGTH and p < DRIFT_P:
        return strength, p
    return None
