"""Typed errors cross the wire whole: class, message and fields (google.rpc.ErrorInfo).

A real server subprocess on a real socket raises each error; the raw status is
checked for its ``ErrorInfo`` detail, and the client (``BridgeClient.call``,
which decodes it) must raise the same ``DSPexError`` subclass with the same
fields as the same operation on ``LocalState`` (the shared variable table
raises the same errors in both places) or as the server was asked to report.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge._proto import dspex_bridge_pb2_grpc as pb_grpc
from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.errors import DOMAIN, error_from_rpc
from dspex_jupyter.bridge.server import BridgeServicer, Session
from dspex_jupyter.bridge.server.rpc import rpc
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.errors import (
    AccessDenied,
    CycleError,
    DSPexError,
    LockedError,
    SessionNotFound,
    ValidationError,
    VariableNotFound,
    VersionConflict,
)
from dspex_jupyter.state.local import LocalState


def _raw_error(client: BridgeClient, method: str, request: object) -> grpc.RpcError:
    """Call the stub directly (no decoding) and return the RPC error it raised."""
    with pytest.raises(grpc.RpcError) as info:
        getattr(client.stub, method)(request, metadata=client.metadata, timeout=30)
    return info.value


def _info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(err)
    assert status is not None, "the status carries no google.rpc.Status details"
    assert status.code == err.code().value[0] and status.message == err.details()
    (detail,) = status.details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    assert info.domain == DOMAIN
    return info


def _decoded(client: BridgeClient, method: str, request: object) -> DSPexError:
    with pytest.raises(DSPexError) as info:
        client.call(method, request)
    return info.value


@pytest.fixture
def session(server) -> Iterator[tuple[BridgeClient, BridgedState, str]]:
    client = BridgeClient(server.address, server.token)
    sid = uuid.uuid4().hex
    state = BridgedState(client, sid)
    state.register("steps", "int", 3, constraints={"min": 1, "max": 10})
    state.register("temperature", "float", 0.5)
    yield client, state, sid
    state.close()


def _local() -> LocalState:
    local = LocalState()
    local.register("steps", "int", 3, constraints={"min": 1, "max": 10})
    local.register("temperature", "float", 0.5)
    return local


def test_validation_error_arrives_with_its_class_and_message(session):
    client, _, sid = session
    request = pb.SetVariableRequest(session_id=sid, name="steps", value_json=json.dumps(99))
    err = _raw_error(client, "SetVariable", request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _info(err).reason == "ValidationError"
    with pytest.raises(ValidationError) as local:
        _local().set("steps", 99)
    got = _decoded(client, "SetVariable", request)
    assert type(got) is ValidationError
    assert str(got) == str(local.value)


def test_variable_not_found_keeps_its_name_and_hint(session):
    client, _, sid = session
    request = pb.GetVariableRequest(session_id=sid, name="stepz")
    info = _info(_raw_error(client, "GetVariable", request))
    assert info.reason == "VariableNotFound" and info.metadata["name"] == "stepz"
    with pytest.raises(VariableNotFound) as local:
        _local().get("stepz")
    got = _decoded(client, "GetVariable", request)
    assert type(got) is VariableNotFound
    assert got.name == local.value.name == "stepz"
    assert str(got) == str(local.value)  # "... (did you mean 'steps'?)"


def test_version_conflict_keeps_expected_and_actual(session):
    client, state, sid = session
    state.set("steps", 4)  # version 2
    request = pb.SetVariableRequest(
        session_id=sid, name="steps", value_json=json.dumps(5), expected_version=1
    )
    info = _info(_raw_error(client, "SetVariable", request))
    assert info.reason == "VersionConflict"
    assert dict(info.metadata) == {"name": "steps", "expected": "1", "actual": "2"}
    got = _decoded(client, "SetVariable", request)
    assert type(got) is VersionConflict
    assert (got.name, got.expected, got.actual) == ("steps", 1, 2)
    assert str(got) == str(VersionConflict("steps", 1, 2))


def test_cycle_error_keeps_the_cycle(session):
    client, state, sid = session
    state.add_dependency("steps", "temperature")
    request = pb.DependencyRequest(session_id=sid, name="temperature", depends_on="steps")
    info = _info(_raw_error(client, "AddDependency", request))
    assert info.reason == "CycleError" and json.loads(info.metadata["cycle"])
    got = _decoded(client, "AddDependency", request)
    assert type(got) is CycleError
    assert got.cycle[0] == got.cycle[-1] and set(got.cycle) == {"steps", "temperature"}
    assert str(got) == str(CycleError(got.cycle))


def test_lock_conflict_keeps_the_holder(server, session):
    _, state, sid = session
    state.acquire_lock(["steps"], "optimizer-a", ttl_s=600)
    other = BridgeClient(server.address, server.token)  # carries no lease
    try:
        request = pb.SetVariableRequest(session_id=sid, name="steps", value_json="4")
        err = _raw_error(other, "SetVariable", request)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = _info(err)
        assert info.reason == "LockedError" and info.metadata["holder"] == "optimizer-a"
        got = _decoded(other, "SetVariable", request)
        assert type(got) is LockedError
        assert got.holder == "optimizer-a" and str(got) == err.details()
    finally:
        other.close()


def test_permission_denied_arrives_as_access_denied(server):
    sid = uuid.uuid4().hex
    alice = BridgedState(BridgeClient(server.address, server.token, principal="alice"), sid)
    bob = BridgeClient(server.address, server.token, principal="bob")
    try:
        alice.register("secret", "str", "x")
        alice.grant("carol", ["read"])  # access control is on from here
        request = pb.GetVariableRequest(session_id=sid, name="secret")
        err = _raw_error(bob, "GetVariable", request)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        assert _info(err).reason == "AccessDenied"
        got = _decoded(bob, "GetVariable", request)
        assert type(got) is AccessDenied
        assert str(got) == err.details() and "'bob'" in str(got) and "'read'" in str(got)
        assert alice.get("secret").value == "x"  # nothing changed
    finally:
        bob.close()
        alice.close()


def test_wrong_token_is_unauthenticated_access_denied(server):
    client = BridgeClient(server.address, "not-the-token")
    try:
        request = pb.SessionRequest(session_id="any")
        err = _raw_error(client, "Heartbeat", request)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert _info(err).reason == "AccessDenied"
        got = _decoded(client, "Heartbeat", request)
        assert type(got) is AccessDenied and str(got) == "missing or wrong bridge token"
    finally:
        client.close()


def test_session_not_found_from_a_watch_stream(server):
    client = BridgeClient(server.address, server.token)
    try:
        stream = client.stub.WatchVariables(
            pb.WatchRequest(session_id="no-such-session"), metadata=client.metadata, timeout=30
        )
        with pytest.raises(grpc.RpcError) as info:
            next(iter(stream))
        assert _info(info.value).reason == "SessionNotFound"
        got = error_from_rpc(info.value, "WatchVariables")
        assert type(got) is SessionNotFound and "no-such-session" in str(got)
    finally:
        client.close()


@pytest.fixture
def bare_server() -> Iterator[str]:
    """A plain gRPC server on a real socket that fails with bare codes, no details."""
    directory = tempfile.mkdtemp(prefix="dspex-test-bare-")
    address = f"unix:{os.path.join(directory, 'bare.sock')}"

    def fail(request: bytes, context: grpc.ServicerContext) -> bytes:
        code = grpc.StatusCode[request.decode()]
        context.abort(code, f"bare {code.name}")

    handler = grpc.method_handlers_generic_handler(
        "bare.Fail", {"Fail": grpc.unary_unary_rpc_method_handler(fail)}
    )
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    srv.add_generic_rpc_handlers((handler,))
    srv.add_insecure_port(address)
    srv.start()
    yield address
    srv.stop(0).wait()


@pytest.mark.parametrize(
    "code, cls",
    [
        ("NOT_FOUND", VariableNotFound),
        ("INVALID_ARGUMENT", ValidationError),
        ("FAILED_PRECONDITION", LockedError),
        ("PERMISSION_DENIED", AccessDenied),
    ],
)
def test_without_details_the_code_decides(bare_server, code, cls):
    with grpc.insecure_channel(bare_server) as channel:
        fail = channel.unary_unary("/bare.Fail/Fail")
        with pytest.raises(grpc.RpcError) as info:
            fail(code.encode(), timeout=30)
    assert rpc_status.from_call(info.value) is None
    got = error_from_rpc(info.value, "Fail")
    assert type(got) is cls
    assert str(got) == f"Fail failed: {code}: bare {code}"


def test_every_rpc_goes_through_the_guard():
    """Each generated RPC is overridden by a handler wrapped by ``@rpc`` (``rpc.py``)."""
    methods = [m for m in vars(pb_grpc.DSPexBridgeServicer) if m[0].isupper()]
    assert len(methods) >= 27
    for name in methods:
        handler = getattr(BridgeServicer, name)
        assert handler is not getattr(pb_grpc.DSPexBridgeServicer, name), name
        assert hasattr(handler, "__wrapped__"), f"{name} is not wrapped by @rpc"


class _Guarded:
    """Two handlers behind ``@rpc`` on one session whose owner is alice."""

    def __init__(self) -> None:
        self.session = Session("s", 60.0, 0.0)
        self.session.acl.owner = "alice"
        self.session.acl.enabled = True
        self.sessions = {"s": self.session}

    def _session(self, session_id: str, touch: bool = True):
        if session_id not in self.sessions:
            raise SessionNotFound(f"no session {session_id!r}")
        return self.sessions[session_id]

    @rpc("write", names=lambda request: ["x"])
    def Checks(self, request, call):
        with call.locked():
            return pb.SessionInfo(session_id=request.session_id)

    @rpc("write", names=lambda request: ["x"])
    def Forgets(self, request, call):
        return pb.SessionInfo(session_id=request.session_id)


@pytest.fixture
def guarded() -> Iterator[grpc.Channel]:
    """``_Guarded`` served by a real gRPC server on a real Unix socket."""
    directory = tempfile.mkdtemp(prefix="dspex-test-guard-")
    address = f"unix:{os.path.join(directory, 'guard.sock')}"
    servicer = _Guarded()
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=pb.SessionRequest.FromString,
            response_serializer=pb.SessionInfo.SerializeToString,
        )
        for name in ("Checks", "Forgets")
    }
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    srv.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("guard.G", handlers),))
    srv.add_insecure_port(address)
    srv.start()
    with grpc.insecure_channel(address) as channel:
        yield channel
    srv.stop(0).wait()


def _guard_call(channel, method, session_id="s", principal=None):
    stub = channel.unary_unary(
        f"/guard.G/{method}",
        request_serializer=pb.SessionRequest.SerializeToString,
        response_deserializer=pb.SessionInfo.FromString,
    )
    metadata = (("dspex-principal", principal),) if principal else ()
    return stub(pb.SessionRequest(session_id=session_id), metadata=metadata, timeout=30)


def test_the_guard_checks_the_declared_right_and_maps_errors(guarded):
    assert _guard_call(guarded, "Checks", principal="alice").session_id == "s"
    with pytest.raises(grpc.RpcError) as denied:
        _guard_call(guarded, "Checks", principal="bob")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    got = error_from_rpc(denied.value)
    assert type(got) is AccessDenied and "'bob'" in str(got) and "'x'" in str(got)
    with pytest.raises(grpc.RpcError) as missing:
        _guard_call(guarded, "Checks", session_id="other", principal="alice")
    assert type(error_from_rpc(missing.value)) is SessionNotFound


def test_a_handler_that_never_checks_its_right_fails(guarded):
    with pytest.raises(grpc.RpcError) as info:
        _guard_call(guarded, "Forgets", principal="alice")  # even the owner: a bug is a bug
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "without checking the 'write' right" in info.value.details()
