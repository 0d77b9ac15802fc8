"""Load a table from CSV/TSV, Parquet, JSON lines or a SQL query, with errors a person can act on."""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from mlre.data import sniff
from mlre.data.scan import sample_rows
from mlre.data.sniff import parquet_files
from mlre.errors import InputError

log = logging.getLogger(__name__)

# Text read as missing, in addition to the spec's na_values; the same set pandas uses.
DEFAULT_NA = [
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
]


@dataclass
class Table:
    """A loaded table, where it came from, and the hash that identifies its bytes."""

    frame: pd.DataFrame
    source: str
    format: str
    sha256: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.frame)

    @property
    def n_cols(self) -> int:
        """Number of columns."""
        return self.frame.shape[1]


def file_sha256(paths: Sequence[Path], extra: bytes = b"") -> str:
    """sha256 over the bytes of one or more files (in the given order) and ``extra``."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    digest.update(extra)
    return digest.hexdigest()


def load_table(
    path: str | Path | None = None,
    *,
    sql: str | None = None,
    db: str | Path | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    na_values: Sequence[str] = (),
) -> Table:
    """Load a table from a file, a folder of files, or a SQL query over a DuckDB/SQLite database.

    With ``sql`` and no ``db`` the query runs in DuckDB over files named in it.
    """
    if sql is not None:
        return _load_sql(sql, Path(db) if db is not None else None)
    if db is not None:
        raise InputError("--db needs a query", hint='add --sql "select * from my_table"')
    if path is None:
        raise InputError("no data given", hint="pass a data file, or --db with --sql")
    p = Path(path).expanduser()
    if not p.exists():
        near = _near_files(p)
        raise InputError(f"{p} does not exist", hint=near or "check the path")
    if p.is_dir():
        return _load_dir(p, encoding=encoding, delimiter=delimiter, na_values=na_values)
    if p.stat().st_size == 0:
        raise InputError(
            f"{p} is empty", hint="the file has no bytes at all; was it written fully?"
        )
    fmt = sniff.detect_format(p)
    if fmt == "parquet":
        return _load_parquet(p)
    if fmt in {"sqlite", "duckdb"}:
        raise InputError(f"{p} is a {fmt} database", hint=f'use --db {p} --sql "select ..."')
    if fmt == "json":
        return _load_json(p)
    return _load_csv(p, encoding=encoding, delimiter=delimiter, na_values=na_values)


def _near_files(p: Path) -> str | None:
    from mlre.errors import did_you_mean

    parent = p.parent if p.parent.exists() else None
    if parent is None:
        return None
    return did_you_mean(p.name, [c.name for c in parent.iterdir()][:500])


# --------------------------------------------------------------------------- CSV / TSV


def _load_csv(
    path: Path,
    *,
    encoding: str | None,
    delimiter: str | None,
    na_values: Sequence[str],
) -> Table:
    compression = sniff.compression_of(path)
    sample = sniff.read_sample(path, compression)
    if not sample.strip():
        raise InputError(f"{path} is empty", hint="the file holds no header and no rows")
    enc = encoding or sniff.detect_encoding(sample, path)
    try:
        text = sample.decode(enc, errors="replace")
    except LookupError:
        raise InputError(
            f"unknown encoding {enc!r}", hint="use a Python codec name such as latin-1"
        ) from None
    delim = delimiter or sniff.detect_delimiter(text, path)
    header = next(
        csv.reader(io.StringIO(text.splitlines()[0] if text else ""), delimiter=delim), []
    )
    if not any("\ufffd" in name for name in header):  # undecodable names are reported after reading
        _check_header(header, path)

    arrow_enc = "utf8" if enc in {"utf-8", "utf-8-sig", "ascii"} else enc
    read_opts = pacsv.ReadOptions(encoding=arrow_enc, block_size=16 << 20)
    parse_opts = pacsv.ParseOptions(delimiter=delim, newlines_in_values='"' in text)
    convert_opts = pacsv.ConvertOptions(
        null_values=DEFAULT_NA + list(na_values), strings_can_be_null=True
    )
    try:
        with sniff.open_decompressed(path, compression) as stream:
            table = pacsv.read_csv(stream, read_opts, parse_opts, convert_opts)
    except pa.ArrowInvalid as err:
        raise _explain_csv_error(err, path, compression, enc, delim) from None
    except (OSError, EOFError) as err:
        raise InputError(f"cannot read {path}: {err}", hint="check the file is complete") from None
    try:
        table.column_names  # noqa: B018 - Arrow decodes the header names only here
    except UnicodeDecodeError:
        raise InputError(
            f"the header of {path} has text that is not valid {enc}",
            hint="pass --encoding with the file's real encoding (for example latin-1)",
        ) from None
    if enc == "utf-8-sig" and table.column_names and table.column_names[0].startswith("\ufeff"):
        table = table.rename_columns([table.column_names[0][1:], *table.column_names[1:]])
    details = {"encoding": enc, "delimiter": delim, "compression": compression}
    return _finish(table, path, "csv", file_sha256([path]), details)


def _check_header(header: list[str], path: Path) -> None:
    dupes = sorted(name for name, n in Counter(header).items() if n > 1)
    if dupes:
        raise InputError(
            f"{path} has duplicate column names: {', '.join(repr(d) for d in dupes)}",
            hint="rename the columns so each name is unique",
        )


_EXPECTED = re.compile(r"Expected (\d+) columns, got (\d+)")


def _explain_csv_error(
    err: Exception, path: Path, compression: str | None, enc: str, delim: str
) -> InputError:
    msg = str(err)
    match = _EXPECTED.search(msg)
    if match:
        line = _first_ragged_line(path, compression, enc, delim, int(match.group(1)))
        where = f" (line {line})" if line else ""
        return InputError(
            f"{path} has rows with {match.group(2)} fields but the header has "
            f"{match.group(1)}{where}",
            hint="fix or quote that row; if the delimiter is wrong, pass --delimiter",
        )
    if "Empty CSV file" in msg:  # Arrow's words for a header line with no line end and no rows
        return InputError(f"{path} has a header but no data rows", hint="add rows below the header")
    if "UTF8" in msg or "decode" in msg.lower() or "encod" in msg.lower():
        return InputError(
            f"{path} has text that is not valid {enc}",
            hint="pass --encoding with the file's real encoding (for example latin-1)",
        )
    return InputError(f"cannot parse {path}: {msg.splitlines()[0]}", hint="check the file's format")


def _first_ragged_line(
    path: Path, compression: str | None, enc: str, delim: str, width: int
) -> int | None:
    """The 1-based line number of the first row whose field count differs from the header's."""
    with sniff.open_decompressed(path, compression) as raw:
        reader = csv.reader(
            io.TextIOWrapper(raw, encoding=enc, errors="replace", newline=""), delimiter=delim
        )
        for row in reader:
            if row and len(row) != width:
                return reader.line_num
            if reader.line_num > 5_000_000:
                break
    return None


# --------------------------------------------------------------------------- Parquet / JSON


def _load_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise InputError(
            f"{path} is not a readable Parquet file ({str(err).splitlines()[0]})",
            hint="the file may be truncated or corrupted; write it again",
        ) from None
    return _finish(table, path, "parquet", file_sha256([path]), {})


#: In-memory bytes above which a run learns from a sample of a Parquet table. Fixed rather than
#: a share of this machine's memory, so that a run replayed elsewhere reads the same sample.
LOAD_MEMORY = 4 * 2**30


def parse_size(text: str) -> int:
    """Bytes in a size such as ``512MB``, ``4GB`` or ``1048576``."""
    text = text.strip().upper()
    for unit, scale in {"KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * scale)
    return int(float(text))


def memory_budget() -> int:
    """Bytes a table may take in memory before a run learns from a sample of it:
    ``MLRE_LOAD_MEMORY`` (e.g. ``8GB``), else 4 GB."""
    import os

    given = os.environ.get("MLRE_LOAD_MEMORY")
    return parse_size(given) if given else LOAD_MEMORY


def load_parquet_sample(path: Path, seed: int) -> Table | None:
    """A Parquet file (or folder) too large for memory, read as a uniform random sample that
    fits (DuckDB's reservoir sampling, repeatable for ``seed``); None when it fits whole.

    The size in memory is estimated from the first 10,000 rows as pandas holds them; the sample
    keeps the share of rows that fits in ``memory_budget()``.
    """
    import pyarrow.parquet as pq

    files = parquet_files(path)
    try:
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        with pq.ParquetFile(files[0], pre_buffer=False) as first:
            head = next(first.iter_batches(batch_size=10_000), None)
    except (pa.ArrowException, OSError, IndexError):
        return None  # the whole-file reader names what is wrong
    if head is None or head.num_rows == 0:
        return None
    # the size pandas would need, from the first rows as pandas holds them
    per_row = head.to_pandas().memory_usage(deep=True).sum() / head.num_rows
    size = int(per_row * rows)
    budget = memory_budget()
    if size <= budget:
        return None
    keep = max(1_000, int(rows * budget / size))
    frame = sample_rows(path, keep, seed)
    sampled = {
        "rows": len(frame),
        "of": rows,
        "bytes_in_memory": size,
        "budget": budget,
        "rule": f"a uniform random sample of {len(frame):,} of {rows:,} rows (seed {seed}): "
        f"the whole file takes {size / 2**30:.1f} GB in memory, over the "
        f"{budget / 2**30:.1f} GB budget (MLRE_LOAD_MEMORY, default 4GB)",
    }
    return _finish_frame(frame, path, "parquet", file_sha256(files), {"sampled": sampled})


def _load_json(path: Path) -> Table:
    import pyarrow.json as pajson

    compression = sniff.compression_of(path)
    sample = sniff.read_sample(path, compression, 4096).lstrip()
    if not sample:
        raise InputError(f"{path} is empty", hint="the file holds no records")
    sha = file_sha256([path])
    if sample.startswith(b"["):
        frame = _pandas_json(path, compression, lines=False)
        return _finish(pa.Table.from_pandas(frame, preserve_index=False), path, "json", sha, {})
    try:
        with sniff.open_decompressed(path, compression) as stream:
            table = pajson.read_json(stream)
    except pa.ArrowInvalid:
        # Arrow needs one type per field; pandas keeps mixed fields as objects for the audit to see.
        frame = _pandas_json(path, compression, lines=True)
        return _finish_frame(frame, path, "json", sha, {"lines": True})
    return _finish(table, path, "json", sha, {"lines": True})


def _pandas_json(path: Path, compression: str | None, *, lines: bool) -> pd.DataFrame:
    try:
        with sniff.open_decompressed(path, compression) as stream:
            return pd.read_json(stream, lines=lines, orient="records", dtype=False)
    except ValueError as err:
        raise InputError(
            f"{path} is not valid JSON{' lines' if lines else ''} ({str(err).splitlines()[0]})",
            hint="each line must be one JSON object, or the file one array of objects",
        ) from None


# --------------------------------------------------------------------------- folders and SQL


def _load_dir(
    path: Path, *, encoding: str | None, delimiter: str | None, na_values: Sequence[str]
) -> Table:
    files = sniff.data_files(path, sniff.DATA_SUFFIXES)
    parquet = [f for f in files if sniff.logical_suffix(f) in sniff.PARQUET_SUFFIXES]
    if parquet and len(parquet) < len(files):
        others = [f.name for f in files if f not in parquet][:3]
        raise InputError(
            f"{path} mixes Parquet files with other data files ({', '.join(others)})",
            hint="put only files of the same table, in one format, in the folder",
        )
    if parquet:
        import pyarrow.dataset as ds

        try:
            # only the Parquet files found above: a README or _SUCCESS beside them is not data
            table = ds.dataset(
                [str(f) for f in parquet],
                format="parquet",
                partitioning="hive",
                partition_base_dir=str(path),
            ).to_table()
        except (pa.ArrowException, OSError) as err:
            raise InputError(
                f"the Parquet files in {path} cannot be read ({str(err).splitlines()[0]})",
                hint="a file may be corrupted, or the files may not share one schema",
            ) from None
        return _finish(table, path, "parquet", file_sha256(parquet), {"files": len(parquet)})
    if not files:
        raise InputError(
            f"{path} is a folder with no data files",
            hint="expected .csv, .tsv, .parquet or .jsonl files (optionally .gz/.zst)",
        )
    parts = [
        load_table(f, encoding=encoding, delimiter=delimiter, na_values=na_values) for f in files
    ]
    columns = list(parts[0].frame.columns)
    for part in parts[1:]:
        if list(part.frame.columns) != columns:
            raise InputError(
                f"the files in {path} do not share one header ({part.source} differs from {parts[0].source})",
                hint="put only files of the same table in the folder",
            )
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    return Table(frame, str(path), parts[0].format, file_sha256(files), {"files": len(files)})


def _load_sql(sql: str, db: Path | None) -> Table:
    if db is not None and not db.exists():
        raise InputError(f"database {db} does not exist", hint="check the --db path")
    kind = "duckdb" if db is None else sniff.detect_format(db)
    if kind == "sqlite" and db is not None:  # only a file is sniffed as SQLite
        frame = _sqlite_query(sql, db)
        table = pa.Table.from_pandas(frame, preserve_index=False)
    elif kind == "duckdb" or (db is not None and db.stat().st_size == 0):
        table = _duckdb_query(sql, db)
    else:
        raise InputError(f"{db} is not a DuckDB or SQLite database", hint="check the --db path")
    source = f"{db or 'duckdb'}: {sql}"
    sha = file_sha256([db] if db else [], extra=sql.encode())
    return _finish(
        table, Path(str(db or "query")), "sql", sha, {"sql": sql, "engine": kind}, source
    )


def _duckdb_query(sql: str, db: Path | None) -> pa.Table:
    import duckdb

    try:
        con = duckdb.connect(str(db) if db else ":memory:", read_only=db is not None)
    except duckdb.Error as err:
        raise InputError(f"cannot open database {db}: {err}", hint="is it a DuckDB file?") from None
    try:
        relation = con.sql(sql)  # a relation, not a DB-API result: no extra copy, no warning
        if relation is None:
            raise InputError("the query returns no table", hint='use "select * from my_table"')
        return relation.to_arrow_table()
    except duckdb.Error as err:
        tables = [
            r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
        ]
        first = str(err).splitlines()[0]
        raise InputError(
            f"the query failed: {first}",
            hint=("tables in the database: " + ", ".join(tables))
            if tables
            else "the database has no tables",
        ) from None
    finally:
        con.close()


def _sqlite_query(sql: str, db: Path) -> pd.DataFrame:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return pd.read_sql_query(sql, con)
    except (sqlite3.Error, pd.errors.DatabaseError) as err:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        first = str(err).splitlines()[0].removeprefix("Execution failed on sql").strip()
        raise InputError(
            f"the query failed: {first}",
            hint=("tables in the database: " + ", ".join(tables))
            if tables
            else "the database has no tables",
        ) from None
    finally:
        con.close()


# --------------------------------------------------------------------------- common checks


def _finish(
    table: pa.Table,
    path: Path,
    fmt: str,
    sha: str,
    details: dict[str, Any],
    source: str | None = None,
) -> Table:
    _check_header(table.column_names, path)
    for name, col in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            raise InputError(
                f"column {name!r} of {path} holds bytes that are not valid text in "
                f"{details.get('encoding', 'UTF-8')}",
                hint="pass --encoding with the file's real encoding (for example latin-1)",
            )
    frame = table.to_pandas(date_as_object=False)
    return _finish_frame(frame, path, fmt, sha, details, source)


def _finish_frame(
    frame: pd.DataFrame,
    path: Path,
    fmt: str,
    sha: str,
    details: dict[str, Any],
    source: str | None = None,
) -> Table:
    if frame.shape[1] == 0:
        raise InputError(f"{path} has no columns", hint="the first line must be a header")
    if len(frame) == 0:
        raise InputError(
            f"{path} has a header but no data rows", hint="add rows, or check the query"
        )
    frame.columns = [str(c) for c in frame.columns]
    return Table(frame, source or str(path), fmt, sha, details)
