"""Leases are capabilities: nobody but the acquirer sees a lease id, and an id alone is not enough.

``ListLocks`` and ``locked``/``unlocked`` events show holder, variables and
expiry, never the id; Renew/Release need the acquiring principal *and* the id;
lease and session TTLs are finite, positive and capped.
"""

from __future__ import annotations

import math
import threading
import uuid

import pytest

from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.state import BridgedState
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import LockedError, ValidationError

from .conftest import WAIT_S, new_state
from .test_security_principals import add_user


@pytest.fixture(scope="module")
def cls(tmp_path_factory):
    """A users-file server with a teacher and two students who may optimize."""
    path = tmp_path_factory.mktemp("users") / "users.json"
    tokens = {
        name: add_user(path, name, admin=name == "teacher")
        for name in ("teacher", "alice", "mallory")
    }
    proc = ServerProcess("memory", private=False, extra_args=["--users", str(path)])
    yield proc, tokens
    proc.stop()


@pytest.fixture
def join(cls):
    proc, tokens = cls
    made: list[BridgedState] = []

    def make(who: str, session_id: str) -> BridgedState:
        return new_state(made, proc.address, tokens[who], session_id, join=True)

    yield make
    for state in made:
        state.close()


def _session(join) -> tuple[BridgedState, str]:
    sid = uuid.uuid4().hex
    teacher = join("teacher", sid)
    teacher.register("temperature", "float", 0.5)
    for student in ("alice", "mallory"):
        teacher.grant(student, ["read", "write", "observe", "optimize"], None)
    return teacher, sid


def test_no_lease_id_in_list_locks_or_lock_events(join):
    teacher, sid = _session(join)
    mallory = join("mallory", sid)
    seen, cond = [], threading.Condition()

    def record(event):
        with cond:
            seen.append(event)
            cond.notify_all()

    mallory.watch(None, record, signals=True)
    alice = join("alice", sid)
    lease = alice.acquire_lock(["temperature"], "alice-opt", ttl_s=60)
    assert lease.lease_id  # the acquirer gets it
    reply = mallory.client.call("ListLocks", pb.SessionRequest(session_id=sid))
    assert dict(reply.holders) == {"temperature": "alice-opt"}
    assert [(x.holder, list(x.names), x.lease_id) for x in reply.leases] == [
        ("alice-opt", ["temperature"], "")
    ]
    assert reply.leases[0].expires_at > 0
    alice.release_lock(lease)
    with cond:
        assert cond.wait_for(
            lambda: (
                [e.kind for e in seen if e.kind in ("locked", "unlocked")] == ["locked", "unlocked"]
            ),
            WAIT_S,
        )
    for event in seen:
        assert lease.lease_id not in repr(event.metadata)
        assert "lease_id" not in event.metadata


def test_a_leaked_lease_id_cannot_renew_release_or_write(join):
    teacher, sid = _session(join)
    alice, mallory = join("alice", sid), join("mallory", sid)
    lease = alice.acquire_lock(["temperature"], "alice-opt", ttl_s=60)
    leaked = lease.lease_id
    with pytest.raises(LockedError):
        mallory.renew_lock(leaked, ttl_s=300)
    mallory.release_lock(leaked)  # like releasing a lease that is not held: nothing happens
    assert mallory.locks() == {"temperature": "alice-opt"}
    with pytest.raises(LockedError):
        mallory.set("temperature", 0.9)
    assert alice.renew_lock(lease, ttl_s=120).ttl_s == 120
    alice.set("temperature", 0.1)
    alice.release_lock(lease)
    assert mallory.locks() == {}
    assert teacher.get("temperature").value == 0.1


@pytest.mark.parametrize("ttl", [math.nan, math.inf, -1.0, 301.0, 1e9])
def test_lease_ttls_are_finite_positive_and_capped(join, ttl):
    teacher, sid = _session(join)
    alice = join("alice", sid)
    with pytest.raises(ValidationError):
        alice.acquire_lock(["temperature"], "opt", ttl_s=ttl)
    assert alice.locks() == {}
    lease = alice.acquire_lock(["temperature"], "opt", ttl_s=300)
    with pytest.raises(ValidationError):
        alice.renew_lock(lease, ttl_s=ttl)
    assert lease.ttl_s == 300
    alice.release_lock(lease)


@pytest.mark.parametrize("ttl", [math.nan, math.inf, -1.0, 1e12])
def test_session_ttls_are_finite_positive_and_capped(cls, ttl):
    proc, tokens = cls
    client = BridgeClient(proc.address, tokens["teacher"])
    sid = uuid.uuid4().hex
    try:
        with pytest.raises(ValidationError):
            client.call("InitializeSession", pb.InitializeSessionRequest(session_id=sid, ttl_s=ttl))
        info = client.call("InitializeSession", pb.InitializeSessionRequest(session_id=sid))
        assert info.created and math.isfinite(info.ttl_s)
    finally:
        client.call("CleanupSession", pb.SessionRequest(session_id=sid))
        client.close()


def test_a_private_server_keeps_long_leases(server):
    """The kernel's own server (the default) is as easy as before: a 10-minute lease is fine."""
    client = BridgeClient(server.address, server.token)
    state = BridgedState(client, uuid.uuid4().hex)
    try:
        state.register("x", "int", 1)
        lease = state.acquire_lock(["x"], "opt", ttl_s=600)
        assert lease.ttl_s == 600
        state.release_lock(lease)
    finally:
        state.close()
