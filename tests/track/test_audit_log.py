"""The deployment audit log: append-only, hash-chained, and any edit or deletion is caught."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import stat
import threading
from itertools import pairwise

import pytest

from mlre.errors import InputError
from mlre.track.audit_log import GENESIS, AuditLog, anchor_value, parse_anchor


def _filled(path, n: int = 5) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.append("shadow" if i % 2 else "promote", "income", versions={"champion": str(i)},
                   actor="ana", reason=f"step {i}")  # fmt: skip
    return log


def test_records_chain_to_each_other_and_verify(tmp_path):
    log = _filled(tmp_path / "audit.db")
    records = log.records()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in pairwise(records))
    assert records[2].versions == {"champion": "2"} and records[2].actor == "ana"
    assert log.verify().ok and log.verify().records == 5
    assert log.head() == (5, records[-1].hash)


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("UPDATE audit SET reason = 'nothing to see' WHERE seq = 3", "record 3 was altered"),
        ("UPDATE audit SET actor = 'bob' WHERE seq = 1", "record 1 was altered"),
        ("DELETE FROM audit WHERE seq = 2", "record 2 is missing"),
        ("UPDATE audit SET seq = 9 WHERE seq = 5", "record 5 is missing"),
    ],
)
def test_an_edit_or_a_deletion_breaks_the_chain(tmp_path, tamper, problem):
    log = _filled(tmp_path / "audit.db")
    with sqlite3.connect(log.path) as db:
        db.execute(tamper)
    result = log.verify()
    assert not result.ok and problem in result.problem


def test_a_rewritten_chain_or_removed_tail_is_caught_by_the_anchor(tmp_path):
    log = _filled(tmp_path / "audit.db")
    pinned = {"income": parse_anchor(anchor_value(log.records()[-1]))}
    with sqlite3.connect(log.path) as db:
        db.execute("DELETE FROM audit WHERE seq = 5")  # the newest record: the chain stays valid
    assert log.verify().ok
    result = log.verify(pinned)
    assert not result.ok and "no longer has" in result.problem


def test_appends_from_many_threads_keep_one_unbroken_chain(tmp_path):
    log = AuditLog(tmp_path / "audit.db")

    def work(k: int) -> None:
        for i in range(10):
            AuditLog(log.path).append("canary", "m", versions={"v": f"{k}.{i}"}, actor=f"t{k}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.verify().ok and log.verify().records == 40


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "audit.db"
    path.write_text("this is not sqlite")
    with pytest.raises(InputError, match="audit log"):
        AuditLog(path).records()
    assert path.read_text() == "this is not sqlite", "nothing was overwritten"


def _rechain(path, key: bytes | None, first: int) -> None:
    """Recompute every hash from record ``first`` on, as a forger would: with ``key`` (None:
    plain SHA-256), the body laid out as the log lays it out."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        prev = GENESIS if first == 1 else rows[first - 2][9]
        for row in rows[first - 1 :]:
            body = json.dumps([*row[:8], prev], ensure_ascii=False, separators=(",", ":")).encode()
            digest = (
                hmac.new(key, body, hashlib.sha256) if key else hashlib.sha256(body)
            ).hexdigest()
            db.execute(
                "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, row[0])
            )
            prev = digest


def test_the_chain_is_keyed_and_a_forger_without_the_key_is_caught(tmp_path):
    log = _filled(tmp_path / "audit.db")
    key_file = tmp_path / "audit.db.key"
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with sqlite3.connect(log.path) as db:
        db.execute("UPDATE audit SET reason = 'nothing to see' WHERE seq = 3")
    _rechain(log.path, b"a guess at the key", 3)
    result = log.verify()
    assert not result.ok and "record 3 was altered" in result.problem
    _rechain(log.path, None, 3)  # or plain SHA-256 after keyed records: refused as well
    assert not log.verify().ok
    _rechain(log.path, key_file.read_bytes().strip(), 3)  # with the key it would pass
    assert log.verify().ok


def test_records_from_before_the_key_verify_only_as_the_oldest(tmp_path):
    log = _filled(tmp_path / "audit.db", n=3)
    _rechain(log.path, None, 1)  # a log written before the chain was keyed
    log.append("rollback", "income", actor="ana", reason="after the upgrade")
    result = log.verify()
    assert result.ok and result.unkeyed == 3 and result.records == 4


def test_the_registry_must_pin_the_newest_record_of_each_model(tmp_path):
    log = _filled(tmp_path / "audit.db")
    older = {"income": parse_anchor(anchor_value(log.records()[-2]))}
    result = log.verify(older)
    assert (
        not result.ok and "record 5 on 'income' is newer than the registry's (4)" in result.problem
    )
    assert log.verify({"income": parse_anchor(anchor_value(log.records()[-1]))}).ok


def test_an_environment_key_keys_the_chain_without_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MLRE_AUDIT_KEY", "a key from the environment, long enough")
    log = _filled(tmp_path / "audit.db", n=2)
    assert log.verify().ok and not (tmp_path / "audit.db.key").exists()
    monkeypatch.setenv("MLRE_AUDIT_KEY", "another key")
    assert not AuditLog(log.path).verify().ok
