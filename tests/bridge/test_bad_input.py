"""Bad input gets the right gRPC status, the right ``dspex_jupyter.errors`` class,
and changes nothing (checked by reading the state back)."""

from __future__ import annotations

import dataclasses
import uuid

import grpc
import pytest

from dspex_jupyter import Context
from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge._proto import dspex_bridge_pb2_grpc as pb_grpc
from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.server import MAX_MESSAGE_BYTES
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.errors import (
    AccessDenied,
    BridgeUnavailable,
    SessionNotFound,
    ValidationError,
    VariableExists,
    VariableNotFound,
    VersionConflict,
)


@pytest.fixture
def seeded(open_state):
    state = open_state()
    state.register("t", "float", 0.5, constraints={"min": 0, "max": 1}, metadata={"k": 1})
    state.register("m", "choice", "a", constraints={"choices": ["a", "b"]})
    return state


def _unchanged(state: BridgedState, before: dict) -> None:
    assert state.export_state() == before


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_no_or_wrong_token_is_refused_and_changes_nothing(server, seeded, token):
    before = seeded.export_state()
    client = BridgeClient(server.address, token)
    sid = seeded.session_id
    calls = [
        ("InitializeSession", pb.InitializeSessionRequest(session_id=uuid.uuid4().hex)),
        ("SetVariable", pb.SetVariableRequest(session_id=sid, name="t", value_json="0.9")),
        ("DeleteVariable", pb.DeleteVariableRequest(session_id=sid, name="t")),
        ("GetVariable", pb.GetVariableRequest(session_id=sid, name="t")),
        ("CleanupSession", pb.SessionRequest(session_id=sid)),
        (
            "ImportState",
            pb.ImportStateRequest(
                session_id=sid, snapshot_json='{"format":"dspex-state/1","variables":[]}'
            ),
        ),
    ]
    for method, request in calls:
        with pytest.raises(AccessDenied):
            client.call(method, request)
    with pytest.raises(AccessDenied):
        BridgedState(client, uuid.uuid4().hex)
    # the watch stream is refused too
    call = client.stub.WatchVariables(pb.WatchRequest(session_id=sid), metadata=client.metadata)
    with pytest.raises(grpc.RpcError) as info:
        next(iter(call))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    client.close()
    _unchanged(seeded, before)


def test_context_with_wrong_token_stays_usable_and_says_why(server):
    with pytest.raises((AccessDenied, BridgeUnavailable)):
        Context.start(bridge=server.address, token="nope")
    ctx = Context.start()
    ctx.defvariable("a", "int", initial=1)
    ctx.bridge_config = dataclasses.replace(ctx.bridge_config, address=server.address, token="nope")
    with pytest.raises((AccessDenied, BridgeUnavailable)):
        ctx.ensure_bridged()
    assert ctx.backend == "local" and ctx.get("a") == 1
    ctx.stop()


def test_invalid_values_are_validation_errors_and_change_nothing(seeded):
    before = seeded.export_state()
    with pytest.raises(ValidationError):
        seeded.set("t", 2.0)  # above max
    with pytest.raises(ValidationError):
        seeded.set("t", "high")  # wrong type
    with pytest.raises(ValidationError):
        seeded.set("t", float("nan"))
    with pytest.raises(ValidationError):
        seeded.set("m", "c")  # not a choice
    with pytest.raises(ValidationError):
        seeded.set("t", object())  # not JSON at all
    with pytest.raises(ValidationError):
        seeded.set("t", 0.2, metadata={"x": object()})
    with pytest.raises(ValidationError):
        seeded.update_many({"t": 0.1, "m": "zzz"})  # one bad: none applied
    with pytest.raises(ValidationError):
        seeded.register("bad name!", "int", 1)
    with pytest.raises(ValidationError):
        seeded.register("n", "no-such-type", 1)
    with pytest.raises(ValidationError):
        seeded.register("n", "int", 1, constraints={"nope": 1})
    with pytest.raises(ValidationError):
        seeded.import_state({"format": "other"})
    with pytest.raises(VariableExists):
        seeded.register("t", "int", 1)
    with pytest.raises(VersionConflict) as conflict:
        seeded.set("t", 0.7, expected_version=99)
    assert (conflict.value.expected, conflict.value.actual) == (99, 1)
    with pytest.raises(ValidationError):
        seeded.history("t", limit=0)
    _unchanged(seeded, before)


def test_unknown_variables_and_sessions(server, seeded, open_state):
    before = seeded.export_state()
    with pytest.raises(VariableNotFound) as info:
        seeded.set("tt", 0.1)
    assert "did you mean 't'" in str(info.value)  # the server's hint round-trips
    with pytest.raises(VariableNotFound):
        seeded.delete("nope")
    with pytest.raises(VariableNotFound):
        seeded.history("nope")
    with pytest.raises(VariableNotFound):
        seeded.update_many({"t": 0.1, "nope": 1})
    _unchanged(seeded, before)
    with pytest.raises(SessionNotFound):
        open_state(uuid.uuid4().hex, join=True)
    client = BridgeClient(server.address, server.token)
    with pytest.raises(SessionNotFound):
        client.call(
            "SetVariable", pb.SetVariableRequest(session_id="ghost", name="t", value_json="1")
        )
    with pytest.raises(ValidationError):
        client.call("InitializeSession", pb.InitializeSessionRequest(session_id=""))
    client.close()


def test_malformed_wire_requests(server, seeded):
    before = seeded.export_state()
    client = BridgeClient(server.address, server.token)
    sid = seeded.session_id
    bad = [
        ("SetVariable", pb.SetVariableRequest(session_id=sid, name="t", value_json="{not json")),
        ("SetVariable", pb.SetVariableRequest(session_id=sid, name="t", value_json="NaN")),
        (
            "SetVariable",
            pb.SetVariableRequest(session_id=sid, name="t", value_json="0.2", metadata_json="[1]"),
        ),
        (
            "RegisterVariable",
            pb.RegisterVariableRequest(session_id=sid, name="z", type="int", initial_json=""),
        ),
        (
            "UpdateVariables",
            pb.UpdateVariablesRequest(session_id=sid, values_json={"t": "0.1"}, order=["t", "t"]),
        ),
        ("ImportState", pb.ImportStateRequest(session_id=sid, snapshot_json="[]")),
    ]
    for method, request in bad:
        with pytest.raises(ValidationError):
            client.call(method, request)
    # raw gRPC: a message that is not a valid protobuf at all
    raw = client.channel.unary_unary(
        "/dspex.bridge.v1.DSPexBridge/SetVariable",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as info:
        raw(b"\xff\xff\xff\xff", metadata=client.metadata, timeout=30)
    assert info.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    client.close()
    _unchanged(seeded, before)


def test_oversized_messages_are_refused(server, seeded):
    before = seeded.export_state()
    seeded.register("s", "str", "")
    before = seeded.export_state()
    with pytest.raises(ValidationError) as info:
        seeded.set("s", "x" * (MAX_MESSAGE_BYTES + 1024))
    assert "RESOURCE_EXHAUSTED" in str(info.value)
    channel = grpc.insecure_channel(server.address)
    stub = pb_grpc.DSPexBridgeStub(channel)
    with pytest.raises(grpc.RpcError) as raw:
        stub.SetVariable(
            pb.SetVariableRequest(
                session_id=seeded.session_id,
                name="s",
                value_json='"' + "x" * MAX_MESSAGE_BYTES + '"',
            ),
            metadata=(("authorization", f"Bearer {server.token}"),),
            timeout=60,
        )
    assert raw.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()
    _unchanged(seeded, before)
    assert seeded.set("s", "fine").version == 2  # the stream and the session are still good


def test_bad_addresses():
    with pytest.raises(ValidationError):
        Context.start(bridge="not an address", token="x")
    with pytest.raises(ValidationError):
        BridgeClient("unix:", "x")
    with pytest.raises(BridgeUnavailable):
        BridgeClient("unix:/nonexistent/dir/sock", "x", connect_timeout=1)
