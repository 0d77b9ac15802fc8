"""Checks of each column on its own: missing, constant, duplicated, identifier-like, types, outliers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from mlre.data.audit.context import AuditContext
from mlre.data.roles import Role, is_text_dtype, kind_fractions, value_sample
from mlre.findings import Finding, Severity

#: Tokens that almost always stand for "missing": reported as warnings.
MISSING_SYMBOLS = {"?", "-", "--", ".", "na", "n/a", "null", "nan", "#n/a", "(blank)", "undefined"}
#: Words that often mean "missing" but can be real categories: reported as info.
MISSING_WORDS = {"unknown", "missing", "not available", "blank", "empty"}
DISGUISED_MISSING = MISSING_SYMBOLS | MISSING_WORDS


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x >= 0.001 else f"{100 * x:.2g}%"


def missing_values(ctx: AuditContext) -> Iterator[Finding]:
    """Columns with missing values; mostly-empty columns get their own warning."""
    light: dict[str, float] = {}
    for col in ctx.features:
        p = ctx.profiles[col]
        if p.n_missing == 0:
            continue
        if p.missing_frac >= 0.5:
            empty = p.missing_frac == 1.0
            yield Finding(
                severity=Severity.WARNING,
                check="missing_values",
                column=col,
                message=f"{col!r} is {'entirely empty' if empty else _pct(p.missing_frac) + ' missing'}",
                evidence={"missing": p.n_missing, "fraction": round(p.missing_frac, 4)},
                fix="drop the column"
                if empty
                else "check why it is missing; drop it or add a 'was missing' indicator",
            )
        else:
            light[col] = round(p.missing_frac, 4)
    if light:
        worst = sorted(light.items(), key=lambda kv: -kv[1])
        yield Finding(
            severity=Severity.INFO,
            check="missing_values",
            message=f"{len(light)} column(s) have some missing values (most: {worst[0][0]!r}, {_pct(worst[0][1])})",
            evidence={"fraction_by_column": dict(worst)},
            fix="models impute them; check that missingness is not itself a data error",
        )


def disguised_missing(ctx: AuditContext) -> Iterator[Finding]:
    """Text tokens such as '?' or 'unknown' that stand for a missing value."""
    for col in ctx.df.columns:
        p = ctx.profiles[col]
        if not is_text_dtype(ctx.df[col].dtype) or p.dtype == "mixed":
            continue
        if p.n_unique > 5000:
            continue
        counts = ctx.df[col].value_counts(dropna=True)
        tokens = {
            str(k): int(v) for k, v in counts.items() if str(k).strip().lower() in DISGUISED_MISSING
        }
        if tokens:
            total = sum(tokens.values())
            symbolic = any(t.strip().lower() in MISSING_SYMBOLS for t in tokens)
            yield Finding(
                severity=Severity.WARNING if symbolic else Severity.INFO,
                check="disguised_missing",
                column=col,
                message=f"{col!r} uses {', '.join(repr(t) for t in tokens)} for missing values ({total} rows)",
                evidence={"tokens": tokens, "fraction": round(total / ctx.n_rows, 4)},
                fix=f"declare them missing: na_values: {list(tokens)} in mlre.yaml (or --na-values)",
            )


def constant_columns(ctx: AuditContext) -> Iterator[Finding]:
    """Columns with one value (no information) or almost only one value."""
    for col in ctx.features:
        p = ctx.profiles[col]
        if p.n_unique <= 1 and p.missing_frac < 1.0:
            yield Finding(
                severity=Severity.WARNING,
                check="constant",
                column=col,
                message=f"{col!r} has a single value" + (f" ({p.top[0][0]!r})" if p.top else ""),
                evidence={"value": p.top[0][0] if p.top else None, "missing": p.n_missing},
                fix="drop the column: it carries no information",
            )
        elif p.top_frac is not None and p.top_frac >= 0.99 and p.n_unique > 1:
            value = p.top[0][0] if p.top else p.median
            yield Finding(
                severity=Severity.INFO,
                check="near_constant",
                column=col,
                message=f"{col!r} is {value!r} in {_pct(p.top_frac)} of rows",
                evidence={"value": value, "fraction": round(p.top_frac, 5), "distinct": p.n_unique},
                fix="keep it only if the rare values matter; it can destabilise linear models",
            )


def duplicate_rows(ctx: AuditContext) -> Iterator[Finding]:
    """Identical rows, and identical feature rows that carry different labels."""
    hashes = pd.Series(ctx.row_hashes)
    dup = hashes.duplicated(keep="first").to_numpy()
    n_dup = int(dup.sum())
    if n_dup:
        first_of = (
            pd.Series(np.arange(len(hashes))).groupby(hashes.to_numpy()).transform("min").to_numpy()
        )
        examples = [[int(first_of[i]), int(i)] for i in np.flatnonzero(dup)[:5]]
        frac = n_dup / ctx.n_rows
        yield Finding(
            severity=Severity.WARNING if frac >= 0.01 else Severity.INFO,
            check="duplicate_rows",
            message=f"{n_dup} row(s) ({_pct(frac)}) repeat an earlier row exactly",
            evidence={
                "duplicates": n_dup,
                "fraction": round(frac, 5),
                "examples_first_and_copy": examples,
            },
            fix="drop the copies unless repeated rows are real events; copies inflate cross-validation scores",
        )
    if ctx.target is None:
        return
    labelled = ctx.labelled.to_numpy()
    frame = pd.DataFrame(
        {"h": ctx.feature_row_hashes[labelled], "y": ctx.df[ctx.target][labelled].to_numpy()}
    )
    labels_per_row = frame.groupby("h")["y"].nunique()
    conflicted = labels_per_row[labels_per_row > 1]
    if len(conflicted):
        rows = np.flatnonzero(labelled)[frame["h"].isin(conflicted.index).to_numpy()]
        yield Finding(
            severity=Severity.INFO,
            check="conflicting_duplicates",
            message=f"{len(conflicted)} group(s) of identical feature rows carry different labels ({len(rows)} rows)",
            evidence={
                "groups": len(conflicted),
                "rows": len(rows),
                "example_rows": [int(r) for r in rows[:10]],
            },
            fix="check the labels of these rows; if both are right, the features cannot separate them",
        )


def duplicate_columns(ctx: AuditContext) -> Iterator[Finding]:
    """Columns whose values are identical to another column's."""
    by_hash: dict[int, list[str]] = {}
    for col, digest in ctx.column_digests.items():
        by_hash.setdefault(digest, []).append(col)
    for cols in by_hash.values():
        if len(cols) < 2:
            continue
        first = cols[0]
        copies = [
            c
            for c in cols[1:]
            if ctx.df[c].reset_index(drop=True).equals(ctx.df[first].reset_index(drop=True))
        ]
        if copies:
            yield Finding(
                severity=Severity.WARNING,
                check="duplicate_columns",
                column=first,
                message=f"{', '.join(repr(c) for c in copies)} duplicate(s) {first!r} exactly",
                evidence={"column": first, "copies": copies},
                fix="keep one of them",
            )


def identifiers(ctx: AuditContext) -> Iterator[Finding]:
    """Columns that look like row identifiers and would only teach a model to memorise."""
    for col in ctx.features:
        p = ctx.profiles[col]
        if p.role is Role.IDENTIFIER and col not in ctx.declared_ids:
            yield Finding(
                severity=Severity.WARNING,
                check="identifier",
                column=col,
                message=f"{col!r} looks like an identifier ({p.n_unique} distinct values in {ctx.n_rows} rows)",
                evidence={"distinct": p.n_unique, "unique_fraction": round(p.unique_frac, 4)},
                fix="it is not used as a feature; list it under id_columns to confirm",
            )


def high_cardinality(ctx: AuditContext) -> Iterator[Finding]:
    """Categorical columns with so many values that one-hot encoding breaks down."""
    for col in ctx.features:
        p = ctx.profiles[col]
        if p.role is Role.CATEGORICAL and (
            p.n_unique > 100 or (p.n_unique > 20 and p.unique_frac > 0.5)
        ):
            yield Finding(
                severity=Severity.WARNING,
                check="high_cardinality",
                column=col,
                message=f"{col!r} has {p.n_unique} distinct categories",
                evidence={
                    "distinct": p.n_unique,
                    "unique_fraction": round(p.unique_frac, 4),
                    "top": p.top[:5],
                },
                fix="group rare categories or use target/frequency encoding; check it is not an identifier",
            )


def mixed_types(ctx: AuditContext) -> Iterator[Finding]:
    """Columns holding values of more than one kind (numbers stored with stray text, mixed objects)."""
    for col in ctx.df.columns:
        s = ctx.df[col]
        p = ctx.profiles[col]
        if p.dtype == "mixed":
            kinds = s.dropna().map(lambda v: type(v).__name__).value_counts()
            if len(kinds) < 2:
                continue
            yield Finding(
                severity=Severity.WARNING,
                check="mixed_types",
                column=col,
                message=f"{col!r} mixes value types: "
                + ", ".join(f"{k} ({v})" for k, v in kinds.items()),
                evidence={"types": {str(k): int(v) for k, v in kinds.items()}},
                fix="convert the column to one type at the source",
            )
            continue
        if not is_text_dtype(s.dtype) or p.role in (Role.TEXT, Role.IDENTIFIER):
            continue
        sample = value_sample(s, 5000, ctx.seed)
        sample = sample[~sample.astype(str).str.strip().str.lower().isin(DISGUISED_MISSING)]
        kinds = kind_fractions(sample)
        if not kinds:
            continue
        # yes/no tokens beside other words are ordinary categories, not a type mix
        kinds["text"] = kinds.get("text", 0.0) + kinds.pop("boolean", 0.0)
        ranked = sorted(((v, k) for k, v in kinds.items() if v > 0), reverse=True)
        if len(ranked) < 2 or ranked[0][1] == "text" or ranked[1][0] < 0.001:
            continue
        main_frac, main = ranked[0]
        if main_frac < 0.5:
            continue
        odd = sample[~_matches(sample, main)].astype(str).unique()[:5].tolist()
        yield Finding(
            severity=Severity.WARNING,
            check="mixed_types",
            column=col,
            message=f"{col!r} holds {main}s ({_pct(main_frac)}) mixed with other values such as "
            + ", ".join(repr(o) for o in odd),
            evidence={"kinds": {k: round(v, 4) for k, v in kinds.items()}, "examples": odd},
            fix=f"clean the non-{main} values or declare them missing (na_values)",
        )


def _matches(values: pd.Series, kind: str) -> pd.Series:
    from mlre.data.roles import BOOL_TOKENS, DATE_RE, NUMBER_RE

    text = values.astype(str).str.strip()
    if kind == "number":
        return text.str.match(NUMBER_RE)
    if kind == "boolean":
        return text.str.lower().isin(BOOL_TOKENS)
    if kind == "date":
        return text.str.match(DATE_RE)
    return pd.Series(True, index=values.index)


def infinite_values(ctx: AuditContext) -> Iterator[Finding]:
    """Numeric columns holding +/-inf, which most models and metrics cannot take."""
    for col in ctx.df.columns:
        p = ctx.profiles[col]
        if p.n_inf:
            rows = np.flatnonzero(np.isinf(ctx.df[col].to_numpy(dtype=float, na_value=np.nan)))[:10]
            yield Finding(
                severity=Severity.ERROR,
                check="infinite_values",
                column=col,
                message=f"{col!r} has {p.n_inf} infinite value(s)",
                evidence={"count": p.n_inf, "rows": [int(r) for r in rows]},
                fix="find the division or overflow that produced them; replace with missing or a bound",
            )


def outliers(ctx: AuditContext) -> Iterator[Finding]:
    """Values far outside the interquartile range; extreme ones are likely errors or sentinels."""
    for col in ctx.features:
        p = ctx.profiles[col]
        if (
            p.role is not Role.NUMERIC
            or p.q1 is None
            or p.q3 is None
            or p.median is None
            or p.n_unique <= 10
            or p.dtype not in ("integer", "float")
        ):
            continue
        iqr = p.q3 - p.q1
        if iqr <= 0:
            continue
        x = ctx.df[col].to_numpy(dtype=float, na_value=np.nan)
        lo, hi = p.q1 - 3 * iqr, p.q3 + 3 * iqr
        with np.errstate(invalid="ignore"):
            out = np.isfinite(x) & ((x < lo) | (x > hi))
        n_out = int(out.sum())
        if not n_out:
            continue
        distance = np.where(out, np.abs(x - p.median) / iqr, 0.0)
        worst = np.argsort(-distance)[:5]
        extreme = float(distance[worst[0]])
        frac = n_out / ctx.n_rows
        severe = extreme > 100
        if not severe and frac < 0.001:
            continue
        yield Finding(
            severity=Severity.WARNING if severe else Severity.INFO,
            check="outliers",
            column=col,
            message=f"{col!r} has {n_out} value(s) beyond 3 IQR of the quartiles"
            + (f"; the farthest is {extreme:.0f} IQR from the median" if severe else ""),
            evidence={
                "count": n_out,
                "fraction": round(frac, 5),
                "fences": [lo, hi],
                "examples": [{"row": int(i), "value": float(x[i])} for i in worst if out[i]],
            },
            fix="values that far out are usually entry errors or codes such as 99999: check and clean them"
            if severe
            else "trees cope; for linear models consider clipping or a log transform",
        )


def datetime_problems(ctx: AuditContext) -> Iterator[Finding]:
    """Date columns with unparsable values, dates in the future, or implausibly old dates."""
    now = pd.Timestamp(datetime.now(UTC)).tz_localize(None)
    for col in ctx.df.columns:
        if ctx.profiles[col].role is not Role.DATETIME:
            continue
        s = ctx.df[col]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            parsed = s.dt.tz_localize(None) if getattr(s.dt, "tz", None) is not None else s
        else:
            sample = value_sample(s, 20_000, ctx.seed)
            parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
            bad = sample[parsed.isna()]
            if len(bad):
                frac = len(bad) / len(sample)
                yield Finding(
                    severity=Severity.WARNING,
                    check="datetime_unparsable",
                    column=col,
                    message=f"{col!r} has dates that cannot be parsed ({_pct(frac)} of values), e.g. "
                    + ", ".join(repr(v) for v in bad.astype(str).unique()[:3]),
                    evidence={
                        "fraction": round(frac, 4),
                        "examples": bad.astype(str).unique()[:5].tolist(),
                    },
                    fix="use one date format (ISO 8601, YYYY-MM-DD) throughout the column",
                )
            parsed = parsed.dropna()
            if getattr(parsed.dt, "tz", None) is not None:
                parsed = parsed.dt.tz_localize(None)
        future = int((parsed > now).sum())
        if future:
            yield Finding(
                severity=Severity.WARNING,
                check="datetime_future",
                column=col,
                message=f"{col!r} has {future} date(s) in the future (latest {parsed.max()})",
                evidence={"count": future, "latest": str(parsed.max())},
                fix="future dates are usually entry errors or placeholders such as 2099-12-31",
            )
        old = int((parsed < pd.Timestamp("1900-01-01")).sum())
        if old:
            yield Finding(
                severity=Severity.WARNING,
                check="datetime_ancient",
                column=col,
                message=f"{col!r} has {old} date(s) before 1900 (earliest {parsed.min()})",
                evidence={"count": old, "earliest": str(parsed.min())},
                fix="dates like 1800-01-01 are usually placeholders for 'unknown': make them missing",
            )
