"""Checks of the target and of what the features say about it: balance, size, leakage, label noise."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd

from mlre.data.audit.context import AuditContext
from mlre.data.roles import Role
from mlre.findings import Finding, Severity

log = logging.getLogger(__name__)

LEAK_ERROR = 0.99
LEAK_WARNING = 0.95
MIN_ROWS = 20


def _is_classification(ctx: AuditContext) -> bool:
    return ctx.task in ("binary", "multiclass")


def missing_target(ctx: AuditContext) -> Iterator[Finding]:
    """Rows without a target value, which cannot be learned from."""
    if ctx.target is None:
        return
    n = int((~ctx.labelled).sum())
    if n:
        rows = np.flatnonzero(~ctx.labelled.to_numpy())[:10]
        yield Finding(
            severity=Severity.WARNING,
            check="missing_target",
            column=ctx.target,
            message=f"{n} row(s) ({100 * n / ctx.n_rows:.1f}%) have no value for the target {ctx.target!r}",
            evidence={"count": n, "rows": [int(r) for r in rows]},
            fix="they are left out of training; find out why they are unlabelled (is it selection bias?)",
        )


def class_balance(ctx: AuditContext) -> Iterator[Finding]:
    """Imbalanced classes, and classes too rare to split into stratified folds and a holdout."""
    if ctx.target is None or not _is_classification(ctx):
        return
    counts = ctx.df[ctx.target].value_counts(dropna=True)
    evidence = {"class_counts": {str(k): int(v) for k, v in counts.items()}}
    ratio = counts.iloc[-1] / counts.iloc[0]
    if ratio < 0.1:
        yield Finding(
            severity=Severity.WARNING,
            check="class_imbalance",
            column=ctx.target,
            message=f"classes are imbalanced: {counts.index[-1]!r} has {counts.iloc[-1]} rows, "
            f"{counts.index[0]!r} has {counts.iloc[0]} (ratio 1:{1 / ratio:.0f})",
            evidence=evidence | {"minority_to_majority": round(float(ratio), 5)},
            fix="judge models by roc_auc, log_loss or balanced_accuracy, not accuracy; consider class weights",
        )
    single = counts[counts < 2]
    rare = counts[(counts >= 2) & (counts < 10)]
    if len(single):
        yield Finding(
            severity=Severity.ERROR,
            check="rare_classes",
            column=ctx.target,
            message=f"class(es) {', '.join(repr(str(c)) for c in single.index)} have a single row: "
            "they can be neither learned nor tested",
            evidence=evidence | {"classes": [str(c) for c in single.index]},
            fix="collect more rows of these classes, merge them into a related class, or drop them",
        )
    if len(rare):
        yield Finding(
            severity=Severity.WARNING,
            check="rare_classes",
            column=ctx.target,
            message=f"class(es) {', '.join(repr(str(c)) for c in rare.index)} have under 10 rows: "
            "too few to stratify folds and a holdout reliably",
            evidence=evidence | {"classes": [str(c) for c in rare.index]},
            fix="collect more rows of these classes or merge them into a related class",
        )


def too_few_rows(ctx: AuditContext) -> Iterator[Finding]:
    """Too few labelled rows to learn and evaluate, or for the number of features."""
    n = int(ctx.labelled.sum())
    k = max(1, len(ctx.model_features))
    if n < MIN_ROWS:
        yield Finding(
            severity=Severity.ERROR,
            check="too_few_rows",
            message=f"only {n} labelled row(s): too few to train and evaluate honestly",
            evidence={"rows": n, "features": k},
            fix=f"collect at least {MIN_ROWS} labelled rows; hundreds for a trustworthy score",
        )
    elif n < 10 * k:
        yield Finding(
            severity=Severity.WARNING,
            check="too_few_rows",
            message=f"{n} labelled rows for {k} features: fewer than 10 rows per feature",
            evidence={"rows": n, "features": k},
            fix="expect overfitting; prefer regularised models and fewer features",
        )


# --------------------------------------------------------------------------- leakage


def _encoded_target(ctx: AuditContext, idx: np.ndarray) -> np.ndarray:
    y = ctx.df[ctx.target].iloc[idx]
    if _is_classification(ctx):
        return pd.factorize(y, sort=True)[0]
    return pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)


def _numeric_view(s: pd.Series) -> np.ndarray | None:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype(float).to_numpy()
    if pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s.astype("int64").where(s.notna()).to_numpy(dtype=float, na_value=np.nan)
    return None


def _score(y: np.ndarray, pred: np.ndarray, classification: bool) -> float:
    """ROC AUC (one-vs-rest for many classes) or R^2, of out-of-fold predictions."""
    from sklearn.metrics import r2_score, roc_auc_score

    if classification:
        if pred.shape[1] == 2:
            return float(roc_auc_score(y, pred[:, 1]))
        return float(roc_auc_score(y, pred, multi_class="ovr", labels=np.arange(pred.shape[1])))
    return float(r2_score(y, pred))


def _oof_target_encoding(
    codes: np.ndarray, y: np.ndarray, folds, n_classes: int | None
) -> np.ndarray:
    """Out-of-fold mean target per category: how well the category alone predicts the target."""
    width = n_classes or 1
    target = np.eye(n_classes)[y] if n_classes else y.reshape(-1, 1)
    out = np.zeros((len(y), width))
    for train, test in folds:
        prior = target[train].mean(axis=0)
        sums = np.zeros((codes.max() + 2, width))
        counts = np.zeros(codes.max() + 2)
        np.add.at(sums, codes[train] + 1, target[train])
        np.add.at(counts, codes[train] + 1, 1)
        smooth = 1.0
        means = (sums + smooth * prior) / (counts[:, None] + smooth)
        out[test] = means[codes[test] + 1]
    return out if n_classes else out[:, 0]


def target_leakage(ctx: AuditContext) -> Iterator[Finding]:
    """Single features that predict the target almost perfectly, or copy a transform of it."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if ctx.target is None or ctx.task is None:
        return
    classification = _is_classification(ctx)
    rows = _leakage_rows(ctx, classification)
    if rows is None:
        return
    idx, y, n_classes = rows
    splitter = (StratifiedKFold if classification else KFold)(
        3, shuffle=True, random_state=ctx.seed
    )
    folds = list(splitter.split(np.zeros(len(y)), y if classification else None))
    for col in ctx.features:
        prof = ctx.profiles[col]
        if prof.role is Role.TEXT or prof.n_unique <= 1:
            continue
        scored = _alone_score(ctx, col, idx, y, folds, n_classes)
        if scored is None:
            continue
        score, x = scored
        rho = None
        if not classification and x is not None:
            rho = float(pd.Series(x).corr(pd.Series(y), method="spearman"))
        found = _leakage_finding(col, score, rho, classification, len(idx))
        if found is not None:
            yield found


def _leakage_rows(
    ctx: AuditContext, classification: bool
) -> tuple[np.ndarray, np.ndarray, int | None] | None:
    """The rows the leakage check models (a sample), their encoded target and its number of
    classes (classes of fewer than three rows left out); None when fewer than two remain."""
    y_all = ctx.df[ctx.target]
    idx = ctx.sample_index(ctx.model_sample, stratify=y_all if classification else None)
    y = _encoded_target(ctx, idx)
    n_classes = int(y.max()) + 1 if classification else None
    if classification and np.bincount(y).min() < 3:
        kept = np.flatnonzero(np.bincount(y) >= 3)
        if len(kept) < 2:
            return None
        keep = np.isin(y, kept)
        idx, y = idx[keep], pd.factorize(y[keep], sort=True)[0]
        n_classes = len(kept)
    return idx, y, n_classes


def _alone_score(
    ctx: AuditContext,
    col: str,
    idx: np.ndarray,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    n_classes: int | None,
) -> tuple[float, np.ndarray | None] | None:
    """How well ``col`` alone predicts the target out of fold (a shallow tree on a number, the
    target's mean per category otherwise), and its numeric values; None when it cannot tell."""
    from sklearn.model_selection import cross_val_predict
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    classification = n_classes is not None
    s = ctx.df[col].iloc[idx]
    x = _numeric_view(s)
    if x is None and ctx.profiles[col].role is Role.NUMERIC:
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    try:
        if x is not None:
            if np.isnan(x).all():
                return None
            x = np.where(np.isinf(x), np.nan, x)
            model = (DecisionTreeClassifier if classification else DecisionTreeRegressor)(
                max_depth=4, min_samples_leaf=5, random_state=ctx.seed
            )
            method = "predict_proba" if classification else "predict"
            pred = cross_val_predict(model, x.reshape(-1, 1), y, cv=folds, method=method)
        else:
            codes = pd.factorize(s.astype(str).where(s.notna(), None))[0]
            pred = _oof_target_encoding(codes, y, folds, n_classes)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = _score(y, pred, classification)
    except ValueError as err:  # a fold without some class, constant input, ...
        log.debug("leakage check skipped %s: %s", col, err)
        return None
    return score, x


def _leakage_finding(
    col: str, score: float, rho: float | None, classification: bool, rows: int
) -> Finding | None:
    """What a feature's score alone (and its rank correlation with the target) says: leakage,
    a suspicion, or nothing."""
    name = "ROC AUC" if classification else "R²"
    copy = rho is not None and abs(rho) >= 0.999
    if score >= LEAK_ERROR or copy:
        what = (
            f"is a near-copy of the target (rank correlation {rho:.4f})"
            if copy
            else f"predicts the target almost perfectly on its own ({name} {score:.3f})"
        )
        return Finding(
            severity=Severity.ERROR,
            check="target_leakage",
            column=col,
            message=f"{col!r} {what}",
            evidence={
                "score": round(score, 4),
                "metric": name,
                "rank_correlation": rho,
                "rows_checked": rows,
            },
            fix="if it is known only after the outcome (or derived from it), drop it; "
            "otherwise the task is trivial",
        )
    if score >= LEAK_WARNING:
        return Finding(
            severity=Severity.WARNING,
            check="target_leakage",
            column=col,
            message=f"{col!r} alone predicts the target suspiciously well ({name} {score:.3f})",
            evidence={"score": round(score, 4), "metric": name, "rows_checked": rows},
            fix="confirm it is known at prediction time and not recorded after the outcome",
        )
    return None


# --------------------------------------------------------------------------- label issues


def design_matrix(ctx: AuditContext, idx: np.ndarray) -> pd.DataFrame:
    """Model-ready features for the model-based checks: numbers as floats, categories as codes."""
    cols = {}
    for col in ctx.model_features:
        s = ctx.df[col].iloc[idx]
        x = _numeric_view(s)
        if x is None and ctx.profiles[col].role is Role.NUMERIC:
            x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
        if x is not None:
            cols[col] = np.where(np.isinf(x), np.nan, x)
        else:
            cols[col] = pd.Categorical(s.astype(str).where(s.notna(), None))
    return pd.DataFrame(cols)


def label_issues(ctx: AuditContext) -> Iterator[Finding]:
    """Rows whose given label gets a very low out-of-fold probability: likely mislabelled."""
    if ctx.target is None or not _is_classification(ctx) or not ctx.model_features:
        return
    import lightgbm as lgb
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    y_all = ctx.df[ctx.target]
    idx = ctx.sample_index(ctx.model_sample, stratify=y_all)
    labels_raw = y_all.iloc[idx]
    counts = labels_raw.value_counts()
    keep = labels_raw.isin(counts[counts >= 5].index).to_numpy()
    idx = idx[keep]
    if len(idx) < 50 or labels_raw[keep].nunique() < 2:
        return
    classes, y = np.unique(labels_raw[keep].astype(str), return_inverse=True)
    X = design_matrix(ctx, idx)
    model = lgb.LGBMClassifier(
        n_estimators=100,
        learning_rate=0.08,
        num_leaves=15,
        max_bin=63,
        min_child_samples=10,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        random_state=ctx.seed,
        n_jobs=1,
        verbose=-1,  # OpenMP threads spin when cores are shared: one is faster here
    )
    # five folds keep small tables' predictions honest; on large samples three are as good and cheaper
    folds = StratifiedKFold(5 if len(idx) < 10_000 else 3, shuffle=True, random_state=ctx.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probs = cross_val_predict(model, X, y, cv=folds, method="predict_proba")
        ranked = find_label_issues(y, probs, return_indices_ranked_by="self_confidence", n_jobs=1)
    if len(ranked) == 0:
        return
    frac = len(ranked) / len(idx)
    given = probs[np.arange(len(y)), y]
    suspects = [
        {
            "row": int(idx[i]),
            "label": str(classes[y[i]]),
            "p_label": round(float(given[i]), 4),
            "likely": str(classes[int(np.argmax(probs[i]))]),
        }
        for i in ranked[:20]
    ]
    very_low = int((given[ranked] < 0.02).sum())
    sampled = len(idx) < int(ctx.labelled.sum())
    yield Finding(
        severity=Severity.WARNING if very_low >= max(3, 0.01 * len(idx)) else Severity.INFO,
        check="label_issues",
        column=ctx.target,
        message=f"{len(ranked)} row(s) ({100 * frac:.1f}%) may be mislabelled"
        + (f", {very_low} of them with a label probability under 2%" if very_low else "")
        + f"; top suspects: rows {', '.join(str(s['row']) for s in suspects[:5])}",
        evidence={
            "count": len(ranked),
            "fraction": round(frac, 4),
            "very_low": very_low,
            "rows_checked": len(idx),
            "sampled": sampled,
            "suspects": suspects,
        },
        fix="review the top suspects by hand; fix wrong labels or drop the rows",
    )
