"""Watch streams at scale: the per-principal stream cap and the client's backoff."""

from __future__ import annotations

import uuid

import grpc
import pytest

from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.server import BridgeServer
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.state_stream import busy_backoff
from dspex_jupyter.bridge.store import MemoryStore
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import ValidationError

from .conftest import wait_until


def _first(client: BridgeClient, sid: str):
    call = client.stub.WatchVariables(pb.WatchRequest(session_id=sid), metadata=client.metadata)
    return call, next(call)


def test_streams_beyond_the_cap_are_refused_and_a_closed_stream_frees_a_slot():
    with ServerProcess("memory", extra_args=["--max-streams-per-principal", "2"]) as server:
        sid = uuid.uuid4().hex
        alice = BridgeClient(server.address, server.token, principal="alice")
        bob = BridgeClient(server.address, server.token, principal="bob")
        try:
            alice.call("InitializeSession", pb.SessionRequest(session_id=sid))
            held = [_first(alice, sid) for _ in range(2)]
            assert all(m.WhichOneof("body") == "snapshot" for _, m in held)
            third = alice.stub.WatchVariables(
                pb.WatchRequest(session_id=sid), metadata=alice.metadata, timeout=30
            )
            with pytest.raises(grpc.RpcError) as info:
                next(third)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "--max-streams-per-principal" in info.value.details()
            other, first = _first(bob, sid)  # another principal is unaffected
            assert first.WhichOneof("body") == "snapshot"
            held[0][0].cancel()

            def reopened() -> bool:
                try:
                    call, message = _first(alice, sid)
                except grpc.RpcError:
                    return False
                held.append((call, message))
                return True

            assert wait_until(reopened)
            for call, _ in [*held, (other, first)]:
                call.cancel()
        finally:
            alice.close()
            bob.close()


def test_a_refused_bridged_state_backs_off_instead_of_retrying_at_once(monkeypatch):
    from dspex_jupyter.bridge import state_stream

    monkeypatch.setattr(state_stream, "BUSY_BACKOFF_S", (0.05, 0.4))
    monkeypatch.setattr(state_stream, "SYNC_TIMEOUT_S", 0.5)
    with ServerProcess("memory", extra_args=["--max-streams-per-principal", "1"]) as server:
        sid = uuid.uuid4().hex
        first = BridgedState(BridgeClient(server.address, server.token, principal="p"), sid)
        waits: list[float] = []
        second = None
        try:
            assert wait_until(lambda: first.live)
            second = BridgedState(
                BridgeClient(server.address, server.token, principal="p"), sid, join=True
            )
            original = second._wake.wait

            def recording(timeout: float | None = None) -> bool:
                waits.append(timeout or 0.0)
                return original(timeout)

            second._wake.wait = recording  # type: ignore[method-assign]
            assert wait_until(lambda: len(waits) >= 3)
            assert not second.live
            assert all(w >= 0.025 for w in waits[:3]), waits  # never an immediate retry
            first.close()
            assert wait_until(lambda: second.live)
        finally:
            first.close()
            if second is not None:
                second.close()


def test_busy_backoff_grows_jittered_and_capped(monkeypatch):
    from dspex_jupyter.bridge import state_stream

    monkeypatch.setattr(state_stream, "BUSY_BACKOFF_S", (0.2, 30.0))
    assert 0.1 <= busy_backoff(1) <= 0.2
    assert 0.2 <= busy_backoff(2) <= 0.4
    assert all(busy_backoff(50) <= 30.0 for _ in range(20))
    assert len({busy_backoff(3) for _ in range(20)}) > 1


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_a_bad_stream_cap_is_a_validation_error(bad):
    with pytest.raises(ValidationError, match="max-streams-per-principal"):
        BridgeServer("127.0.0.1:0", "t", MemoryStore(), max_streams_per_principal=bad)
