"""Checks between a training and a test table: schema, contamination and distribution shift."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd

from mlre.data.audit.context import AuditContext, hash_rows
from mlre.data.roles import Role
from mlre.findings import Finding, Severity

ALPHA = 0.01
#: A shift must be both significant and at least this large to be reported (KS D or Cramér's V).
MIN_EFFECT = 0.1
SHIFT_SAMPLE = 50_000
TOP_CATEGORIES = 30


def _shared_features(ctx: AuditContext) -> list[str]:
    assert ctx.test is not None
    return [c for c in ctx.features if c in ctx.test.columns]


def schema_mismatch(ctx: AuditContext) -> Iterator[Finding]:
    """Columns missing from, or added to, the test table, and columns whose type differs."""
    if ctx.test is None:
        return
    missing = [c for c in ctx.features if c not in ctx.test.columns]
    extra = [c for c in ctx.test.columns if c not in ctx.df.columns]
    if missing:
        yield Finding(
            severity=Severity.ERROR,
            check="schema_mismatch",
            message=f"the test table lacks {len(missing)} training column(s): {', '.join(map(repr, missing[:10]))}",
            evidence={"missing": missing},
            fix="both tables must come from the same extraction",
        )
    if extra:
        yield Finding(
            severity=Severity.INFO,
            check="schema_mismatch",
            message=f"the test table has {len(extra)} column(s) not in training: {', '.join(map(repr, extra[:10]))}",
            evidence={"extra": extra},
            fix="they are ignored",
        )
    for col in _shared_features(ctx):
        a, b = ctx.df[col].dtype, ctx.test[col].dtype
        num_a, num_b = pd.api.types.is_numeric_dtype(a), pd.api.types.is_numeric_dtype(b)
        if num_a != num_b:
            yield Finding(
                severity=Severity.WARNING,
                check="schema_mismatch",
                column=col,
                message=f"{col!r} is {a} in training but {b} in the test table",
                evidence={"train": str(a), "test": str(b)},
                fix="look for stray text in the numeric one (e.g. 'n/a')",
            )


def train_test_overlap(ctx: AuditContext) -> Iterator[Finding]:
    """Test rows that also appear in training: the holdout would be contaminated."""
    if ctx.test is None:
        return
    shared = _shared_features(ctx)
    if not shared:
        return
    train_h = hash_rows(ctx.df[shared])
    test_h = hash_rows(ctx.test[shared])
    inside = np.isin(test_h, train_h)
    n = int(inside.sum())
    if not n:
        return
    frac = n / len(ctx.test)
    # With few, coarse features identical rows are common inside the training table itself; a
    # random split then shares them with the test table at about the same rate. Only overlap well
    # beyond that baseline points at copied rows.
    repeated = float(pd.Series(train_h).duplicated(keep=False).mean())
    contaminated = frac >= 0.01 and frac > 2 * repeated + 0.01
    expected = (
        ""
        if contaminated
        else (
            f"; the training table itself repeats {100 * repeated:.1f}% of its rows, so coarse "
            "features explain this"
            if repeated >= 0.01
            else ""
        )
    )
    yield Finding(
        severity=Severity.ERROR if contaminated else Severity.WARNING,
        check="train_test_overlap",
        message=f"{n} test row(s) ({100 * frac:.2f}%) also appear in the training table{expected}",
        evidence={
            "count": n,
            "fraction": round(frac, 5),
            "train_repeated_fraction": round(repeated, 5),
            "test_rows": [int(r) for r in np.flatnonzero(inside)[:10]],
        },
        fix="remove them from one side (split before any deduplication or augmentation); "
        "otherwise the test score is optimistic",
    )


def _sample(s: pd.Series, seed: int) -> pd.Series:
    s = s.dropna()
    return s.sample(SHIFT_SAMPLE, random_state=seed) if len(s) > SHIFT_SAMPLE else s


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p)
    ranked = p[order] * len(p) / (np.arange(len(p)) + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    out = np.empty_like(adjusted)
    out[order] = adjusted
    return out


def _test_column(train: pd.Series, test: pd.Series, role: Role, seed: int) -> dict | None:
    """Two-sample test for one column: KS for numbers and dates, chi-squared for categories."""
    from scipy import stats

    a, b = _sample(train, seed), _sample(test, seed)
    if len(a) < 5 or len(b) < 5:
        return None
    is_num = pd.api.types.is_numeric_dtype
    is_date = pd.api.types.is_datetime64_any_dtype
    numeric = role in (Role.NUMERIC, Role.DATETIME) and (
        (is_num(a.dtype) and is_num(b.dtype)) or (is_date(a.dtype) and is_date(b.dtype))
    )
    if numeric:
        xa = a.astype("int64").to_numpy(float) if is_date(a.dtype) else a.to_numpy(float)
        xb = b.astype("int64").to_numpy(float) if is_date(b.dtype) else b.to_numpy(float)
        res = stats.ks_2samp(xa[np.isfinite(xa)], xb[np.isfinite(xb)])
        return {
            "test": "Kolmogorov-Smirnov",
            "statistic": float(res.statistic),
            "effect": float(res.statistic),
            "p_value": float(res.pvalue),
            "train_median": float(np.median(xa)),
            "test_median": float(np.median(xb)),
        }
    a, b = a.astype(str), b.astype(str)
    top = a.value_counts().index[:TOP_CATEGORIES]
    a = a.where(a.isin(top), "(other)")
    b = b.where(b.isin(top), "(other)")
    table = pd.crosstab(
        np.r_[np.zeros(len(a), int), np.ones(len(b), int)], np.r_[a.to_numpy(), b.to_numpy()]
    )
    if table.shape[1] < 2:
        return None
    chi2, p, _, _ = stats.chi2_contingency(table.to_numpy())
    v = float(np.sqrt(chi2 / table.to_numpy().sum()))
    share_a, share_b = a.value_counts(normalize=True), b.value_counts(normalize=True)
    moved = share_b.reindex(share_a.index.union(share_b.index), fill_value=0) - share_a.reindex(
        share_a.index.union(share_b.index), fill_value=0
    )
    biggest = moved.abs().sort_values(ascending=False).index[:3]
    return {
        "test": "chi-squared",
        "statistic": float(chi2),
        "effect": v,
        "p_value": float(p),
        "largest_changes": {str(k): round(float(moved[k]), 4) for k in biggest},
    }


def distribution_shift(ctx: AuditContext) -> Iterator[Finding]:
    """Columns whose distribution differs between training and test, significantly and materially."""
    if ctx.test is None:
        return
    results: dict[str, dict] = {}
    columns = [c for c in _shared_features(ctx) if ctx.role(c) not in (Role.TEXT, Role.IDENTIFIER)]
    if ctx.target and ctx.target in ctx.test.columns:
        columns.append(ctx.target)
    for col in columns:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = _test_column(ctx.df[col], ctx.test[col], ctx.role(col), ctx.seed)
            except (ValueError, TypeError):
                res = None
        if res is not None:
            results[col] = res
    if not results:
        return
    adjusted = _benjamini_hochberg(np.array([r["p_value"] for r in results.values()]))
    for (col, res), p_adj in zip(results.items(), adjusted, strict=True):
        if p_adj >= ALPHA or res["effect"] < MIN_EFFECT:
            continue
        what = "target" if col == ctx.target else "column"
        size = "KS distance" if res["test"] == "Kolmogorov-Smirnov" else "Cramér's V"
        severe = res["effect"] >= 0.3
        yield Finding(
            severity=Severity.WARNING,
            check="distribution_shift",
            column=col,
            message=f"{what} {col!r} is distributed differently in the test table "
            f"({size} {res['effect']:.2f}, adjusted p={p_adj:.1e})"
            + (" — a large shift" if severe else ""),
            evidence=res | {"p_adjusted": float(p_adj)},
            fix="check both tables come from the same population and period; "
            "a model's test score will not transfer if they do not",
        )


def unseen_categories(ctx: AuditContext) -> Iterator[Finding]:
    """Categories present in the test table that training never saw."""
    if ctx.test is None:
        return
    for col in _shared_features(ctx):
        if ctx.role(col) not in (Role.CATEGORICAL, Role.BOOLEAN):
            continue
        train_values = set(ctx.df[col].dropna().astype(str).unique())
        test_values = ctx.test[col].dropna().astype(str)
        unseen = ~test_values.isin(train_values)
        if unseen.any():
            frac = float(unseen.mean())
            values = test_values[unseen].value_counts().index[:5].tolist()
            yield Finding(
                severity=Severity.WARNING if frac >= 0.01 else Severity.INFO,
                check="unseen_categories",
                column=col,
                message=f"{col!r} has {int(unseen.sum())} test value(s) never seen in training, e.g. "
                + ", ".join(map(repr, values)),
                evidence={"count": int(unseen.sum()), "fraction": round(frac, 5), "values": values},
                fix="models map unseen categories to 'unknown'; check for typos or new codes",
            )
