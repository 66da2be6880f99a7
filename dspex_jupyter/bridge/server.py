"""The bridge server: sessions of versioned variables, watch streams, history.

Variable semantics come from the shared :class:`VariableTable` (validation,
versions, compare-and-set, atomic batches, export/import), so the bridge and
``LocalState`` behave the same by construction. Each session serializes its
writes with one lock; inside it a write is applied, committed to the store,
numbered with the session's next sequence number and offered to every watcher.
Reads take the same lock, so nobody ever sees a write that is not yet durable.

Watch fan-out never blocks a writer: each watcher has a bounded queue; a
watcher that falls more than ``watch_queue`` events behind has its stream ended
with ``RESOURCE_EXHAUSTED`` right after the last event it was sent, and resumes
from that event's sequence number.

Production features (SPEC §6; the data structures are in ``production.py``).
Who calls is read from the call metadata: ``dspex-principal`` (access
control), ``dspex-lease`` (the lease ids a write carries; a lease id is a
bearer capability) and ``dspex-client`` (the connection: its leases end
``LEASE_DISCONNECT_GRACE_S`` after its last watch stream closes). Rights per
RPC, once a session has access control (the owner has them all):

* read: GetVariable(s), ListVariables and ExportState (session-wide),
  GetHistory, GetDependencies, TopologicalOrder (session-wide), ExecuteModule
  (every bound variable); ListLocks shows only readable variables;
* write: RegisterVariable, SetVariable, UpdateVariables, DeleteVariable,
  RollbackVariable, ImportState (session-wide), Add/RemoveDependency (on the
  dependent), CleanupSession (session-wide);
* observe: WatchVariables (every named variable, or session-wide); revoking
  it ends open streams with PERMISSION_DENIED;
* optimize: AcquireLock (every name). Renew/ReleaseLock need the lease id;
* owner only: Grant, Revoke, and GetPermissions of another principal.
InitializeSession (join), Heartbeat and GetSession need only the token.
"""

from __future__ import annotations

import collections
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from .. import errors as E
from ..errors import SessionNotFound
from ..variables.record import Variable, WatchEvent, to_json_value
from ..variables.table import SNAPSHOT_FORMAT, VariableTable, define, variable_from_dict
from . import convert as C
from ._proto import dspex_bridge_pb2 as pb
from ._proto import dspex_bridge_pb2_grpc as pb_grpc
from .errors import error_metadata, status_for
from .production import (
    SIGNAL_KINDS,
    AccessControl,
    DependencyGraph,
    Leases,
    check_principal,
    check_rights,
    check_ttl,
)
from .store import SessionData, Store

__all__ = ["BridgeServer", "BridgeServicer", "MAX_MESSAGE_BYTES", "DEFAULT_TTL_S"]

log = logging.getLogger("dspex_jupyter.bridge")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # a request larger than this is RESOURCE_EXHAUSTED
MAX_SEND_BYTES = 64 * 1024 * 1024  # exports and snapshots of big sessions
DEFAULT_TTL_S = 3600.0
HISTORY_LIMIT = 1000
EVENT_LIMIT = 10_000
WATCH_QUEUE = 4096
STREAM_YIELD_S = 0.0002  # see _Watcher.take
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_SEND_BYTES),
    ("grpc.so_reuseport", 0),
]

_LIVE, _OVERFLOW, _CLOSED, _GONE, _DENIED = range(5)


class _Watcher:
    """One stream's bounded queue of prebuilt messages."""

    __slots__ = ("names", "items", "cond", "state", "limit", "principal")

    def __init__(self, names: frozenset[str] | None, limit: int, principal: str = "") -> None:
        self.names = names
        self.principal = principal
        self.items: collections.deque[pb.WatchMessage] = collections.deque()
        self.cond = threading.Condition(threading.Lock())
        self.state = _LIVE
        self.limit = limit

    def push(self, name: str, message: pb.WatchMessage) -> None:
        if self.names is not None and name not in self.names:
            return
        with self.cond:
            if self.state != _LIVE:
                return
            if len(self.items) >= self.limit:
                self.state = _OVERFLOW  # never block the writer: tell the watcher instead
            else:
                self.items.append(message)
            self.cond.notify()

    def end(self, state: int) -> None:
        with self.cond:
            if self.state == _LIVE:
                self.state = state
            self.cond.notify()

    def take(self) -> tuple[list[pb.WatchMessage], int]:
        with self.cond:
            if not self.items and self.state == _LIVE:
                while not self.items and self.state == _LIVE:
                    self.cond.wait()
                if self.state == _LIVE and STREAM_YIELD_S:
                    # Just woken by a writer that still has to send its reply: step
                    # aside briefly so the two threads do not fight over the GIL
                    # (it also gathers the writer's batch into one wake-up).
                    self.cond.release()
                    try:
                        time.sleep(STREAM_YIELD_S)
                    finally:
                        self.cond.acquire()
            items = list(self.items)
            self.items.clear()
            return items, self.state


class Session:
    """The live state of one session; every field is guarded by ``lock``."""

    def __init__(
        self, session_id: str, ttl_s: float, created_at: float, event_limit: int = EVENT_LIMIT
    ) -> None:
        self.id = session_id
        self.ttl_s = ttl_s
        self.created_at = created_at
        self.last_seen = time.time()
        self.lock = threading.Lock()
        self.table = VariableTable()
        self.history: dict[str, collections.deque[Variable]] = {}
        self.events: collections.deque[tuple[int, pb.WatchMessage]] = collections.deque(
            maxlen=event_limit
        )
        self.last_seq = 0
        self.watchers: set[_Watcher] = set()
        self.gone = False
        self.graph = DependencyGraph()
        self.leases = Leases()
        self.acl = AccessControl()
        self.clients: dict[str, int] = {}  # connection id -> open watch streams

    def info(self, created: bool = False) -> pb.SessionInfo:
        return pb.SessionInfo(
            session_id=self.id,
            ttl_s=self.ttl_s,
            created_at=self.created_at,
            expires_at=self.last_seen + self.ttl_s,
            last_seq=self.last_seq,
            variable_count=len(self.table),
            created=created,
        )

    def expired(self, now: float) -> bool:
        return not self.watchers and now > self.last_seen + self.ttl_s


def _event_dict(seq: int, event: WatchEvent, record: Variable | None, more: bool) -> dict[str, Any]:
    data = event.to_dict()
    data["seq"] = seq
    data["more"] = more
    data["record"] = None if record is None else record.to_dict()
    return data


def _event_message(data: dict[str, Any]) -> pb.WatchMessage:
    """The prebuilt stream message of a stored event dict."""
    msg = pb.Event(
        seq=data["seq"],
        name=data["name"],
        kind=data["kind"],
        old_value_json=C.dumps(data["old_value"]),
        new_value_json=C.dumps(data["new_value"]),
        version=data["version"],
        source=data["source"],
        timestamp=data["timestamp"],
        metadata_json=C.dumps_map(data["metadata"]),
        more=bool(data.get("more")),
    )
    record = data.get("record")
    if record is not None:
        msg.record.CopyFrom(
            pb.VariableRecord(
                name=record["name"],
                type=record["type"],
                value_json=C.dumps(record["value"]),
                constraints_json=C.dumps_map(record["constraints"]),
                version=record["version"],
                metadata_json=C.dumps_map(record["metadata"]),
                source=record["source"],
                timestamp=record["timestamp"],
            )
        )
    return pb.WatchMessage(event=msg)


class BridgeServicer(pb_grpc.DSPexBridgeServicer):
    """The RPCs. Every handler maps ``DSPexError`` to a status via :func:`_guard`."""

    def __init__(
        self,
        store: Store,
        *,
        default_ttl_s: float = DEFAULT_TTL_S,
        event_limit: int = EVENT_LIMIT,
        watch_queue: int = WATCH_QUEUE,
        workers: int | None = None,
    ) -> None:
        self.store = store
        self.default_ttl_s = default_ttl_s
        self.event_limit = event_limit
        self.watch_queue = watch_queue
        self.workers = workers
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._closing = False
        self.sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()
        for data in store.load(HISTORY_LIMIT, event_limit):
            self._restore(data)

    # ------------------------------------------------------------------ sessions

    def _restore(self, data: SessionData) -> None:
        session = Session(data.session_id, data.ttl_s, data.created_at, self.event_limit)
        session.last_seq = data.last_seq
        if data.variables:
            session.table.import_({"format": SNAPSHOT_FORMAT, "variables": data.variables})
        for name, rows in data.history.items():
            session.history[name] = collections.deque(
                (variable_from_dict(r)[0] for r in rows), maxlen=HISTORY_LIMIT
            )
        for seq, event in data.events:
            session.events.append((seq, _event_message(event)))
        session.graph = DependencyGraph(data.meta.get("dependencies") or ())
        session.acl = AccessControl(data.meta.get("owner") or "", data.meta.get("acl"))
        self.sessions[session.id] = session

    def _session(self, session_id: str, touch: bool = True) -> Session:
        """The live session; any use but an inspection (GetSession) refreshes its TTL."""
        session = self.sessions.get(session_id)
        if session is None or session.gone:
            raise SessionNotFound(f"no session {session_id!r} on this bridge server")
        if touch:
            session.last_seen = time.time()
        return session

    def reap(self, now: float | None = None) -> list[str]:
        """Drop sessions idle past their TTL (an open watch stream keeps one alive)."""
        now = time.time() if now is None else now
        dropped = []
        for session in list(self.sessions.values()):
            if session.expired(now):
                self._drop(session)
                dropped.append(session.id)
        return dropped

    def _drop(self, session: Session) -> None:
        with self._sessions_lock, session.lock:
            if session.gone:
                return
            self.store.drop_session(session.id)
            session.gone = True
            self.sessions.pop(session.id, None)
            for watcher in session.watchers:
                watcher.end(_GONE)

    def InitializeSession(self, request, context):
        def run():
            sid = request.session_id
            if not sid or len(sid) > 256:
                raise E.ValidationError(f"session_id must be 1..256 characters, got {sid!r}")
            if request.ttl_s < 0:
                raise E.ValidationError(f"ttl_s must be >= 0, got {request.ttl_s}")
            with self._sessions_lock:
                session = self.sessions.get(sid)
                if session is not None:
                    session.last_seen = time.time()
                    return session.info()
                if request.must_exist:
                    raise SessionNotFound(
                        f"no session {sid!r} on this bridge server (it may have expired)"
                    )
                session = Session(
                    sid, request.ttl_s or self.default_ttl_s, time.time(), self.event_limit
                )
                session.acl.owner = _caller(context).principal
                self.store.save_session(sid, session.ttl_s, session.created_at)
                if session.acl.owner:
                    self.store.save_meta(sid, {"owner": session.acl.owner})
                self.sessions[sid] = session
                return session.info(created=True)

        return _guard(context, run)

    def Heartbeat(self, request, context):
        return _guard(context, lambda: self._session(request.session_id).info())

    def GetSession(self, request, context):
        return _guard(context, lambda: self._session(request.session_id, touch=False).info())

    def CleanupSession(self, request, context):
        def run():
            session = self.sessions.get(request.session_id)
            if session is None:
                return pb.CleanupSessionResponse(existed=False)
            with session.lock:
                _require(session, context, "write")
            self._drop(session)
            return pb.CleanupSessionResponse(existed=True)

        return _guard(context, run)

    # ------------------------------------------------------------------ writes

    def _write(
        self,
        session: Session,
        names: list[str] | None,
        mutate: Callable[[], list[WatchEvent]],
    ) -> list[tuple[int, WatchEvent, pb.VariableRecord | None]]:
        """Apply ``mutate`` to the table, commit it, then publish; all or nothing.

        Returns ``(seq, event, record message)`` per change (no record for a deletion).

        ``names`` are the variables ``mutate`` may touch (``None``: computed from
        the events), saved first so that a failed commit restores them exactly.
        ``mutate`` may also return signal events (``SIGNAL_KINDS``: they change no
        value). Every value write is followed, in the same atomic batch, by a
        ``dependency_changed`` signal for each variable that transitively depends
        on what it changed; a deletion takes the variable's edges, leases and
        per-variable grants with it.
        Must be called with ``session.lock`` held.
        """
        table = session.table
        validators = table._validators  # noqa: SLF001 - same package, restore on failure
        touched = list(table.variables) if names is None else list(names)
        saved = {n: (table.variables.get(n), validators.get(n)) for n in touched}
        events = mutate()
        try:
            events = events + self._dependency_signals(session, events)
            deleted = [e.name for e in events if e.kind == "deleted"]
            graph = session.graph.without(deleted)
            meta: dict[str, Any] = {}
            if graph is not None:
                meta["dependencies"] = graph.edges()
            acl_changed = False
            if deleted and any(
                n in scopes for scopes in session.acl.grants.values() for n in deleted
            ):
                acl_changed = True
            results = []
            seq = session.last_seq
            durable = self.store.durable
            upserts, deletes, rows = [], [], []
            for index, event in enumerate(events):
                seq += 1
                record = None if event.kind == "deleted" else table.variables[event.name]
                if record is None:
                    deletes.append(event.name)
                elif event.kind not in SIGNAL_KINDS:
                    upserts.append(record)
                results.append((seq, event, record))
                if durable:
                    rows.append((seq, _event_dict(seq, event, record, index != len(events) - 1)))
            if acl_changed:
                acl = AccessControl(session.acl.owner, session.acl.to_json())
                acl.forget_variables(deleted)
                meta["acl"] = acl.to_json()
            if events:
                self.store.commit(session.id, seq, upserts, deletes, rows, meta or None)
        except BaseException:
            if names is None:  # the mutation may have added any name: start from empty
                table.variables.clear()
                validators.clear()
            for name, (record, validator) in saved.items():
                if record is None:
                    table.variables.pop(name, None)
                else:
                    table.variables[name] = record
                if validator is None:
                    validators.pop(name, None)
                else:
                    validators[name] = validator
            raise
        if graph is not None:
            session.graph = graph
        if deleted:
            session.leases.forget_variables(deleted)
            session.acl.forget_variables(deleted)
        last = len(results) - 1
        out = []
        for index, (seq, event, record) in enumerate(results):
            session.last_seq = seq
            signal = event.kind in SIGNAL_KINDS
            if record is None:
                session.history.pop(event.name, None)
            elif not signal:
                hist = session.history.get(event.name)
                if hist is None or event.kind == "registered":
                    hist = session.history[event.name] = collections.deque(maxlen=HISTORY_LIMIT)
                hist.append(record)
            record_pb = None if record is None else C.record_to_pb(record)
            if signal:  # the event's own metadata, with the current record alongside
                event_pb = C.event_to_pb(seq, event, None)
                event_pb.record.CopyFrom(record_pb)
            else:
                event_pb = C.event_to_pb(seq, event, record, record_pb)
            message = pb.WatchMessage(event=event_pb)
            if index != last:
                message.event.more = True
            session.events.append((seq, message))
            for watcher in session.watchers:
                watcher.push(event.name, message)
            if not signal:
                out.append((seq, event, record_pb))
        return out

    def _dependency_signals(self, session: Session, events: list[WatchEvent]) -> list[WatchEvent]:
        """One ``dependency_changed`` event per (transitive) dependent of the values written."""
        changed = [e.name for e in events if e.kind == "set"]
        if not changed or not session.graph.deps:
            return []
        dependents = session.graph.dependents(changed)
        if not dependents:
            return []
        table = session.table.variables
        source = next(e.source for e in events if e.kind == "set")
        now = time.time()
        out = []
        for name in session.graph.order(dependents):
            record = table.get(name)
            if record is None:
                continue
            out.append(
                WatchEvent.signal(
                    record, "dependency_changed", source, now, {"dependencies": dependents[name]}
                )
            )
        return out

    def _signal(self, session: Session, events: list[WatchEvent]) -> None:
        """Publish signal events (locks) in the session's sequence. Lock held."""
        events = [e for e in events if e.name in session.table.variables]
        if events:
            self._write(session, [], lambda: events)

    def RegisterVariable(self, request, context):
        def run():
            session = self._session(request.session_id)
            record, validator = define(
                request.name,
                request.type,
                C.loads(request.initial_json, "initial value"),
                constraints=C.loads_map(request.constraints_json, "constraints"),
                metadata=C.loads_map(request.metadata_json, "metadata"),
                source=request.source or "api",
            )
            with session.lock:
                _require(session, context, "write", [record.name])
                ((seq, _, stored),) = self._write(
                    session, [record.name], lambda: [session.table.register(record, validator)]
                )
            return pb.WriteResponse(record=stored, seq=seq)

        return _guard(context, run)

    def SetVariable(self, request, context):
        def run():
            session = self._session(request.session_id)
            value = C.loads(request.value_json)
            metadata = C.loads_map(request.metadata_json, "metadata")
            expected = request.expected_version if request.HasField("expected_version") else None
            name = request.name

            def mutate():
                return [
                    session.table.set(
                        name,
                        value,
                        metadata=metadata,
                        expected_version=expected,
                        source=request.source or "api",
                    )[1]
                ]

            with session.lock:
                _require(session, context, "write", [name])
                self._check_locks(session, context, [name])
                ((seq, _, stored),) = self._write(session, [name], mutate)
            return pb.WriteResponse(record=stored, seq=seq)

        return _guard(context, run)

    def UpdateVariables(self, request, context):
        def run():
            session = self._session(request.session_id)
            order = list(request.order) or sorted(request.values_json)
            if set(order) != set(request.values_json) or len(order) != len(set(order)):
                raise E.ValidationError("update order must name each updated variable once")
            updates = {n: C.loads(request.values_json[n], f"value of {n!r}") for n in order}
            metadata = C.loads_map(request.metadata_json, "metadata")
            expected = dict(request.expected_versions) or None

            def mutate():
                return session.table.update_many(
                    updates,
                    metadata=metadata,
                    expected_versions=expected,
                    source=request.source or "api",
                )[1]

            with session.lock:
                _require(session, context, "write", order)
                self._check_locks(session, context, order)
                results = self._write(session, order, mutate)
            return pb.BatchWriteResponse(
                records=[r for _, _, r in results],
                seqs=[seq for seq, _, _ in results],
            )

        return _guard(context, run)

    def DeleteVariable(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "write", [request.name])
                self._check_locks(session, context, [request.name])
                ((seq, event, _),) = self._write(
                    session,
                    [request.name],
                    lambda: [session.table.delete(request.name, request.source or "api")],
                )
            return pb.DeleteVariableResponse(seq=seq, version=event.version)

        return _guard(context, run)

    def RollbackVariable(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "write", [request.name])
                session.table.get(request.name)  # VariableNotFound first
                self._check_locks(session, context, [request.name])
                past = [
                    r for r in session.history.get(request.name, ()) if r.version == request.version
                ]
                if not past:
                    raise E.ValidationError(
                        f"{request.name}: version {request.version} is not in its history"
                    )
                target = past[0]
                ((seq, _, stored),) = self._write(
                    session,
                    [request.name],
                    lambda: [
                        session.table.set(
                            request.name,
                            target.value,
                            metadata={"rolled_back_to": request.version},
                            source=request.source or "rollback",
                        )[1]
                    ],
                )
            return pb.WriteResponse(record=stored, seq=seq)

        return _guard(context, run)

    def ImportState(self, request, context):
        def run():
            session = self._session(request.session_id)
            snapshot = C.loads(request.snapshot_json, "snapshot")
            source = request.source if request.HasField("source") else None
            with session.lock:
                _require(session, context, "write")
                if session.leases.by_id:
                    touched = _snapshot_names(snapshot)
                    if request.replace:
                        touched |= set(session.table.variables)
                    self._check_locks(session, context, sorted(touched))
                results = self._write(
                    session,
                    None,
                    lambda: session.table.import_(snapshot, replace=request.replace, source=source),
                )
            return pb.BatchWriteResponse(
                records=[r for _, _, r in results],
                seqs=[seq for seq, _, _ in results],
            )

        return _guard(context, run)

    # ------------------------------------------------------------------ reads

    def GetVariable(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "read", [request.name])
                return C.record_to_pb(session.table.get(request.name))

        return _guard(context, run)

    def GetVariables(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "read", list(request.names))
                records = [session.table.get(n) for n in request.names]
                seq = session.last_seq
            return pb.VariablesResponse(records=[C.record_to_pb(r) for r in records], seq=seq)

        return _guard(context, run)

    def ListVariables(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "read")
                records, seq = session.table.records(), session.last_seq
            return pb.VariablesResponse(records=[C.record_to_pb(r) for r in records], seq=seq)

        return _guard(context, run)

    def GetHistory(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "read", [request.name])
                session.table.get(request.name)
                records = list(session.history.get(request.name, ()))
            if request.limit:
                records = records[-request.limit :]
            return pb.VariablesResponse(records=[C.record_to_pb(r) for r in records])

        return _guard(context, run)

    def ExportState(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "read")
                snapshot, seq = session.table.export(), session.last_seq
            return pb.ExportStateResponse(snapshot_json=C.dumps(snapshot), seq=seq)

        return _guard(context, run)

    # ------------------------------------------------------------------ dependencies

    def _names_response(self, names: list[str]) -> pb.NamesResponse:
        return pb.NamesResponse(names=names)

    def AddDependency(self, request, context):
        return self._change_dependency(request, context, DependencyGraph.add)

    def RemoveDependency(self, request, context):
        return self._change_dependency(request, context, DependencyGraph.remove)

    def _change_dependency(self, request, context, change):
        """Apply ``change(graph, name, depends_on)`` to a copy of the session's graph;
        persist and adopt it only if it changed (a ``CycleError`` leaves all as it was)."""

        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "write", [request.name])
                session.table.get(request.name)  # VariableNotFound
                session.table.get(request.depends_on)
                graph = DependencyGraph(session.graph.edges())
                if change(graph, request.name, request.depends_on):
                    self.store.save_meta(session.id, {"dependencies": graph.edges()})
                    session.graph = graph
                return self._names_response(session.graph.of(request.name))

        return _guard(context, run)

    def GetDependencies(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "read", [request.name])
                session.table.get(request.name)
                return self._names_response(session.graph.of(request.name))

        return _guard(context, run)

    def TopologicalOrder(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                _require(session, context, "read")
                return self._names_response(session.graph.order(session.table.variables))

        return _guard(context, run)

    # ------------------------------------------------------------------ optimizer locks

    def _check_locks(self, session: Session, context: Any, names: list[str]) -> None:
        """``LockedError`` if a write to ``names`` does not carry their lease. Lock held."""
        if not session.leases.by_id:
            return
        self._expire_leases(session)
        if session.leases.locked:
            session.leases.check_free(names, _caller(context).leases)

    def _expire_leases(self, session: Session, now: float | None = None) -> None:
        """End overdue leases and tell watchers ("unlocked", reason "expired"). Lock held."""
        if not session.leases.by_id:
            return
        for lease in session.leases.expired(time.time() if now is None else now):
            names = session.leases.drop(lease)
            self._signal(session, _lock_events(session, lease, names, "unlocked", "expired"))

    def expire_leases(self, now: float | None = None) -> None:
        for session in list(self.sessions.values()):
            if session.leases.by_id:
                with session.lock:
                    if not session.gone:
                        self._expire_leases(session, now)

    def AcquireLock(self, request, context):
        def run():
            session = self._session(request.session_id)
            names = list(dict.fromkeys(request.names))
            if not names:
                raise E.ValidationError("acquire_lock needs at least one variable name")
            holder = request.holder
            if not holder or len(holder) > 256:
                raise E.ValidationError(f"holder must be 1..256 characters, got {holder!r}")
            ttl_s = check_ttl(request.ttl_s)
            caller = _caller(context)
            with session.lock:
                _require(session, context, "optimize", names)
                for n in names:
                    session.table.get(n)  # VariableNotFound
                self._expire_leases(session)
                lease = session.leases.acquire(names, holder, ttl_s, caller.client)
                self._signal(session, _lock_events(session, lease, names, "locked", "acquired"))
                return _lease_pb(lease)

        return _guard(context, run)

    def _lease(self, session: Session, lease_id: str) -> Any:
        self._expire_leases(session)
        lease = session.leases.get(lease_id)
        if lease is None:
            raise E.LockedError(
                f"lease {lease_id!r} is not held (it expired, was released, or never existed)"
            )
        return lease

    def RenewLock(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                lease = self._lease(session, request.lease_id)
                if request.ttl_s:
                    lease.ttl_s = check_ttl(request.ttl_s)
                lease.expires_at = time.time() + lease.ttl_s
                return _lease_pb(lease)

        return _guard(context, run)

    def ReleaseLock(self, request, context):
        def run():
            session = self._session(request.session_id)
            with session.lock:
                self._expire_leases(session)
                lease = session.leases.get(request.lease_id)
                if lease is None:
                    return pb.ReleaseLockResponse(released=False)
                names = session.leases.drop(lease)
                self._signal(session, _lock_events(session, lease, names, "unlocked", "released"))
                return pb.ReleaseLockResponse(released=True)

        return _guard(context, run)

    def ListLocks(self, request, context):
        def run():
            session = self._session(request.session_id)
            principal = _caller(context).principal
            with session.lock:
                self._expire_leases(session)
                visible = {  # only the variables the caller may read
                    n: h
                    for n, h in session.leases.holders().items()
                    if session.acl.allowed(principal, "read", n)
                }
                leases = [
                    _lease_pb(lease)
                    for lease in session.leases.by_id.values()
                    if any(n in visible for n in lease.names)
                ]
            return pb.LocksResponse(holders=visible, leases=leases)

        return _guard(context, run)

    # ------------------------------------------------------------------ access control

    def _permissions(self, session: Session, principal: str) -> pb.PermissionsResponse:
        return pb.PermissionsResponse(permissions_json=C.dumps(session.acl.permissions(principal)))

    def _change_acl(self, request, context, grant: bool):
        session = self._session(request.session_id)
        principal = check_principal(request.principal)
        rights = check_rights(list(request.rights))
        variable = request.variable or None
        with session.lock:
            session.acl.require_owner(_caller(context).principal, "change access rights")
            if variable is not None:
                session.table.get(variable)  # VariableNotFound
            acl = AccessControl(session.acl.owner, session.acl.to_json())
            if grant:
                acl.grant(principal, rights, variable)
            else:
                acl.revoke(principal, rights, variable)
                acl.enabled = True  # revoking is configuring too: never reopens the session
            self.store.save_meta(session.id, {"acl": acl.to_json()})
            session.acl = acl
            for watcher in session.watchers:  # a stream may no longer be allowed
                if not _may_observe(acl, watcher):
                    watcher.end(_DENIED)
            return self._permissions(session, principal)

    def Grant(self, request, context):
        return _guard(context, lambda: self._change_acl(request, context, True))

    def Revoke(self, request, context):
        return _guard(context, lambda: self._change_acl(request, context, False))

    def GetPermissions(self, request, context):
        def run():
            session = self._session(request.session_id)
            principal = check_principal(request.principal)
            with session.lock:
                caller = _caller(context).principal
                if caller != principal and session.acl.enabled:
                    session.acl.require_owner(caller, f"read the permissions of {principal!r}")
                return self._permissions(session, principal)

        return _guard(context, run)

    # ------------------------------------------------------------------ module execution

    def _worker_pool(self) -> Any:
        """The pool of DSPy worker processes, started on the first module run."""
        with self._pool_lock:
            if self._pool is None:
                if self._closing:
                    raise E.BridgeUnavailable("the bridge server is shutting down")
                from .workers import WorkerPool

                pool = WorkerPool(self.workers) if self.workers else WorkerPool()
                self._pool = pool.start()
            return self._pool

    def close_workers(self) -> None:
        with self._pool_lock:
            self._closing = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def ExecuteModule(self, request, context):
        def run():
            from .execution import execute_module_request

            session = self._session(request.session_id)
            spec = C.loads(request.module_spec_json, "module spec")
            inputs = C.loads_map(request.inputs_json, "inputs") or {}
            lm_config = C.loads_map(request.lm_config_json, "lm config") or {}
            if request.timeout_s < 0:
                raise E.ValidationError(f"timeout_s must be >= 0, got {request.timeout_s}")
            with session.lock:
                _require(session, context, "read", sorted(set(request.bindings.values())))

            def lookup(name: str) -> tuple[Any, int]:
                with session.lock:
                    record = session.table.get(name)
                return to_json_value(record.value), record.version

            def check(name: str, value: Any) -> Any:  # validate an override, write nothing
                with session.lock:
                    return to_json_value(session.table.prepare_set(name, value).value)

            result = execute_module_request(
                self._worker_pool(),
                spec,
                inputs,
                dict(request.bindings),
                lm_config,
                lookup,
                timeout=request.timeout_s or 300.0,
                overrides=C.loads_map(request.overrides_json, "overrides") or {},
                check_override=check,
            )
            return pb.ExecuteModuleResponse(result_json=C.dumps(result))

        return _guard(context, run)

    # ------------------------------------------------------------------ watching

    def WatchVariables(self, request, context) -> Iterator[pb.WatchMessage]:
        try:
            session = self._session(request.session_id)
            names = frozenset(request.names) or None
            caller = _caller(context)
            watcher = _Watcher(names, self.watch_queue, caller.principal)
            client = caller.client
            with session.lock:
                _require(session, context, "observe", None if names is None else sorted(names))
                first = self._watch_start(session, request, names)
                session.watchers.add(watcher)
                if client:
                    session.clients[client] = session.clients.get(client, 0) + 1
                    session.leases.connected(client, True, time.time())
        except E.DSPexError as exc:
            _abort(context, exc)
            return
        if not context.add_callback(lambda: watcher.end(_CLOSED)):
            watcher.end(_CLOSED)  # the call already ended: do not wait for events
        last = 0
        try:
            yield from first
            while True:
                items, state = watcher.take()
                for item in items:
                    last = item.event.seq
                    yield item
                if state == _OVERFLOW:
                    context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"watcher fell more than {self.watch_queue} events behind; "
                        f"resume after seq {last}",
                    )
                if state == _GONE:
                    _abort(context, SessionNotFound(f"session {session.id!r} was cleaned up"))
                if state == _DENIED:
                    _abort(
                        context,
                        E.AccessDenied(
                            f"the 'observe' right of {watcher.principal or 'this caller'!r} "
                            f"on session {session.id!r} was revoked"
                        ),
                    )
                if state != _LIVE:
                    return
        finally:
            with session.lock:
                session.watchers.discard(watcher)
                session.last_seen = time.time()
                if client:
                    left = session.clients.get(client, 1) - 1
                    if left > 0:
                        session.clients[client] = left
                    else:  # its leases end after a short grace unless it comes back
                        session.clients.pop(client, None)
                        session.leases.connected(client, False, time.time())

    def _watch_start(
        self, session: Session, request: pb.WatchRequest, names: frozenset[str] | None
    ) -> list[pb.WatchMessage]:
        if not request.resume:
            records = [
                C.record_to_pb(r)
                for r in session.table.records()
                if names is None or r.name in names
            ]
            return [pb.WatchMessage(snapshot=pb.Snapshot(records=records, seq=session.last_seq))]
        after = request.after_seq
        oldest = session.events[0][0] if session.events else session.last_seq + 1
        if after > session.last_seq or after < oldest - 1:
            raise _OutOfRange(
                f"cannot resume after seq {after}: this session retains seq {oldest}.."
                f"{session.last_seq}; re-read a snapshot"
            )
        backlog = [
            m
            for seq, m in session.events
            if seq > after and (names is None or m.event.name in names)
        ]
        return [*backlog, pb.WatchMessage(caught_up=pb.CaughtUp(seq=session.last_seq))]


class _Caller(NamedTuple):
    principal: str
    leases: frozenset[str]
    client: str


def _caller(context: grpc.ServicerContext) -> _Caller:
    """Who is calling: ``dspex-principal``, ``dspex-lease`` and ``dspex-client`` metadata."""
    principal, client = "", ""
    leases: frozenset[str] = frozenset()
    for key, value in context.invocation_metadata() or ():
        if key == "dspex-principal":
            principal = value
        elif key == "dspex-lease":
            leases = frozenset(x for x in value.split(",") if x)
        elif key == "dspex-client":
            client = value
    return _Caller(principal, leases, client)


def _require(
    session: Session, context: grpc.ServicerContext, right: str, names: list[str] | None = None
) -> None:
    """``AccessDenied`` unless the caller has ``right`` (on every name, or session-wide)."""
    acl = session.acl
    if not acl.enabled:
        return
    principal = _caller(context).principal
    if names is None:
        acl.require(principal, right, None, session.id)
    else:
        for name in names:
            acl.require(principal, right, name, session.id)


def _lock_events(
    session: Session, lease: Any, names: list[str], kind: str, reason: str
) -> list[WatchEvent]:
    now = time.time()
    out = []
    for name in names:
        record = session.table.variables.get(name)
        if record is not None:
            out.append(
                WatchEvent.signal(
                    record,
                    kind,
                    lease.holder,
                    now,
                    {"holder": lease.holder, "lease_id": lease.lease_id, "reason": reason},
                )
            )
    return out


def _may_observe(acl: AccessControl, watcher: _Watcher) -> bool:
    if watcher.names is None:
        return acl.allowed(watcher.principal, "observe")
    return all(acl.allowed(watcher.principal, "observe", n) for n in watcher.names)


def _lease_pb(lease: Any) -> pb.Lease:
    return pb.Lease(
        lease_id=lease.lease_id,
        holder=lease.holder,
        names=lease.names,
        expires_at=lease.deadline(),
        ttl_s=lease.ttl_s,
    )


def _snapshot_names(snapshot: Any) -> set[str]:
    variables = snapshot.get("variables") if isinstance(snapshot, dict) else None
    if not isinstance(variables, list):
        return set()
    return {v["name"] for v in variables if isinstance(v, dict) and isinstance(v.get("name"), str)}


class _OutOfRange(E.ValidationError):
    """A watch resume position no longer retained (OUT_OF_RANGE on the wire)."""


def _abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    code = grpc.StatusCode.OUT_OF_RANGE if isinstance(exc, _OutOfRange) else status_for(exc)
    context.set_trailing_metadata(error_metadata(exc))
    context.abort(code, str(exc))


def _guard(context: grpc.ServicerContext, run: Callable[[], Any]) -> Any:
    try:
        return run()
    except E.DSPexError as exc:
        _abort(context, exc)
    except RecursionError as exc:
        _abort(context, E.ValidationError(f"value is nested too deeply: {exc}"))


class _TokenAuth(grpc.ServerInterceptor):
    """Every RPC but the health check needs ``authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

        def deny(request: Any, context: grpc.ServicerContext) -> None:
            context.set_trailing_metadata(
                error_metadata(E.AccessDenied("missing or wrong bridge token"))
            )
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bridge token")

        def deny_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            deny(request, context)
            yield  # pragma: no cover

        self._deny = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.unary_stream_rpc_method_handler(deny_stream)

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if method.startswith("/grpc.health.v1.Health/"):
            return continuation(handler_call_details)
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else value
                if hmac.compare_digest(given, self._expected):
                    return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return self._deny_stream if handler.response_streaming else self._deny


class BridgeServer:
    """A running bridge server: gRPC, health service, session reaper."""

    def __init__(
        self,
        address: str,
        token: str,
        store: Store,
        *,
        max_workers: int = 512,
        default_ttl_s: float = DEFAULT_TTL_S,
        event_limit: int = EVENT_LIMIT,
        watch_queue: int = WATCH_QUEUE,
        workers: int | None = None,
    ) -> None:
        if not token:
            raise E.ValidationError("the bridge server needs a non-empty token")
        if event_limit < 1 or watch_queue < 1:
            raise E.ValidationError("event_limit and watch_queue must be >= 1")
        self.store = store
        self.servicer = BridgeServicer(
            store,
            default_ttl_s=default_ttl_s,
            event_limit=event_limit,
            watch_queue=watch_queue,
            workers=workers,
        )
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="dspex-rpc"),
            interceptors=[_TokenAuth(token)],
            options=SERVER_OPTIONS,
        )
        pb_grpc.add_DSPexBridgeServicer_to_server(self.servicer, self._server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        port = self._server.add_insecure_port(address)
        if not port and not address.startswith("unix"):
            raise E.BridgeUnavailable(f"cannot listen on {address!r}")
        if address.startswith("unix"):
            self.address = address
        else:
            self.address = f"{address.rsplit(':', 1)[0]}:{port}"
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="dspex-reaper", daemon=True)

    def start(self) -> BridgeServer:
        self._server.start()
        for service in ("", "dspex.bridge.v1.DSPexBridge"):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._reaper.start()
        return self

    def _reap_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.servicer.reap()
                self.servicer.expire_leases()
            except Exception:
                log.exception("session reaper failed")

    def prewarm_workers(self) -> None:
        """Start the DSPy worker pool now; the workers import DSPy in the background,
        so the first module run does not wait for it (``serve --prewarm``)."""
        self.servicer._worker_pool()

    def stop(self, grace: float = 1.0) -> None:
        self._stop.set()
        self.health.enter_graceful_shutdown()
        for session in list(self.servicer.sessions.values()):
            with session.lock:
                for watcher in session.watchers:
                    watcher.end(_CLOSED)
        self._server.stop(grace).wait()
        self.servicer.close_workers()
        self.store.close()

    def wait(self, timeout: float | None = None) -> bool:
        return self._server.wait_for_termination(timeout)
