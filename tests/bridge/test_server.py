"""The server CLI, health, sessions, history and the watch stream's resume rules."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge._proto import dspex_bridge_pb2_grpc as pb_grpc
from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import SessionNotFound, ValidationError

from .conftest import PYTHON, python_env


def _stub(server: ServerProcess, token: str | None = None):
    channel = grpc.insecure_channel(server.address)
    md = (("authorization", f"Bearer {token or server.token}"),)
    return channel, pb_grpc.DSPexBridgeStub(channel), md


def test_default_listen_is_a_unix_socket_in_a_private_directory():
    proc = subprocess.Popen(
        [PYTHON, "-m", "dspex_jupyter.bridge", "serve", "--token", "t0k"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=python_env(),
    )
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("READY unix:"), line
        path = line.split(" ", 1)[1].strip()[len("unix:") :]
        mode = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
        assert mode == 0o700
        assert stat.S_ISSOCK(os.stat(path).st_mode)
        client = BridgeClient("unix:" + path, "t0k")
        info = client.call("InitializeSession", pb.InitializeSessionRequest(session_id="s"))
        assert info.created
        client.close()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
    assert not os.path.exists(os.path.dirname(path))  # the private directory is removed


def test_tcp_listen_reports_the_bound_port_and_token_from_env():
    proc = subprocess.Popen(
        [PYTHON, "-m", "dspex_jupyter.bridge", "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        env={**python_env(), "DSPEX_BRIDGE_TOKEN": "envtok"},
    )
    try:
        line = proc.stdout.readline().decode().strip()
        host, port = line.split(" ", 1)[1].rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        client = BridgeClient(f"127.0.0.1:{port}", "envtok")
        client.call("InitializeSession", pb.InitializeSessionRequest(session_id="s"))
        client.close()
    finally:
        proc.terminate()
        proc.wait(30)


def test_bad_store_fails_clearly():
    proc = subprocess.run(
        [PYTHON, "-m", "dspex_jupyter.bridge", "serve", "--token", "x", "--store", "redis:nope"],
        capture_output=True,
        env=python_env(),
        timeout=60,
    )
    assert proc.returncode == 2
    assert b"unknown store" in proc.stderr
    assert b"READY" not in proc.stdout


def test_health_is_open_and_serving(server):
    channel = grpc.insecure_channel(server.address)
    reply = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=30
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    channel.close()


def test_sessions_initialize_join_heartbeat_cleanup(server):
    client = BridgeClient(server.address, server.token)
    sid = uuid.uuid4().hex
    with pytest.raises(SessionNotFound):
        client.call(
            "InitializeSession", pb.InitializeSessionRequest(session_id=sid, must_exist=True)
        )
    info = client.call("InitializeSession", pb.InitializeSessionRequest(session_id=sid, ttl_s=50))
    assert info.created and info.ttl_s == 50
    again = client.call(
        "InitializeSession", pb.InitializeSessionRequest(session_id=sid, must_exist=True)
    )
    assert not again.created
    beat = client.call("Heartbeat", pb.SessionRequest(session_id=sid))
    assert beat.expires_at >= info.expires_at
    assert client.call("CleanupSession", pb.SessionRequest(session_id=sid)).existed
    with pytest.raises(SessionNotFound):
        client.call("GetSession", pb.SessionRequest(session_id=sid))
    client.close()


def test_history_and_rollback(open_state):
    state = open_state()
    state.register("t", "float", 0.1)
    state.set("t", 0.2)
    state.set("t", 0.3, metadata={"by": "opt"})
    assert [(r.version, r.value) for r in state.history("t")] == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert [r.version for r in state.history("t", limit=2)] == [2, 3]
    back = state.rollback("t", 1)
    assert (back.value, back.version) == (0.1, 4)
    assert back.metadata["rolled_back_to"] == 1
    assert state.get("t").version == 4
    with pytest.raises(ValidationError):
        state.rollback("t", 99)
    assert state.get("t").version == 4


def test_watch_resume_replays_exactly_and_refuses_lost_positions():
    server = ServerProcess("memory", extra_args=["--event-retain", "20"])
    channel, stub, md = _stub(server)
    try:
        sid = "s"
        stub.InitializeSession(pb.InitializeSessionRequest(session_id=sid), metadata=md)
        stub.RegisterVariable(
            pb.RegisterVariableRequest(session_id=sid, name="x", type="int", initial_json="0"),
            metadata=md,
        )
        for i in range(1, 10):
            stub.SetVariable(
                pb.SetVariableRequest(session_id=sid, name="x", value_json=str(i)), metadata=md
            )
        # seq 1 = register, seq 2..10 = sets; resume after 4 replays 5..10 then CaughtUp
        call = stub.WatchVariables(
            pb.WatchRequest(session_id=sid, resume=True, after_seq=4), metadata=md
        )
        seen = []
        for message in call:
            if message.WhichOneof("body") == "caught_up":
                assert message.caught_up.seq == 10
                break
            seen.append(message.event.seq)
        call.cancel()
        assert seen == [5, 6, 7, 8, 9, 10]
        for i in range(10, 40):  # push seq 1..40 out of a 20-event window
            stub.SetVariable(
                pb.SetVariableRequest(session_id=sid, name="x", value_json=str(i)), metadata=md
            )
        call = stub.WatchVariables(
            pb.WatchRequest(session_id=sid, resume=True, after_seq=4), metadata=md
        )
        with pytest.raises(grpc.RpcError) as info:
            next(iter(call))
        assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
        call = stub.WatchVariables(
            pb.WatchRequest(session_id=sid, resume=True, after_seq=1000), metadata=md
        )
        with pytest.raises(grpc.RpcError) as info:
            next(iter(call))
        assert info.value.code() == grpc.StatusCode.OUT_OF_RANGE
    finally:
        channel.close()
        server.stop()


def test_a_slow_watcher_is_cut_off_without_blocking_writers_and_resumes():
    server = ServerProcess("memory", extra_args=["--watch-queue", "8"])
    channel, stub, md = _stub(server)
    try:
        sid = "s"
        stub.InitializeSession(pb.InitializeSessionRequest(session_id=sid), metadata=md)
        stub.RegisterVariable(
            pb.RegisterVariableRequest(session_id=sid, name="x", type="str", initial_json='""'),
            metadata=md,
        )
        call = stub.WatchVariables(pb.WatchRequest(session_id=sid), metadata=md)
        stream = iter(call)
        assert next(stream).WhichOneof("body") == "snapshot"
        payload = '"' + "y" * 4000 + '"'
        total = 400  # far more than the queue and the transport buffers hold
        for _ in range(total):  # the writer never waits for the stalled watcher
            stub.SetVariable(
                pb.SetVariableRequest(session_id=sid, name="x", value_json=payload),
                metadata=md,
                timeout=60,
            )
        got = []
        with pytest.raises(grpc.RpcError) as info:
            for message in stream:
                got.append(message.event.seq)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "resume after seq" in info.value.details()
        assert got == list(range(2, 2 + len(got))) and len(got) < total
        call = stub.WatchVariables(
            pb.WatchRequest(session_id=sid, resume=True, after_seq=got[-1]), metadata=md
        )
        rest = []
        for message in call:
            if message.WhichOneof("body") == "caught_up":
                break
            rest.append(message.event.seq)
        call.cancel()
        assert got + rest == list(range(2, total + 2))  # no gap, no duplicate
    finally:
        channel.close()
        server.stop()
