"""The deployment audit log: append-only, hash-chained, and any edit or deletion is caught."""

from __future__ import annotations

import sqlite3
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
