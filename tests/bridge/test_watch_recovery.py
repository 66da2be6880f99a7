"""BridgedState's stream: falling behind, resuming, resyncing; session TTLs."""

from __future__ import annotations

import uuid

from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import SessionNotFound

from .conftest import wait_until
from .test_faults import Collector

PAYLOAD = "y" * 4000
WRITES = 300


def _pair(server: ServerProcess) -> tuple[BridgedState, BridgedState]:
    sid = uuid.uuid4().hex
    slow = BridgedState(BridgeClient(server.address, server.token), sid)
    writer = BridgedState(BridgeClient(server.address, server.token), sid, join=True)
    return slow, writer


def _stall_and_write(slow: BridgedState, writer: BridgedState) -> int:
    """Stall ``slow``'s stream thread (it needs this lock for every event) while ``writer`` writes."""
    with slow._cond:
        for i in range(WRITES):
            last = writer.set("s", f"{i}{PAYLOAD}")
    return last.version


def test_a_lagging_bridged_state_resumes_without_a_gap():
    server = ServerProcess("memory", extra_args=["--watch-queue", "8"])
    slow, writer = _pair(server)
    try:
        writer.register("s", "str", "")
        seen = Collector()
        assert wait_until(lambda: "s" in slow._cache)
        slow.watch(["s"], seen)
        final = _stall_and_write(slow, writer)
        assert seen.wait_version(final)
        assert [e.version for e in seen.events] == list(range(2, final + 1))
        assert wait_until(lambda: slow.live and slow.get("s").version == final)
    finally:
        slow.close()
        writer.close()
        server.stop()


def test_a_bridged_state_past_the_retained_window_resyncs_from_a_snapshot():
    server = ServerProcess("memory", extra_args=["--watch-queue", "8", "--event-retain", "16"])
    slow, writer = _pair(server)
    try:
        writer.register("s", "str", "")
        writer.register("other", "int", 0)
        seen = Collector()
        assert wait_until(lambda: "other" in slow._cache)
        slow.watch(None, seen)
        final = _stall_and_write(slow, writer)
        writer.delete("other")
        assert seen.wait_version(final)
        assert wait_until(lambda: slow.live and slow.get("s").version == final)
        assert wait_until(lambda: "other" not in [v.name for v in slow.list()])
        versions = [e.version for e in seen.events if e.name == "s"]
        assert versions == sorted(set(versions)) and versions[-1] == final  # ordered, no dup
        # the cache drops "other" before the dispatcher thread calls back: wait for it
        assert wait_until(
            lambda: any(e.name == "other" and e.kind == "deleted" for e in seen.events)
        )
    finally:
        slow.close()
        writer.close()
        server.stop()


def test_idle_sessions_expire_but_watched_ones_live():
    server = ServerProcess("memory", extra_args=["--session-ttl", "0.5"])
    client = BridgeClient(server.address, server.token)
    try:
        idle, watched = uuid.uuid4().hex, uuid.uuid4().hex
        client.call("InitializeSession", pb.InitializeSessionRequest(session_id=idle))
        state = BridgedState(BridgeClient(server.address, server.token), watched)

        def gone(sid: str) -> bool:
            try:  # GetSession inspects without refreshing the TTL
                client.call("GetSession", pb.SessionRequest(session_id=sid))
                return False
            except SessionNotFound:
                return True

        assert wait_until(lambda: gone(idle))
        assert not gone(watched)  # kept alive by its open watch stream
        state.register("x", "int", 1)
        assert state.get("x").value == 1
        state.close()  # no stream any more: it expires in its turn
        assert wait_until(lambda: gone(watched))
    finally:
        client.close()
        server.stop()
