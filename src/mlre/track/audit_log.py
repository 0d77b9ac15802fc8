"""The deployment audit log: an append-only record of every release action, hash-chained.

Each record carries the hash of the previous record, and its own hash covers its content and
that link, so editing or deleting any record breaks the chain from there on. The hash is an
HMAC-SHA256 under a secret key (``MLRE_AUDIT_KEY``, else a key file beside the log, created on
first use readable by its owner only), so a forger who edits a record and recomputes the chain
after it fails ``verify`` without the key. Deleting the newest records leaves a valid shorter
chain; to catch that, every action also writes its record's sequence number and hash to a tag
of the registered model in the MLflow registry, a second store that ``verify`` checks the log
against: the tag must name the model's newest record. (Records written before the chain was
keyed verify as plain SHA-256, only as the oldest part of the log.)

SQLite in WAL mode, one transaction per append (``BEGIN IMMEDIATE``), so the service and the CLI
can append at the same time and a killed process leaves the file intact.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlre.errors import InputError
from mlre.track.wal import connect

#: Where the audit log lives unless ``MLRE_AUDIT_LOG`` or the caller says otherwise.
DEFAULT_PATH = "mlre-audit.db"
HEAD_TAG = "mlre.audit_head"
GENESIS = "0" * 64
#: The chain's key itself, or the file that holds it (else ``<audit log>.key``).
KEY_ENV = "MLRE_AUDIT_KEY"
KEY_FILE_ENV = "MLRE_AUDIT_KEY_FILE"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    action TEXT NOT NULL,
    model TEXT NOT NULL,
    versions TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)
"""


def default_path() -> Path:
    """The audit log file: ``MLRE_AUDIT_LOG`` or ``./mlre-audit.db``."""
    return Path(os.environ.get("MLRE_AUDIT_LOG") or DEFAULT_PATH)


def current_actor() -> str:
    """Who is acting: ``MLRE_ACTOR`` or the operating-system user."""
    try:
        return os.environ.get("MLRE_ACTOR") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class AuditRecord:
    """One release action: what was done to which model versions, by whom, why, when."""

    seq: int
    time: str
    action: str
    model: str
    versions: dict[str, Any]
    actor: str
    reason: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def audit_key(log_path: Path) -> bytes:
    """The chain's HMAC key: ``MLRE_AUDIT_KEY``, else the key file (``MLRE_AUDIT_KEY_FILE``, or
    the log's path with ``.key`` added), created on first use with owner-only permissions."""
    given = os.environ.get(KEY_ENV, "").strip()
    if given:
        return given.encode("utf-8")
    path = Path(os.environ.get(KEY_FILE_ENV) or f"{log_path}.key")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        if not key:
            raise InputError(f"the audit log's key file {path} is empty") from None
        return key
    except OSError as err:
        raise InputError(f"cannot create the audit log's key file {path}: {err}") from None
    key = secrets.token_hex(32).encode("ascii")
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def _digest(
    key: bytes | None,
    seq: int,
    time: str,
    action: str,
    model: str,
    versions: str,
    actor: str,
    reason: str,
    details: str,
    prev_hash: str,
) -> str:
    body = json.dumps(
        [seq, time, action, model, versions, actor, reason, details, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    if key is None:  # the unkeyed chain of logs written before the key
        return hashlib.sha256(body).hexdigest()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def _canonical(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass
class Verification:
    """The result of checking the chain: ``ok``, how many records, and the first problem."""

    ok: bool
    records: int
    problem: str | None = None
    seq: int | None = None  # the first record found wrong
    unkeyed: int = 0  # the oldest records, written before the chain was keyed


class AuditLog:
    """Append and read release actions in a hash-chained SQLite table."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        if self.path.exists() and not self.path.is_file():
            raise InputError(f"the audit log {self.path} is not a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(_SCHEMA)
        self.key = audit_key(self.path)

    def _connect(self) -> Any:
        # every commit synced: an acknowledged release action survives a crash
        return connect(self.path, "the audit log", durable=True)

    def append(
        self,
        action: str,
        model: str,
        *,
        versions: dict[str, Any] | None = None,
        actor: str | None = None,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Add one record at the end of the chain and return it."""
        versions_s = _canonical(versions or {})
        details_s = _canonical(details or {})
        actor = actor or current_actor()
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                last = db.execute(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
                ).fetchone()
                seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                now = datetime.now(UTC).isoformat(timespec="microseconds")
                digest = _digest(
                    self.key, seq, now, action, model, versions_s, actor, reason, details_s, prev
                )
                db.execute(
                    "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, now, action, model, versions_s, actor, reason, details_s, prev, digest),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return AuditRecord(
            seq,
            now,
            action,
            model,
            json.loads(versions_s),
            actor,
            reason,
            json.loads(details_s),
            prev,
            digest,
        )

    def records(self, model: str | None = None) -> list[AuditRecord]:
        """Every record, oldest first (only ``model``'s when given)."""
        query = "SELECT * FROM audit" + (" WHERE model = ?" if model else "") + " ORDER BY seq"
        with self._connect() as db:
            rows = db.execute(query, (model,) if model else ()).fetchall()
        return [_record(r) for r in rows]

    def head(self) -> tuple[int, str]:
        """The newest record's sequence number and hash (0 and the genesis hash when empty)."""
        with self._connect() as db:
            last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (last[0], last[1]) if last else (0, GENESIS)

    def verify(self, anchors: dict[str, tuple[int, str]] | None = None) -> Verification:
        """Recompute the chain; ``anchors`` (per model, the head last written beside it) catch
        records deleted from the end."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        prev, expected_seq = GENESIS, 1
        by_seq: dict[int, str] = {}
        newest: dict[str, int] = {}
        unkeyed, keyed = 0, False
        for row in rows:
            seq, time, action, model, versions, actor, reason, details, prev_hash, digest = row
            if seq != expected_seq:
                return Verification(False, len(rows), f"record {expected_seq} is missing", seq)
            if prev_hash != prev:
                return Verification(
                    False, len(rows), f"record {seq} does not follow record {seq - 1}", seq
                )
            fields = (seq, time, action, model, versions, actor, reason, details, prev_hash)
            if hmac.compare_digest(_digest(self.key, *fields), digest):
                keyed = True
            elif not keyed and hmac.compare_digest(_digest(None, *fields), digest):
                unkeyed += 1  # written before the key, and nothing keyed before it
            else:
                return Verification(False, len(rows), f"record {seq} was altered", seq, unkeyed)
            by_seq[seq] = digest
            newest[model] = seq
            prev, expected_seq = digest, seq + 1
        for model, (seq, digest) in (anchors or {}).items():
            if seq not in by_seq:
                return Verification(
                    False,
                    len(rows),
                    f"the registry records action {seq} on {model!r}, which the log no longer has",
                    seq,
                )
            if by_seq[seq] != digest:
                return Verification(
                    False, len(rows), f"record {seq} differs from the registry's copy", seq
                )
            if newest.get(model, seq) != seq:
                last = newest[model]
                return Verification(
                    False,
                    len(rows),
                    f"record {last} on {model!r} is newer than the registry's ({seq}): an action "
                    "that did not finish, or a registry whose record was set back",
                    last,
                    unkeyed,
                )
        return Verification(True, len(rows), unkeyed=unkeyed)


def _record(row: tuple[Any, ...]) -> AuditRecord:
    seq, time, action, model, versions, actor, reason, details, prev_hash, digest = row
    return AuditRecord(
        seq,
        time,
        action,
        model,
        json.loads(versions),
        actor,
        reason,
        json.loads(details),
        prev_hash,
        digest,
    )


def anchor_value(record: AuditRecord) -> str:
    """The registry tag value that pins ``record`` as the newest one seen for its model."""
    return f"{record.seq}:{record.hash}"


def parse_anchor(value: str | None) -> tuple[int, str] | None:
    """The (sequence number, hash) in a registry anchor tag, if it is one."""
    if not value or ":" not in value:
        return None
    seq, _, digest = value.partition(":")
    return (int(seq), digest) if seq.isdigit() and len(digest) == 64 else None
