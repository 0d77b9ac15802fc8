"""SQLite files that several processes write at once: WAL mode, waits on locks, clear errors."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mlre.errors import InputError


@contextmanager
def connect(path: Path, what: str, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
    """A connection in autocommit mode (transactions are explicit) to the SQLite file ``path``,
    called ``what`` in errors. ``durable`` syncs every commit (a crash loses nothing that was
    acknowledged); otherwise a crash may lose the last commits but never corrupts the file."""
    try:
        db = sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as err:
        raise InputError(f"cannot open {what} {path}: {err}") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        yield db
    except sqlite3.DatabaseError as err:
        raise InputError(
            f"{what} {path} cannot be read: {err}",
            hint="it may be damaged or not an SQLite file",
        ) from None
    finally:
        db.close()
