"""SPEC §6 production features on the bridged backend, end to end.

Real bridge server subprocesses on real sockets; every check goes through
``BridgedState`` / ``Context`` (or a raw ``BridgeClient`` where the point is a
request the Python API would never send). No wall-clock assertions: expiry
tests use short TTLs and poll with generous waits.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
import threading
import uuid

import grpc
import pytest

from dspex_jupyter import Context
from dspex_jupyter.bridge._proto import dspex_bridge_pb2 as pb
from dspex_jupyter.bridge.client import BridgeClient
from dspex_jupyter.bridge.errors import error_from_rpc
from dspex_jupyter.bridge.state import BridgedState, Lease
from dspex_jupyter.bridge.testing import ServerProcess
from dspex_jupyter.errors import (
    AccessDenied,
    CycleError,
    LockedError,
    NotSupportedByBackend,
    ValidationError,
    VariableNotFound,
)

from .conftest import PYTHON, WAIT_S, python_env, wait_until


class Recorder:
    def __init__(self) -> None:
        self.events = []
        self.cond = threading.Condition()

    def __call__(self, event) -> None:
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait_for(self, predicate, timeout: float = WAIT_S) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self.events), timeout)

    def kinds(self):
        return [(e.name, e.kind) for e in self.events]


def _state(srv: ServerProcess, session_id: str, *, principal=None, join=True) -> BridgedState:
    client = BridgeClient(srv.address, srv.token, principal=principal)
    try:
        return BridgedState(client, session_id, join=join)
    except BaseException:
        client.close()
        raise


@pytest.fixture
def states(server):
    """``make(session_id=None, principal=None)``: BridgedStates on one server, closed after."""
    made: list[BridgedState] = []

    def make(session_id: str | None = None, principal: str | None = None) -> BridgedState:
        state = _state(
            server, session_id or uuid.uuid4().hex, principal=principal, join=session_id is not None
        )
        made.append(state)
        return state

    yield make
    for state in made:
        state.close()


def _abc(state: BridgedState) -> None:
    for name in ("a", "b", "c", "d"):
        state.register(name, "float", 0.5, constraints={"min": 0, "max": 1})


# ---------------------------------------------------------------------- dependencies


def test_a_cycle_is_refused_and_named_in_order(states):
    state = states()
    _abc(state)
    state.add_dependency("a", "b")
    state.add_dependency("b", "c")
    before = (state.dependencies("a"), state.dependencies("b"), state.dependencies("c"))
    with pytest.raises(CycleError) as info:
        state.add_dependency("c", "a")
    assert info.value.cycle == ["c", "a", "b", "c"]
    assert "c -> a -> b -> c" in str(info.value)
    with pytest.raises(CycleError) as info:
        state.add_dependency("a", "a")
    assert info.value.cycle == ["a", "a"]
    with pytest.raises(ValidationError):  # CycleError is a ValidationError
        state.add_dependency("b", "a")
    after = (state.dependencies("a"), state.dependencies("b"), state.dependencies("c"))
    assert after == before == (["b"], ["c"], [])


def test_unknown_variables_are_refused_and_change_nothing(states):
    state = states()
    _abc(state)
    state.add_dependency("a", "b")
    for name, dep in (("a", "nope"), ("nope", "a")):
        with pytest.raises(VariableNotFound):
            state.add_dependency(name, dep)
        with pytest.raises(VariableNotFound):
            state.remove_dependency(name, dep)
    with pytest.raises(VariableNotFound):
        state.dependencies("nope")
    with pytest.raises(VariableNotFound):
        state.add_dependency(3, "a")  # type: ignore[arg-type]
    assert state.dependencies("a") == ["b"]
    assert state.topological_order() == ["b", "a", "c", "d"]


def test_topological_order_names_every_variable_dependencies_first(states):
    state = states()
    _abc(state)
    state.register("z", "int", 1)
    state.add_dependency("a", "d")
    state.add_dependency("b", "a")
    state.add_dependency("b", "z")
    state.add_dependency("c", "b")
    order = state.topological_order()
    assert sorted(order) == ["a", "b", "c", "d", "z"]
    for name, dep in (("a", "d"), ("b", "a"), ("b", "z"), ("c", "b")):
        assert order.index(dep) < order.index(name)
    assert state.dependencies("b") == ["a", "z"]
    state.remove_dependency("b", "z")
    state.remove_dependency("b", "z")  # removing a missing edge is a no-op
    assert state.dependencies("b") == ["a"]


def test_dependents_are_notified_through_a_watcher_in_order(states):
    writer = states()
    _abc(writer)
    writer.add_dependency("b", "a")  # b depends on a
    writer.add_dependency("c", "b")  # c depends on b (so transitively on a)
    reader = states(writer.session_id)  # another client of the session
    signals, plain = Recorder(), Recorder()
    reader.watch(None, signals, signals=True)
    reader.watch(None, plain)
    writer.set("a", 0.9)
    assert signals.wait_for(lambda evs: len(evs) >= 3)
    assert signals.kinds()[:3] == [
        ("a", "set"),
        ("b", "dependency_changed"),
        ("c", "dependency_changed"),
    ]
    changed = signals.events[1]
    assert changed.metadata["dependencies"] == ["a"]
    assert changed.version == reader.get("b").version == 1  # no value change
    assert changed.new_value == reader.get("b").value
    # an atomic batch: the signals follow the whole write
    writer.update_many({"a": 0.1, "d": 0.2})
    assert signals.wait_for(lambda evs: len(evs) >= 7)
    assert signals.kinds()[3:7] == [
        ("a", "set"),
        ("d", "set"),
        ("b", "dependency_changed"),
        ("c", "dependency_changed"),
    ]
    # a watcher that did not ask for signals sees only the values
    # a last write is a barrier: delivery is in order, so once it arrives
    # nothing else is pending for this watcher
    writer.set("d", 0.3)
    assert plain.wait_for(lambda evs: len(evs) >= 4)
    assert plain.kinds() == [("a", "set"), ("a", "set"), ("d", "set"), ("d", "set")]
    # history and versions are untouched by signals
    assert [r.version for r in reader.history("b")] == [1]


def test_deleting_a_variable_removes_its_edges(states):
    state = states()
    _abc(state)
    state.add_dependency("a", "b")
    state.add_dependency("b", "c")
    state.delete("b")
    assert state.dependencies("a") == [] and state.dependencies("c") == []
    assert state.topological_order() == ["a", "c", "d"]
    state.register("b", "float", 0.5)  # a new "b" starts with no edges
    assert state.dependencies("b") == []
    state.add_dependency("c", "a")
    state.add_dependency("a", "b")  # no stale edge b -> c: no cycle
    assert state.topological_order() == ["b", "a", "c", "d"]


def test_edges_owner_and_grants_survive_a_server_restart(tmp_path):
    store = f"sqlite:{tmp_path / 'bridge.db'}"
    sid = uuid.uuid4().hex
    srv = ServerProcess(store)
    try:
        state = _state(srv, sid, join=False, principal="alice")
        _abc(state)
        state.add_dependency("a", "b")
        state.add_dependency("b", "c")
        state.grant("bob", ["read"])
        state.close()
    finally:
        srv.stop()
    srv = ServerProcess(store)
    try:
        state = _state(srv, sid, principal="alice")
        bob = _state(srv, sid, principal="bob")
        try:
            # owner and grants survive too
            assert bob.permissions("bob") == {"*": ["read"]}
            assert bob.get("a").value == 0.5
            with pytest.raises(AccessDenied):
                bob.set("a", 0.1)
            with pytest.raises(AccessDenied):
                bob.grant("bob", ["write"])
            assert state.dependencies("a") == ["b"]
            assert state.topological_order() == ["c", "b", "a", "d"]
            with pytest.raises(CycleError) as info:
                state.add_dependency("c", "a")
            assert info.value.cycle == ["c", "a", "b", "c"]
        finally:
            bob.close()
            state.close()
    finally:
        srv.stop()


# ---------------------------------------------------------------------- optimizer locks


def test_acquiring_is_all_or_nothing_and_names_the_holder(states):
    one = states()
    _abc(one)
    two = states(one.session_id)
    lease = one.acquire_lock(["a", "b"], "optimizer-1", ttl_s=600)
    assert isinstance(lease, Lease)
    assert lease.holder == "optimizer-1" and lease.names == ["a", "b"] and lease.lease_id
    assert lease.expires_at > 0 and lease.ttl_s == 600
    with pytest.raises(LockedError) as info:
        two.acquire_lock(["c", "b"], "optimizer-2", ttl_s=600)
    assert info.value.holder == "optimizer-1"
    assert "'b'" in str(info.value)
    assert two.locks() == {"a": "optimizer-1", "b": "optimizer-1"}  # c was not taken
    other = two.acquire_lock(["c"], "optimizer-2", ttl_s=600)
    assert one.locks() == {"a": "optimizer-1", "b": "optimizer-1", "c": "optimizer-2"}
    two.release_lock(other)
    one.release_lock(lease)
    assert one.locks() == {}


def test_only_the_holder_writes_leased_variables(states, server):
    holder = states()
    _abc(holder)
    holder.set("a", 0.6)  # v2, so rollback has somewhere to go
    other = states(holder.session_id)
    lease = holder.acquire_lock(["a", "b"], "opt", ttl_s=600)
    before = other.export_state()
    refused = [
        lambda: other.set("a", 0.1),
        lambda: other.update_many({"c": 0.1, "b": 0.1}),
        lambda: other.delete("b"),
        lambda: other.rollback("a", 1),
        lambda: other.import_state(before, replace=True),
    ]
    for write in refused:
        with pytest.raises(LockedError) as info:
            write()
        assert info.value.holder == "opt"
    # a raw client that carries someone else's (made-up) lease is refused too
    raw = BridgeClient(server.address, server.token)
    try:
        with pytest.raises(LockedError):
            raw.call(
                "SetVariable",
                pb.SetVariableRequest(session_id=holder.session_id, name="a", value_json="0.2"),
                extra_metadata=(("dspex-lease", "not-a-lease"),),
            )
    finally:
        raw.close()
    assert other.export_state() == before  # nothing changed
    other.set("c", 0.3)  # unleased variables stay writable
    # the holder's own writes pass
    holder.set("a", 0.7)
    holder.update_many({"a": 0.8, "b": 0.2})
    holder.rollback("a", 2)
    assert holder.get("a").value == 0.6
    holder.release_lock(lease)
    other.set("a", 0.1)
    assert wait_until(lambda: holder.get("a").value == 0.1)


def test_a_lease_expires_unless_renewed(states):
    holder = states()
    _abc(holder)
    other = states(holder.session_id)
    events = Recorder()
    other.watch(["a"], events, signals=True)
    lease = holder.acquire_lock(["a"], "opt", ttl_s=600)
    first = lease.expires_at
    assert lease.renew(ttl_s=0.5) is lease
    assert lease.ttl_s == 0.5
    assert lease.expires_at < first  # renewed from now, with the new ttl
    assert wait_until(lambda: other.locks() == {})
    other.set("a", 0.2)
    assert events.wait_for(lambda evs: ("a", "unlocked") in [(e.name, e.kind) for e in evs])
    unlocked = next(e for e in events.events if e.kind == "unlocked")
    assert unlocked.metadata["reason"] == "expired" and unlocked.metadata["holder"] == "opt"
    with pytest.raises(LockedError):
        lease.renew()  # nothing to renew any more
    holder.release_lock(lease)  # releasing an expired lease is not an error


def test_release_and_context_manager(states):
    state = states()
    _abc(state)
    with state.acquire_lock(["a", "b"], "opt", ttl_s=600) as lease:
        assert state.locks() == {"a": "opt", "b": "opt"}
    assert lease.released and state.locks() == {}
    other = states(state.session_id)
    other.set("a", 0.1)


def test_lock_changes_reach_watchers(states):
    holder = states()
    _abc(holder)
    watcher = states(holder.session_id)
    events = Recorder()
    watcher.watch(None, events, signals=True)
    lease = holder.acquire_lock(["b", "a"], "opt-9", ttl_s=600)
    assert events.wait_for(lambda evs: len(evs) >= 2)
    assert events.kinds() == [("b", "locked"), ("a", "locked")]
    assert {e.metadata["holder"] for e in events.events} == {"opt-9"}
    assert all("lease_id" not in e.metadata for e in events.events)  # a capability: never shown
    holder.release_lock(lease)
    assert events.wait_for(lambda evs: len(evs) >= 4)
    assert events.kinds()[2:] == [("b", "unlocked"), ("a", "unlocked")]
    assert events.events[2].metadata["reason"] == "released"


HOLDER_PROCESS = textwrap.dedent(
    """
    import sys, time
    from dspex_jupyter.bridge.client import BridgeClient
    from dspex_jupyter.bridge.state import BridgedState
    state = BridgedState(BridgeClient(sys.argv[1], sys.argv[2]), sys.argv[3], join=True)
    state.acquire_lock(["a"], "doomed-optimizer", ttl_s=3600)
    print("HELD", flush=True)
    time.sleep(3600)
    """
)


def test_a_lease_ends_when_its_holder_disappears(states, server):
    state = states()
    _abc(state)
    proc = subprocess.Popen(
        [PYTHON, "-c", HOLDER_PROCESS, server.address, server.token, state.session_id],
        stdout=subprocess.PIPE,
        env=python_env(),
    )
    try:
        assert proc.stdout.readline().strip() == b"HELD"
        assert state.locks() == {"a": "doomed-optimizer"}
        with pytest.raises(LockedError):
            state.set("a", 0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(WAIT_S)
        # the TTL is an hour: only the holder's vanished connection can free it
        assert wait_until(lambda: state.locks() == {})
        state.set("a", 0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_bad_lock_requests_are_refused_and_change_nothing(states):
    state = states()
    _abc(state)
    with pytest.raises(VariableNotFound):
        state.acquire_lock(["a", "nope"], "opt")
    for names, holder, ttl in (
        ([], "opt", 10),
        (["a"], "", 10),
        (["a"], "opt", 0),
        (["a"], "opt", -1),
        (["a"], "opt", float("inf")),
        (["a"], 7, 10),
        (["a"], "opt", "10"),
    ):
        with pytest.raises(ValidationError):
            state.acquire_lock(names, holder, ttl)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        state.release_lock(None)  # type: ignore[arg-type]
    assert state.locks() == {}


# ---------------------------------------------------------------------- access control


ALL = ["execute", "observe", "optimize", "read", "write"]


def test_without_grants_everyone_with_the_token_has_every_right(states):
    alice = states(principal="alice")
    _abc(alice)
    bob = states(alice.session_id, principal="bob")
    anon = states(alice.session_id)
    assert sorted(bob.permissions("bob")["*"]) == ALL
    bob.set("a", 0.1)
    anon.set("b", 0.2)
    with bob.acquire_lock(["c"], "bob", ttl_s=60):
        bob.set("c", 0.3)
    events = Recorder()
    anon.watch(["a"], events)
    bob.set("a", 0.4)
    assert events.wait_for(lambda evs: len(evs) >= 1)


def _raw(server, principal):
    return BridgeClient(server.address, server.token, principal=principal)


def _watch_first(client: BridgeClient, sid: str, names=()):
    call = client.stub.WatchVariables(
        pb.WatchRequest(session_id=sid, names=list(names)), metadata=client.metadata, timeout=WAIT_S
    )
    try:
        return next(iter(call))
    except grpc.RpcError as err:
        raise error_from_rpc(err, "WatchVariables") from None
    finally:
        call.cancel()


def test_each_right_is_enforced_on_every_rpc_and_denial_changes_nothing(states, server):
    alice = states(principal="alice")
    _abc(alice)
    alice.add_dependency("a", "b")
    sid = alice.session_id
    alice.grant("bob", ["read"])
    bob = states(sid, principal="bob")  # no observe: its cache is off, reads ask the server
    assert bob.permissions("bob") == {"*": ["read"]}
    before = alice.export_state()
    # read: allowed
    assert bob.get("a").value == 0.5
    assert [v.name for v in bob.list()] == ["a", "b", "c", "d"]
    assert bob.get_many(["a", "b"])["b"].value == 0.5
    assert bob.history("a")[0].version == 1
    assert bob.dependencies("a") == ["b"] and bob.topological_order()[0] == "b"
    assert bob.export_state() == before
    # write: denied for every kind of write
    for write in (
        lambda: bob.set("a", 0.1),
        lambda: bob.update_many({"a": 0.1}),
        lambda: bob.delete("a"),
        lambda: bob.rollback("a", 1),
        lambda: bob.register("e", "int", 1),
        lambda: bob.import_state(before),
        lambda: bob.add_dependency("c", "d"),
        lambda: bob.remove_dependency("a", "b"),
    ):
        with pytest.raises(AccessDenied):
            write()
    # optimize: denied
    with pytest.raises(AccessDenied):
        bob.acquire_lock(["a"], "bob")
    # observe: denied
    raw = _raw(server, "bob")
    try:
        with pytest.raises(AccessDenied):
            _watch_first(raw, sid)
        with pytest.raises(AccessDenied):
            _watch_first(raw, sid, ["a"])
        # administration: only the owner
        for call in (
            lambda: bob.grant("bob", ["write"]),
            lambda: bob.revoke("bob", ["read"]),
            lambda: bob.permissions("carol"),
        ):
            with pytest.raises(AccessDenied):
                call()
        assert alice.export_state() == before
        assert alice.dependencies("a") == ["b"] and alice.locks() == {}
        # each right, once granted, works
        alice.grant("bob", ["observe"])
        assert _watch_first(raw, sid).WhichOneof("body") == "snapshot"
        alice.grant("bob", ["write", "optimize"])
        bob.set("a", 0.2)
        with bob.acquire_lock(["a"], "bob", ttl_s=60):
            bob.set("a", 0.3)
        # revoking takes the right away again
        alice.revoke("bob", ["write"])
        with pytest.raises(AccessDenied):
            bob.set("a", 0.4)
        assert alice.get("a").value == 0.3
    finally:
        raw.close()


def test_anonymous_callers_lose_rights_once_access_control_is_on(states):
    alice = states(principal="alice")
    _abc(alice)
    anon = states(alice.session_id)
    alice.grant("bob", ["read"])
    with pytest.raises(AccessDenied):
        anon.set("a", 0.1)
    with pytest.raises(AccessDenied):
        anon.list()
    assert alice.get("a").value == 0.5
    # a session created without a principal has no owner who could configure it
    unowned = states()
    _abc(unowned)
    with pytest.raises(AccessDenied):
        unowned.grant("bob", ["read"])
    other = states(unowned.session_id, principal="mallory")
    with pytest.raises(AccessDenied):
        other.grant("mallory", ["read"])
    unowned.set("a", 0.2)  # still open


def test_per_variable_grants(states):
    alice = states(principal="alice")
    _abc(alice)
    alice.grant("bob", ["read", "write"], variable="a")
    alice.grant("bob", ["read"], variable="b")
    alice.grant("bob", ["optimize"], variable="a")
    bob = states(alice.session_id, principal="bob")
    assert bob.permissions("bob") == {"a": ["optimize", "read", "write"], "b": ["read"]}
    bob.set("a", 0.1)
    assert bob.get("b").value == 0.5
    with pytest.raises(AccessDenied):
        bob.set("b", 0.1)
    with pytest.raises(AccessDenied):
        bob.get("c")
    with pytest.raises(AccessDenied):
        bob.get_many(["a", "c"])
    with pytest.raises(AccessDenied):
        bob.update_many({"a": 0.2, "b": 0.2})  # all or nothing
    with pytest.raises(AccessDenied):
        bob.list()  # listing needs session-wide read
    with pytest.raises(AccessDenied):
        bob.acquire_lock(["a", "b"], "bob")
    with bob.acquire_lock(["a"], "bob", ttl_s=60):
        bob.set("a", 0.3)
    assert alice.get_many(["a", "b"]) == {
        "a": alice.get("a"),
        "b": alice.get("b"),
    }
    assert (alice.get("a").value, alice.get("b").value) == (0.3, 0.5)
    # locks() shows only what the caller may read
    lease = alice.acquire_lock(["c", "a"], "alice-opt", ttl_s=60)
    assert bob.locks() == {"a": "alice-opt"}
    assert alice.locks() == {"a": "alice-opt", "c": "alice-opt"}
    alice.release_lock(lease)
    # grants on a deleted variable go with it
    alice.delete("a")
    alice.register("a", "float", 0.5)
    assert bob.permissions("bob") == {"b": ["read"]}


def test_bad_acl_requests_are_refused_and_change_nothing(states):
    alice = states(principal="alice")
    _abc(alice)
    for principal, rights, variable, error in (
        ("bob", ["fly"], None, ValidationError),
        ("bob", [], None, ValidationError),
        ("", ["read"], None, ValidationError),
        (7, ["read"], None, ValidationError),
        ("bob", ["read"], "nope", VariableNotFound),
    ):
        with pytest.raises(error):
            alice.grant(principal, rights, variable)  # type: ignore[arg-type]
    assert alice.permissions("bob") == {"*": ALL}  # still no ACL: open


def test_revoking_observe_ends_an_open_watch_stream(states, server):
    alice = states(principal="alice")
    _abc(alice)
    alice.grant("bob", ["read", "observe"])
    raw = _raw(server, "bob")
    call = raw.stub.WatchVariables(
        pb.WatchRequest(session_id=alice.session_id), metadata=raw.metadata, timeout=WAIT_S
    )
    try:
        stream = iter(call)
        assert next(stream).WhichOneof("body") == "snapshot"
        alice.revoke("bob", ["observe"])
        with pytest.raises(grpc.RpcError) as info:
            for _ in stream:
                pass
        assert isinstance(error_from_rpc(info.value), AccessDenied)
    finally:
        call.cancel()
        raw.close()


def test_context_principal_end_to_end(server):
    with pytest.raises(ValidationError):
        Context.start(principal=" ")
    with Context.start(bridge=server.address, token=server.token, principal="alice") as alice:
        alice.defvariable("temperature", "float", initial=0.7, constraints={"min": 0, "max": 2})
        alice.grant("bob", ["read", "observe"])
        with Context.start(
            bridge=server.address, token=server.token, session_id=alice.session_id, principal="bob"
        ) as bob:
            assert bob.principal == "bob"
            assert bob.get("temperature") == 0.7
            with pytest.raises(AccessDenied):
                bob.set("temperature", 0.9)
            with alice.acquire_lock(["temperature"], "alice-opt", ttl_s=60) as lease:
                assert bob.locks() == {"temperature": "alice-opt"}
                alice.set("temperature", 0.8)  # writes through the holding context pass
                assert lease.holder == "alice-opt"
            assert bob.locks() == {}
            assert wait_until(lambda: bob.get("temperature") == 0.8)


def test_local_state_still_refuses_the_production_features():
    ctx = Context.start()
    try:
        for call in (
            lambda: ctx.add_dependency("a", "b"),
            lambda: ctx.acquire_lock(["a"], "opt"),
            lambda: ctx.locks(),
            lambda: ctx.grant("bob", ["read"]),
        ):
            with pytest.raises(NotSupportedByBackend):
                call()
        handle = ctx.watch(None, lambda e: None, signals=True)  # accepted, never fires
        ctx.unwatch(handle)
    finally:
        ctx.stop()
