"""Context + launcher: private servers, configured servers, the explicit upgrade."""

from __future__ import annotations

import threading

import pytest

from dspex_jupyter import Context, Variables
from dspex_jupyter.bridge import launcher
from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.errors import SessionNotFound

from .conftest import WAIT_S, wait_until
from .test_faults import _alive


def test_backend_bridged_spawns_one_private_server_shared_and_refcounted():
    assert launcher.current() is None
    a = Context.start(backend="bridged")
    b = Context.start(backend="bridged")
    try:
        assert a.backend == b.backend == "bridged"
        server = launcher.current()
        assert server is not None and server.refs == 2
        assert a.address == b.address == server.address
        assert a.address.startswith("unix:")
        assert a.session_id != b.session_id  # one server, separate sessions
        a.defvariable("x", "int", initial=1)
        with pytest.raises(KeyError):
            b.get("x")
        pid = server.pid
        a.stop()
        assert _alive(pid) and server.refs == 1
        with pytest.raises(SessionNotFound):  # a's session was released with a
            b.provider.client.call("GetSession", pb.SessionRequest(session_id=a.session_id))
    finally:
        a.stop()
        b.stop()
    assert wait_until(lambda: not _alive(pid))
    assert launcher.current() is None


def test_ensure_bridged_migrates_everything_and_keeps_watchers():
    ctx = Context.start()
    try:
        ctx.defvariable(
            "t", "float", initial=0.7, constraints={"min": 0, "max": 1}, metadata={"doc": "temp"}
        )
        ctx.defvariable("m", "choice", initial="gpt-4", constraints={"choices": ["gpt-4", "c3"]})
        ctx.defvariable("v", "tensor", initial=[[1, 2], [3, 4]])
        for value in (0.1, 0.2, 0.3):
            ctx.set("t", value)
        before = {v.name: v for v in ctx.list()}
        got: list = []
        done = threading.Event()

        def on_change(event) -> None:
            got.append(event)
            if event.version == 6:
                done.set()

        handle = ctx.watch("t", on_change)
        ctx.ensure_bridged()
        assert ctx.backend == "bridged"
        after = {v.name: v for v in ctx.list()}
        for name, record in before.items():
            mine = after[name]
            assert (mine.value, mine.version, mine.type) == (
                record.value,
                record.version,
                record.type,
            )
            assert dict(mine.constraints) == dict(record.constraints)
            assert dict(mine.metadata) == dict(record.metadata)
        with pytest.raises(ValueError):
            ctx.set("t", 5.0)  # constraints survived the move
        ctx.set("t", 0.9)
        ctx.set("t", 1.0)
        assert done.wait(WAIT_S)
        assert [(e.version, e.new_value) for e in got] == [(5, 0.9), (6, 1.0)]  # no dup, no gap
        assert Variables.unwatch(ctx, handle)
        assert [r.version for r in ctx.history("t")] == [4, 5, 6]
    finally:
        ctx.stop()


def test_configured_server_shared_by_session_id(server):
    a = Context.start(bridge=server.address, token=server.token)
    try:
        a.defvariable("shared", "str", initial="hello")
        b = Context.start(bridge=server.address, token=server.token, session_id=a.session_id)
        try:
            assert launcher.current() is None  # a configured server: nothing spawned
            assert b.get("shared") == "hello"
            b.set("shared", "world")
            assert wait_until(lambda: a.get("shared") == "world")
        finally:
            b.stop()
        assert a.get("shared") == "world"  # b's stop did not end the shared session
    finally:
        a.stop()


def test_environment_configures_the_bridge(server, monkeypatch):
    monkeypatch.setenv("DSPEX_BRIDGE", server.address)
    monkeypatch.setenv("DSPEX_BRIDGE_TOKEN", server.token)
    ctx = Context.start()
    try:
        assert ctx.backend == "local"  # the env says where, not when
        ctx.ensure_bridged()
        assert ctx.address == server.address
        assert launcher.current() is None
    finally:
        ctx.stop()


def test_private_sqlite_store(tmp_path):
    path = tmp_path / "kernel.db"
    ctx = Context.start(backend="bridged", store=f"sqlite:{path}")
    try:
        ctx.defvariable("x", "int", initial=1)
        assert path.exists()
    finally:
        ctx.stop()
