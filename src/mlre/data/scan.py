"""Reads of a file or folder larger than memory, by DuckDB under a memory limit (it spills to
disk rather than grow): the table function that reads a path, and a uniform sample of its rows."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from mlre.data.sniff import parquet_files
from mlre.errors import InputError

#: DuckDB's memory limit for the whole-file passes.
MEMORY_LIMIT = os.environ.get("MLRE_STREAM_MEMORY", "1GB")


def table_function(path: Path) -> str:
    """The DuckDB table function reading ``path`` (a Parquet file or folder, or a CSV file)."""
    if path.is_dir():
        names = ", ".join(_literal(f) for f in parquet_files(path))
        return f"read_parquet([{names}], union_by_name = true)"
    if path.name.lower().endswith((".parquet", ".pq")):
        return f"read_parquet({_literal(path)})"
    return f"read_csv({_literal(path)}, sample_size = 100000)"


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def over_limit(path: Path, what: str, err: Exception) -> InputError:
    """The error for ``what`` of ``path`` needing more memory than DuckDB may take."""
    return InputError(
        f"{what} of {path} need more than {MEMORY_LIMIT}: {str(err).splitlines()[0]}",
        hint="raise the limit, e.g. MLRE_STREAM_MEMORY=2GB",
    )


def connect() -> Any:
    """A DuckDB connection under the memory limit, spilling to this machine's temporary folder."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/mlre-duckdb'")
    con.execute("SET preserve_insertion_order = false")
    return con


def sample_rows(path: Path, rows: int, seed: int) -> pd.DataFrame:
    """A uniform random sample of ``rows`` rows of ``path`` (all of them when it has fewer)."""
    import duckdb

    con = connect()
    try:
        return con.execute(
            f"SELECT * FROM {table_function(path)} USING SAMPLE reservoir({int(rows)} ROWS) "
            f"REPEATABLE ({int(seed)})"
        ).df()
    except duckdb.OutOfMemoryException as err:
        raise over_limit(path, "the sample", err) from None
    except duckdb.Error as err:
        raise InputError(f"cannot sample {path}: {str(err).splitlines()[0]}") from None
    finally:
        con.close()
