"""``SqliteStore.transaction()``: all or nothing, on a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from dspex_jupyter.bridge.store import SqliteStore
from dspex_jupyter.variables.table import define


def _rows(path, sql):
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_a_failed_transaction_writes_nothing(tmp_path):
    path = str(tmp_path / "s.db")
    store = SqliteStore(path)
    store.save_session("s1", 60.0, 1.0)
    record, _ = define("steps", "int", 3)
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("UPDATE sessions SET last_seq = 7 WHERE id = 's1'")
        raise RuntimeError("boom")
    assert _rows(path, "SELECT last_seq FROM sessions") == [(0,)]
    store.commit("s1", 1, [record], [], [(1, {"name": "steps"})], {"owner": "alice"})
    store.save_meta("s1", {"acl": {"enabled": True}})
    (data,) = SqliteStore(path).load(10, 10)
    assert data.last_seq == 1 and [v["name"] for v in data.variables] == ["steps"]
    assert data.meta == {"owner": "alice", "acl": {"enabled": True}}
    store.drop_session("s1")
    assert SqliteStore(path).load(10, 10) == []
    store.close()


def test_a_failed_commit_rolls_back_every_row(tmp_path):
    path = str(tmp_path / "s.db")
    store = SqliteStore(path)
    store.save_session("s1", 60.0, 1.0)
    record, _ = define("steps", "int", 3)
    store.commit("s1", 1, [record], [], [(1, {"n": 1})])
    with pytest.raises(sqlite3.IntegrityError):  # seq 1 again: the events key clashes
        store.commit("s1", 2, [record._replace(version=2)], [], [(1, {"n": 2})])
    assert _rows(path, "SELECT last_seq FROM sessions") == [(1,)]
    assert _rows(path, "SELECT version FROM history") == [(1,)]
    store.close()
