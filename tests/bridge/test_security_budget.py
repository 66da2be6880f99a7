"""What a session may keep, in bytes: ``--max-session-bytes`` and the cost of one value.

A session's current values and kept history are accounted; a write that would
take it over the budget is a ``ValidationError`` that changes nothing, and
history trimming or deleting variables frees room. A value is kept once, not
once per form (decoded, JSON, protobuf): measured in a real server process.
"""

from __future__ import annotations

import subprocess
import uuid

import grpc
import pytest

from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import ValidationError

from .conftest import PYTHON, WAIT_S, new_state, python_env

MiB = 1024 * 1024
BIG = 700_000  # characters; the budget below holds four of them, not five


@pytest.fixture(scope="module")
def budgeted():
    proc = ServerProcess(
        "memory", extra_args=["--max-session-bytes", str(3 * MiB), "--history-keep", "2"]
    )
    yield proc
    proc.stop()


@pytest.fixture
def made():
    states: list[BridgedState] = []
    yield states
    for state in states:
        state.close()


def test_a_write_over_the_session_budget_is_refused_and_changes_nothing(budgeted, made):
    state = new_state(made, budgeted.address, budgeted.token, uuid.uuid4().hex)
    for name in ("a", "b", "c"):
        state.register(name, "str", "")
    for _ in range(10):  # history-keep 2: each write trims the oldest, so "a" stays at 2 x BIG
        state.set("a", "a" * BIG)
    state.set("b", "b" * BIG)
    state.set("b", "B" * BIG)  # kept now: a, a, b, B = 2.8 MB of a 3 MiB budget
    before = state.export_state()
    for attempt in (
        lambda: state.set("c", "c" * BIG),
        lambda: state.update_many({"c": "c" * BIG}),
        lambda: state.register("d", "str", "d" * BIG),
    ):
        with pytest.raises(ValidationError, match="max-session-bytes"):
            attempt()
    assert state.export_state() == before
    assert [r.version for r in state.history("c")] == [1]
    watcher = new_state(made, budgeted.address, budgeted.token, state.session_id, join=True)
    assert watcher.get("c").value == "" and [v.name for v in watcher.list()] == ["a", "b", "c"]
    state.set("a", "x")  # shrinking is always allowed: it trims a big record
    state.delete("b")  # and deleting frees the variable's value and history
    state.set("c", "c" * BIG)
    state.set("c", "C" * BIG)
    assert state.get("c").version == 3


def test_the_watch_backlog_keeps_no_more_values_than_the_budget(budgeted, made):
    """Values that only the resume backlog still refers to are bounded too: past the
    budget its oldest events go, and resuming from before them is OUT_OF_RANGE
    (the client re-reads a snapshot), while a recent resume still replays."""
    state = new_state(made, budgeted.address, budgeted.token, uuid.uuid4().hex)
    state.register("a", "str", "")  # seq 1
    for i in range(12):  # seq 2..13, 8.4 MB written through a 3 MiB budget
        state.set("a", chr(ord("a") + i) * BIG)
    stub, md, sid = state.client.stub, state.client.metadata, state.session_id
    call = stub.WatchVariables(
        pb.WatchRequest(session_id=sid, resume=True, after_seq=1), metadata=md
    )
    with pytest.raises(grpc.RpcError) as info:
        next(iter(call))
    assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    call = stub.WatchVariables(
        pb.WatchRequest(session_id=sid, resume=True, after_seq=11), metadata=md
    )
    seen = []
    for message in call:
        if message.WhichOneof("body") == "caught_up":
            break
        seen.append((message.event.seq, message.event.new_value_json[:2]))
    call.cancel()
    assert seen == [(12, '"k'), (13, '"l')]


def test_the_budget_holds_across_a_restart(tmp_path, made):
    flags = ["--max-session-bytes", str(3 * MiB), "--history-keep", "2"]
    db = f"sqlite:{tmp_path / 'bridge.db'}"
    srv = ServerProcess(db, extra_args=flags)
    try:
        state = new_state(made, srv.address, srv.token, uuid.uuid4().hex)
        sid = state.session_id
        for name in ("a", "b", "c"):
            state.register(name, "str", "")
            if name != "c":
                state.set(name, name * BIG)
                state.set(name, name.upper() * BIG)
        state.close()
    finally:
        srv.stop()
    srv = ServerProcess(db, extra_args=flags)
    try:
        again = new_state(made, srv.address, srv.token, sid, join=True)
        with pytest.raises(ValidationError, match="max-session-bytes"):
            again.set("c", "c" * BIG)
        again.delete("a")
        again.set("c", "c" * BIG)
        assert again.get("c").version == 2
    finally:
        srv.stop()


def test_a_one_mib_value_is_kept_about_once(monkeypatch, made):
    """RSS of a real server over 20 writes of a ~1 MiB string, each kept in history.

    glibc is told to mmap every allocation over 64 KiB, so freed buffers go back
    to the OS and RSS counts what is kept. Keeping the value as decoded text,
    event JSON (old and new) and record JSON cost about 4.3 MiB per write; kept
    once it is about 1.4 MiB.
    """
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", str(64 * 1024))
    srv = ServerProcess("memory")
    try:
        state = new_state(made, srv.address, srv.token, uuid.uuid4().hex)
        state.register("doc", "str", "")
        value = MiB - 16  # its JSON just fits --max-value-bytes
        state.set("doc", "w" * value)  # warm up every code path once
        state.set("doc", "")
        before = _rss(srv.pid)
        writes = 20
        for i in range(writes):
            state.set("doc", chr(ord("a") + i) * value)
        kept = (_rss(srv.pid) - before) / writes
        assert len(state.history("doc")) == writes + 3
    finally:
        srv.stop()
    assert 0.9 * MiB < kept < 2.5 * MiB, f"{kept / MiB:.2f} MiB kept per 1 MiB write"


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc status")


@pytest.mark.parametrize(
    "flags",
    [
        ["--max-session-bytes", "0"],
        ["--session-ttl", "nan"],
        ["--max-session-ttl", "inf"],
        ["--max-lease-ttl", "nan"],
    ],
)
def test_a_server_with_a_nonsense_limit_refuses_to_start(flags):
    proc = subprocess.run(
        [PYTHON, "-m", "dspex_jupyter.bridge", "serve", *flags],
        env=dict(python_env(), DSPEX_BRIDGE_TOKEN="t"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert proc.returncode == 2 and "cannot start" in proc.stderr, proc.stderr
    assert "READY" not in proc.stdout
