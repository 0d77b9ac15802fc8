"""Recognise a file's format, compression, text encoding and delimiter from its bytes, and
which files of a folder hold data."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections import Counter
from pathlib import Path
from typing import BinaryIO

import zstandard

from mlre.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"
SQLITE_MAGIC = b"SQLite format 3\x00"
DUCKDB_MAGIC = b"DUCK"  # at byte offset 8 of a DuckDB file

PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
TEXT_SUFFIXES = {".csv", ".tsv", ".tab", ".txt", ".dat", ".psv"}
DATA_SUFFIXES = PARQUET_SUFFIXES | JSON_SUFFIXES | TEXT_SUFFIXES
CANDIDATE_DELIMITERS = (",", "\t", ";", "|")
SAMPLE_BYTES = 1 << 20


def head(path: Path, n: int = 16) -> bytes:
    """The first ``n`` bytes of a file."""
    with path.open("rb") as fh:
        return fh.read(n)


def compression_of(path: Path) -> str | None:
    """'gzip', 'zstd' or None, from the file's magic bytes (not its name)."""
    start = head(path, 4)
    if start.startswith(GZIP_MAGIC):
        return "gzip"
    if start.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def open_decompressed(path: Path, compression: str | None) -> BinaryIO:
    """A binary stream of the file's content, decompressed."""
    if compression == "gzip":
        # a GzipFile reads like any binary stream, though typeshed does not derive it from BinaryIO
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True)
    return path.open("rb")


def logical_suffix(path: Path) -> str:
    """The extension that names the content, looking through .gz/.zst/.zstd."""
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in {".gz", ".gzip", ".zst", ".zstd"}:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def data_files(folder: Path, suffixes: set[str]) -> list[Path]:
    """The files of ``folder`` with one of ``suffixes``, in name order; hidden and
    ``_``-prefixed ones (``_SUCCESS``, ``.part`` files of a writer) are not data."""
    return sorted(
        f
        for f in folder.rglob("*")
        if f.is_file()
        and logical_suffix(f) in suffixes
        and not any(part.startswith((".", "_")) for part in f.relative_to(folder).parts)
    )


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files a path stands for: itself, or a folder's, as a whole-folder load
    reads them (so a table read in parts has the hash of the same table read whole)."""
    return data_files(path, PARQUET_SUFFIXES) if path.is_dir() else [path]


def detect_format(path: Path) -> str:
    """'parquet', 'json', 'sqlite', 'duckdb' or 'csv' for one file."""
    start = head(path, 16)
    if start.startswith(PARQUET_MAGIC) or logical_suffix(path) in PARQUET_SUFFIXES:
        return "parquet"
    if start.startswith(SQLITE_MAGIC):
        return "sqlite"
    if start[8:12] == DUCKDB_MAGIC:
        return "duckdb"
    if logical_suffix(path) in JSON_SUFFIXES:
        return "json"
    return "csv"


def read_sample(path: Path, compression: str | None, size: int = SAMPLE_BYTES) -> bytes:
    """Up to ``size`` decompressed bytes from the start of the file."""
    try:
        with open_decompressed(path, compression) as fh:
            return fh.read(size)
    except (OSError, EOFError, zstandard.ZstdError) as err:
        raise InputError(
            f"{path} looks {compression}-compressed but cannot be decompressed ({err})",
            hint="check that the file was copied completely",
        ) from None


def detect_encoding(sample: bytes, path: Path) -> str:
    """The text encoding of a sample: BOMs first, then UTF-8, then statistical detection."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample[:8192]:
        raise InputError(
            f"{path} is not a text table: it holds binary data",
            hint="give a CSV/TSV, Parquet or JSON-lines file, or pass --encoding if it is UTF-16/32",
        )
    try:
        # a sample may end inside a multi-byte character: decode incrementally, not final
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(sample[:200_000])
    best = matches.best()
    if best is None:
        raise InputError(
            f"cannot tell the text encoding of {path}",
            hint="pass --encoding (for example latin-1 or cp1252)",
        )
    # Many single-byte code pages decode a Western sample equally cleanly, and the statistics then
    # often pick a rare one (cp775, cp1250) that garbles 'José' or 'Nuñez'. Among the cleanest
    # candidates prefer cp1252, the usual encoding of tables that are not UTF-8.
    if any("cp1252" in m.could_be_from_charset and m.chaos <= best.chaos for m in matches):
        return "cp1252"
    return best.encoding


def detect_delimiter(text: str, path: Path) -> str:
    """The delimiter that splits the first lines into the most consistent number of fields."""
    if logical_suffix(path) in {".tsv", ".tab"}:
        return "\t"
    if logical_suffix(path) == ".psv":
        return "|"
    lines = text.splitlines()[:200]
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sample's last line may be cut short
    best, best_score = ",", (0.0, 0)
    for delim in CANDIDATE_DELIMITERS:
        try:
            counts = [
                len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delim)
            ]
        except csv.Error:
            continue
        if not counts:
            continue
        width, hits = Counter(counts).most_common(1)[0]
        if width < 2:
            continue
        score = (hits / len(counts), width)
        if score > best_score:
            best, best_score = delim, score
    return best
