"""The audit of a file larger than memory.

Two passes over the file, both by DuckDB under a memory limit (it spills to disk rather than
grow): one computes exact whole-file statistics (rows, missing values, range, mean and spread
of every column, distinct counts, duplicate rows, the target's classes); the other draws a
uniform random sample of rows (reservoir sampling, repeatable for a seed). Every check runs on
the sample as on a table in memory; the counts a sample would understate or miss (missing
values, constant columns, duplicates, unlabelled rows, class counts) are then taken from the
whole-file statistics, and the report says which rows it saw. (DuckDB's reads of the file:
``mlre.data.scan``.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mlre.data.scan import MEMORY_LIMIT, connect, over_limit, sample_rows, table_function
from mlre.errors import InputError
from mlre.findings import Finding, Findings, Severity

#: Rows of the sample the checks run on.
SAMPLE_ROWS = 200_000


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def whole_file_stats(path: Path, target: str | None) -> dict[str, Any]:
    """Exact statistics of every column of ``path``, computed by DuckDB without loading it."""
    import duckdb

    con = connect()
    src = table_function(path)
    try:
        schema = con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()
    except duckdb.Error as err:
        raise InputError(
            f"cannot read {path}: {str(err).splitlines()[0]}",
            hint="give a Parquet file (or folder of them) or a CSV file with a header row",
        ) from None
    columns = [(name, str(kind).upper()) for name, kind, *_ in schema]
    if target is not None and target not in {c for c, _ in columns}:
        from mlre.errors import did_you_mean

        raise InputError(
            f"the target {target!r} is not a column of {path}",
            hint=did_you_mean(target, [c for c, _ in columns]) or "check the column names",
        )
    numeric = ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC", "BIGINT", "HUGEINT")
    parts = ["count(*)"]
    for name, kind in columns:
        q = _q(name)
        parts += [f"count({q})", f"approx_count_distinct({q})"]
        if any(t in kind for t in numeric):
            parts += [
                f"min({q})::DOUBLE",
                f"max({q})::DOUBLE",
                f"avg({q}::DOUBLE)",
                f"stddev_samp({q}::DOUBLE)",
                f"count_if(isinf({q}::DOUBLE))",
            ]
    all_cols = ", ".join(_q(c) for c, _ in columns)
    features = ", ".join(_q(c) for c, _ in columns if c != target) or all_cols
    try:
        row = con.execute(f"SELECT {', '.join(parts)} FROM {src}").fetchone()
        # rows equal to an earlier one, by a 64-bit hash of every column (collisions: ~n²/2⁶⁵)
        distinct = con.execute(f"SELECT count(DISTINCT hash({all_cols})) FROM {src}").fetchone()
        counts: list[Any] = []
        if target is not None:
            counts = con.execute(
                f"SELECT {_q(target)}, count(*) FROM {src} GROUP BY 1 ORDER BY 2 DESC LIMIT 1000"
            ).fetchall()
            conflict = con.execute(
                f"SELECT count(*) FROM (SELECT hash({features}) h FROM {src} "
                f"WHERE {_q(target)} IS NOT NULL GROUP BY h "
                f"HAVING count(DISTINCT {_q(target)}) > 1)"
            ).fetchone()
    except duckdb.OutOfMemoryException as err:
        raise over_limit(path, "the whole-file statistics", err) from None
    except duckdb.Error as err:
        raise InputError(
            f"cannot read {path} to the end: {str(err).splitlines()[0]}",
            hint="every part of the file must have the same columns and types",
        ) from None
    finally:
        con.close()
    n = int(row[0])
    out: dict[str, Any] = {"rows": n, "columns": {}, "duplicate_rows": n - int(distinct[0])}
    i = 1
    for name, kind in columns:
        stats: dict[str, Any] = {
            "type": kind,
            "missing": n - int(row[i]),
            "distinct": int(row[i + 1]),
        }
        i += 2
        if any(t in kind for t in numeric):
            stats.update(
                min=row[i], max=row[i + 1], mean=row[i + 2], std=row[i + 3], inf=int(row[i + 4])
            )
            i += 5
        out["columns"][name] = stats
    if target is not None:
        out["target_counts"] = {str(k): int(v) for k, v in counts if k is not None}
        out["target_missing"] = out["columns"][target]["missing"]
        out["conflicting_groups"] = int(conflict[0])
    return out


def apply_whole_file(profiles: dict[str, Any], stats: dict[str, Any]) -> None:
    """Put the whole file's exact counts and ranges into the sample's column profiles."""
    n = max(1, stats["rows"])
    for name, p in profiles.items():
        s = stats["columns"].get(name)
        if s is None:
            continue
        p.n_missing = s["missing"]
        p.missing_frac = s["missing"] / n
        p.n_unique = max(p.n_unique, min(s["distinct"], n - s["missing"]))
        p.unique_frac = p.n_unique / n
        if s.get("min") is not None:
            p.min, p.max, p.mean, p.std = s["min"], s["max"], s["mean"], s["std"]
            p.n_inf = s["inf"]


#: Checks whose sample findings the whole-file statistics replace.
EXACT_CHECKS = {"duplicate_rows", "missing_target", "conflicting_duplicates"}


def whole_file_findings(stats: dict[str, Any], target: str | None) -> list[Finding]:
    """Duplicates and unlabelled rows counted over the whole file."""
    n = max(1, stats["rows"])
    found = []
    dup = stats["duplicate_rows"]
    if dup:
        frac = dup / n
        found.append(
            Finding(
                severity=Severity.WARNING if frac >= 0.01 else Severity.INFO,
                check="duplicate_rows",
                message=f"{dup:,} row(s) ({100 * frac:.1f}%) repeat an earlier row exactly",
                evidence={"duplicates": dup, "fraction": round(frac, 5), "whole_file": True},
                fix="drop the copies unless repeated rows are real events; copies inflate "
                "cross-validation scores",
            )
        )
    if target is not None and stats["target_missing"]:
        m = stats["target_missing"]
        found.append(
            Finding(
                severity=Severity.WARNING,
                check="missing_target",
                column=target,
                message=f"{m:,} row(s) ({100 * m / n:.1f}%) have no value for the target "
                f"{target!r}",
                evidence={"count": m, "whole_file": True},
                fix="they are left out of training; find out why they are unlabelled (is it "
                "selection bias?)",
            )
        )
    if target is not None and stats.get("conflicting_groups"):
        g = stats["conflicting_groups"]
        found.append(
            Finding(
                severity=Severity.INFO,
                check="conflicting_duplicates",
                message=f"{g:,} group(s) of identical feature rows carry different labels",
                evidence={"groups": g, "whole_file": True},
                fix="check the labels of these rows; if both are right, the features cannot "
                "separate them",
            )
        )
    return found


def audit_file(
    path: Path,
    audit_sample: Callable[[pd.DataFrame, dict[str, Any]], Any],
    *,
    target: str | None,
    seed: int,
    rows: int | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> tuple[Any, dict[str, Any]]:
    """Audit ``path`` in bounded memory: ``audit_sample(sample, stats)`` runs the checks on the
    sample (with the whole file's statistics for the profiles); its findings of the checks the
    whole file counts exactly are replaced. Returns the report and the statistics."""
    rows = rows or SAMPLE_ROWS
    step("whole-file statistics")
    stats = whole_file_stats(path, target)
    if stats["rows"] == 0:
        raise InputError(f"{path} has no rows", hint="pass a table with data")
    step(f"sampling {min(rows, stats['rows']):,} of {stats['rows']:,} rows")
    sample = sample_rows(path, rows, seed)
    report = audit_sample(sample, stats)
    kept = [f for f in report.findings if f.check not in EXACT_CHECKS]
    report.findings = Findings([*kept, *whole_file_findings(stats, target)])
    report.n_rows = report.contract.n_rows = stats["rows"]
    report.details = {
        **report.details,
        "streamed": {
            "rows": stats["rows"],
            "sampled_rows": len(sample),
            "rule": f"whole-file counts by DuckDB (memory limit {MEMORY_LIMIT}); every other "
            f"check on a uniform random sample of {len(sample):,} rows (seed {seed})",
        },
    }
    return report, stats
