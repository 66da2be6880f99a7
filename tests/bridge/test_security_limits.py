"""Limits in bytes and names: too big is a ValidationError that changes nothing.

``--max-value-bytes`` (default 1 MiB), names of at most 256 characters,
``--history-keep`` in memory and in SQLite (trimmed as it goes, and so across
a restart), and ``GetHistory`` in pages that always fit a message.
"""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import ValidationError

from .conftest import new_state

MiB = 1024 * 1024


@pytest.fixture
def on():
    made: list[BridgedState] = []

    def make(srv: ServerProcess, session_id: str | None = None) -> BridgedState:
        sid = session_id or uuid.uuid4().hex
        return new_state(made, srv.address, srv.token, sid, join=session_id is not None)

    yield make
    for state in made:
        state.close()


def test_a_value_over_max_value_bytes_is_refused_before_anything_is_stored(server, on):
    state = on(server)  # the default limit, 1 MiB
    state.register("notes", "str", "short")
    big = "x" * (MiB + 1)
    with pytest.raises(ValidationError, match="max-value-bytes"):
        state.set("notes", big)
    with pytest.raises(ValidationError, match="max-value-bytes"):
        state.register("blob", "str", big)
    with pytest.raises(ValidationError, match="max-value-bytes"):
        state.update_many({"notes": big})
    snapshot = {
        "format": state.export_state()["format"],
        "variables": [{**state.export_state()["variables"][0], "value": big}],
    }
    with pytest.raises(ValidationError, match="max-value-bytes"):
        state.import_state(snapshot)
    record = state.get("notes")
    assert (record.value, record.version) == ("short", 1)
    assert [v.name for v in state.list()] == ["notes"]
    assert len(state.history("notes")) == 1
    state.set("notes", "y" * (MiB - 100))  # just under the limit is fine
    assert state.get("notes").version == 2


def test_a_name_over_256_characters_is_a_validation_error_not_resource_exhausted(server, on):
    """Sent raw (the client checks names too): the server answers ValidationError, with a
    short message, where an error echoing the whole name used to be RESOURCE_EXHAUSTED."""
    state = on(server)
    state.register("x", "int", 1)
    sid, long = state.session_id, "n" * 10_000
    for method, request in (
        (
            "RegisterVariable",
            pb.RegisterVariableRequest(session_id=sid, name=long, type="int", initial_json="1"),
        ),
        ("SetVariable", pb.SetVariableRequest(session_id=sid, name=long, value_json="1")),
        ("GetVariable", pb.GetVariableRequest(session_id=sid, name=long)),
        ("GetVariables", pb.GetVariablesRequest(session_id=sid, names=["x", long])),
        ("UpdateVariables", pb.UpdateVariablesRequest(session_id=sid, values_json={long: "1"})),
        ("GetHistory", pb.HistoryRequest(session_id=sid, name=long)),
        ("AcquireLock", pb.AcquireLockRequest(session_id=sid, names=["x"], holder=long, ttl_s=5)),
    ):
        with pytest.raises(ValidationError, match="at most 256 characters") as info:
            state.client.call(method, request)
        assert len(str(info.value)) < 500, method
    assert [(v.name, v.value, v.version) for v in state.list()] == [("x", 1, 1)]
    assert state.locks() == {}


def test_history_keep_trims_memory_and_sqlite_and_survives_a_restart(tmp_path, on):
    db = tmp_path / "bridge.db"
    args = ["--history-keep", "5"]
    srv = ServerProcess(f"sqlite:{db}", extra_args=args)
    try:
        state = on(srv)
        sid = state.session_id
        state.register("t", "int", 0)
        for i in range(1, 21):
            state.set("t", i)
        assert [r.version for r in state.history("t")] == [17, 18, 19, 20, 21]
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT version FROM history ORDER BY version").fetchall()
        assert [v for (v,) in rows] == [17, 18, 19, 20, 21]
        state.close()
    finally:
        srv.stop()
    srv = ServerProcess(f"sqlite:{db}", extra_args=args)
    try:
        again = on(srv, sid)
        assert [r.version for r in again.history("t")] == [17, 18, 19, 20, 21]
        assert again.rollback("t", 18).value == 17
    finally:
        srv.stop()


def test_get_history_is_paged_so_a_long_history_always_fits(server, on):
    state = on(server)
    state.register("doc", "str", "")
    for i in range(10):
        state.set("doc", str(i) * (900 * 1024))  # 10 x 900 KB: more than one message
    raw = state.client.call(
        "GetHistory", pb.HistoryRequest(session_id=state.session_id, name="doc")
    )
    assert raw.more and 0 < len(raw.records) < 11
    assert raw.records[-1].version == 11
    older = state.client.call(
        "GetHistory",
        pb.HistoryRequest(
            session_id=state.session_id, name="doc", before_version=raw.records[0].version
        ),
    )
    assert older.records[-1].version == raw.records[0].version - 1
    history = state.history("doc")  # the client pages through it all
    assert [r.version for r in history] == list(range(1, 12))
    assert [r.version for r in state.history("doc", limit=3)] == [9, 10, 11]
