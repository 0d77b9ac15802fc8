"""Free-text columns: what they hold (length, vocabulary, empty share, non-ASCII share) and the
same text given different labels (label noise a text model cannot learn around)."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd

from mlre.data.audit.context import AuditContext
from mlre.data.roles import Role
from mlre.findings import Finding, Severity

#: Texts read per column for the statistics.
SAMPLE = 20_000
#: Near-duplicates: texts equal once lower-cased with runs of spaces and punctuation removed,
#: this many characters at least (short texts such as "good" repeat by nature).
MIN_DUPLICATE_CHARS = 20


def _normalised(values: pd.Series) -> pd.Series:
    return values.str.lower().str.replace(r"[^\w]+", " ", regex=True).str.strip()


def text_columns(ctx: AuditContext) -> Iterator[Finding]:
    """Each text column described, and the same text under different labels."""
    for col in ctx.features:
        if ctx.role(col) is not Role.TEXT:
            continue
        s = ctx.df[col]
        texts = s.dropna().astype(str)
        if len(texts) > SAMPLE:
            texts = texts.sample(SAMPLE, random_state=ctx.seed)
        lengths = texts.str.len()
        empty = float((s.isna() | (s.astype(str).str.strip() == "")).mean())
        words = texts.str.lower().str.findall(r"\w+")
        vocabulary = len({w for ws in words for w in ws})
        non_ascii = (
            float(texts.map(lambda t: any(ord(ch) > 127 for ch in t)).mean()) if len(texts) else 0.0
        )
        evidence = {
            "mean_length": round(float(lengths.mean()), 1) if len(texts) else 0.0,
            "max_length": int(lengths.max()) if len(texts) else 0,
            "vocabulary": vocabulary,
            "empty_share": round(empty, 4),
            "non_ascii_share": round(non_ascii, 4),
        }
        hint = (
            " (mostly not ASCII: word n-grams still work; check the language)"
            if non_ascii > 0.5
            else ""
        )
        yield Finding(
            severity=Severity.WARNING if empty > 0.5 else Severity.INFO,
            check="text_column",
            column=col,
            message=f"{col!r} is free text: {evidence['mean_length']:.0f} characters on average "
            f"(longest {evidence['max_length']:,}), {vocabulary:,} distinct words, "
            f"{empty:.0%} empty, {non_ascii:.0%} with non-ASCII characters{hint}; it becomes "
            "n-gram features",
            evidence=evidence,
            fix="if it is not text but a category or an identifier, say so in mlre.yaml "
            f"(roles: {{{col}: category}})",
        )
        yield from _conflicts(ctx, col)


def _conflicts(ctx: AuditContext, col: str) -> Iterator[Finding]:
    """Texts that are the same, near enough, under different labels."""
    if ctx.target is None:
        return
    labelled = ctx.df[ctx.labelled.to_numpy()]
    texts = labelled[col].dropna().astype(str)
    if texts.empty:
        return
    key = _normalised(texts)
    keep = key.str.len() >= MIN_DUPLICATE_CHARS
    if not keep.any():
        return
    frame = pd.DataFrame({"text": key[keep], "label": labelled.loc[key[keep].index, ctx.target]})
    groups = frame.groupby("text")["label"].nunique()
    clashing = groups[groups > 1]
    if clashing.empty:
        return
    rows = int(frame["text"].isin(clashing.index).sum())
    examples = [t[:80] for t in clashing.index[:3]]
    yield Finding(
        severity=Severity.WARNING,
        check="text_label_conflict",
        column=col,
        message=f"{len(clashing):,} text(s) of {col!r} appear with different labels ({rows:,} "
        f"rows), e.g. {examples[0]!r}: no model of the text can get them all right",
        evidence={
            "texts": len(clashing),
            "rows": rows,
            "examples": examples,
            "share": round(rows / max(1, len(frame)), 4),
        },
        fix="check those rows for label errors or duplicated records",
    )
