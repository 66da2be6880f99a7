"""What every RPC of the servicer shares: the sessions, the write path, lease expiry.

Variable semantics come from the shared :class:`VariableTable` (validation,
versions, compare-and-set, atomic batches, export/import), so the bridge and
``LocalState`` behave the same by construction. Inside a session's lock a write
is applied, committed to the store, numbered with the session's next sequence
number and offered to every watcher. Reads take the same lock, so nobody ever
sees a write that is not yet durable.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from ... import errors as E
from ...errors import SessionNotFound
from ...variables.record import Variable, WatchEvent
from ...variables.table import SNAPSHOT_FORMAT, variable_from_dict
from .. import convert as C
from .._proto import dspex_bridge_pb2 as pb
from ..production import SIGNAL_KINDS, AccessControl, DependencyGraph, Lease
from ..store import SessionData, Store
from .policy import ExecutionPolicy
from .retained import History, watch_message
from .session import (
    EVENT_LIMIT,
    GONE,
    HISTORY_LIMIT,
    MAX_STREAMS_PER_PRINCIPAL,
    WATCH_QUEUE,
    Session,
    StreamSlots,
    event_dict,
    event_message,
)
from .users import Authenticator

#: One committed change: seq, event, record (none for a deletion), its message, its size.
Result = tuple[int, WatchEvent, Variable | None, pb.VariableRecord | None, int]

__all__ = ["ServicerCore", "DEFAULT_TTL_S", "lock_events"]

DEFAULT_TTL_S = 3600.0
MAX_SESSION_TTL_S = 7 * 24 * 3600.0
MAX_VALUE_BYTES = 1024 * 1024
#: What one session may keep: its current values and their kept history (protobuf bytes).
MAX_SESSION_BYTES = 64 * 1024 * 1024


class ServicerCore:
    """The sessions of one server and the one way to change them (:meth:`_write`)."""

    def __init__(
        self,
        store: Store,
        *,
        default_ttl_s: float = DEFAULT_TTL_S,
        event_limit: int = EVENT_LIMIT,
        watch_queue: int = WATCH_QUEUE,
        workers: int | None = None,
        policy: ExecutionPolicy | None = None,
        auth: Authenticator | None = None,
        max_sessions_per_principal: int = 32,
        max_lease_ttl_s: float = 300.0,
        max_session_ttl_s: float = MAX_SESSION_TTL_S,
        max_value_bytes: int = MAX_VALUE_BYTES,
        history_keep: int = HISTORY_LIMIT,
        max_session_bytes: int = MAX_SESSION_BYTES,
        max_streams_per_principal: int = MAX_STREAMS_PER_PRINCIPAL,
    ) -> None:
        self.store = store
        self.stream_slots = StreamSlots(max_streams_per_principal)
        self.policy = policy or ExecutionPolicy()
        #: ``None``: an in-process servicer with no token check (tests of the servicer).
        self.auth = auth
        self.max_sessions_per_principal = max_sessions_per_principal
        self.max_lease_ttl_s = max_lease_ttl_s
        self.max_session_ttl_s = max_session_ttl_s
        self.max_value_bytes = max_value_bytes
        self.history_keep = history_keep
        self.max_session_bytes = max_session_bytes
        self.default_ttl_s = default_ttl_s
        self.event_limit = event_limit
        self.watch_queue = watch_queue
        self.workers = workers
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._closing = False
        self.sessions: dict[str, Session] = {}
        self._sessions_lock = threading.Lock()
        for data in store.load(history_keep, event_limit):
            self._restore(data)

    # ------------------------------------------------------------------ sessions

    def _restore(self, data: SessionData) -> None:
        session = Session(data.session_id, data.ttl_s, data.created_at, self.event_limit)
        session.last_seq = data.last_seq
        if data.variables:
            session.table.import_({"format": SNAPSHOT_FORMAT, "variables": data.variables})
        current = session.table.variables
        for name, rows in data.history.items():
            history = session.history[name] = History(self.history_keep)
            for row in rows:
                record = variable_from_dict(row)[0]
                now = current.get(name)
                if now is not None and now.version == record.version:
                    record = now  # one object for the current value and its history entry
                session.bytes -= history.append(record, C.record_to_pb(record).ByteSize())
        for seq, event in data.events:
            message = event_message(event)
            session.events.append(seq, message, message.ByteSize(), self.max_session_bytes)
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
                watcher.end(GONE)

    # ------------------------------------------------------------------ writes

    def _check_bytes(self, text: str, what: str) -> None:
        """``ValidationError`` if ``text`` (a value's JSON) is over ``--max-value-bytes``."""
        if len(text) * 4 > self.max_value_bytes and len(text.encode()) > self.max_value_bytes:
            raise E.ValidationError(
                f"{what} is {len(text.encode())} bytes of JSON; this server keeps values of at "
                f"most {self.max_value_bytes} bytes (--max-value-bytes)"
            )

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
            results: list[Result] = []
            seq = session.last_seq
            durable = self.store.durable
            upserts, deletes, rows = [], [], []
            for index, event in enumerate(events):
                seq += 1
                record = None if event.kind == "deleted" else table.variables[event.name]
                record_pb = None if record is None else C.record_to_pb(record)
                if record is None:
                    deletes.append(event.name)
                elif event.kind not in SIGNAL_KINDS:
                    upserts.append(record)
                size = 0 if record_pb is None else record_pb.ByteSize()
                results.append((seq, event, record, record_pb, size))
                if durable:
                    rows.append((seq, event_dict(seq, event, record, index != len(events) - 1)))
            if acl_changed:
                acl = AccessControl(session.acl.owner, session.acl.to_json())
                acl.forget_variables(deleted)
                meta["acl"] = acl.to_json()
            self._check_budget(session, results)
            if events:
                self.store.commit(session.id, seq, upserts, deletes, rows, meta or None)
        except BaseException:
            if names is None:  # the mutation may have added any name: start from empty
                table.variables.clear()
                validators.clear()
            for name, (saved_record, validator) in saved.items():
                if saved_record is None:
                    table.variables.pop(name, None)
                else:
                    table.variables[name] = saved_record
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
        return self._publish(session, results)

    def _check_budget(
        self,
        session: Session,
        results: list[Result],
    ) -> None:
        """``ValidationError`` if these changes would take the session's kept bytes over
        ``--max-session-bytes``; a write that keeps the session's size or shrinks it
        always passes (that is how a full session frees room). Lock held."""
        if not self.max_session_bytes:
            return
        delta, replaced = 0, set()
        for _, event, _record, record_pb, size in results:
            if event.kind in SIGNAL_KINDS:
                continue
            history = session.history.get(event.name)
            if record_pb is None or event.kind == "registered":  # drops the old history
                if history is not None and event.name not in replaced:
                    delta -= history.bytes
                replaced.add(event.name)
                history = None
            if record_pb is not None:
                delta += size
                if history is not None:
                    delta -= history.freed_by_next()
        if delta > 0 and session.bytes + delta > self.max_session_bytes:
            raise E.ValidationError(
                f"this write would make session {session.id!r} keep "
                f"{session.bytes + delta} bytes of values and history, over the "
                f"{self.max_session_bytes} this server allows (--max-session-bytes); "
                "delete variables (or write smaller values) to free room"
            )

    def _publish(
        self,
        session: Session,
        results: list[Result],
    ) -> list[tuple[int, WatchEvent, pb.VariableRecord | None]]:
        """Number, remember and fan out the committed events of one write. Lock held.

        The backlog keeps how to rebuild each message, not the message (see
        ``retained.py``): the value stays in memory once, as the record's object.
        """
        last = len(results) - 1
        out = []
        for index, (seq, event, record, record_pb, size) in enumerate(results):
            session.last_seq = seq
            signal = event.kind in SIGNAL_KINDS
            if record is None:
                dropped = session.history.pop(event.name, None)
                if dropped is not None:
                    session.bytes -= dropped.bytes
            elif not signal:
                hist = session.history.get(event.name)
                if hist is None or event.kind == "registered":
                    if hist is not None:
                        session.bytes -= hist.bytes
                    hist = session.history[event.name] = History(self.history_keep)
                session.bytes -= hist.append(record, size)
            more = index != last
            message = watch_message(seq, event, record, record_pb, more)
            session.events.append(
                seq,
                functools.partial(watch_message, seq, event, record, None, more),
                0 if signal else size,
                self.max_session_bytes,
            )
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

    # ------------------------------------------------------------------ leases

    def _check_locks(self, session: Session, carried: frozenset[str], names: list[str]) -> None:
        """``LockedError`` if a write to ``names`` does not carry their lease. Lock held."""
        if not session.leases.by_id:
            return
        self._expire_leases(session)
        if session.leases.locked:
            session.leases.check_free(names, carried)

    def _expire_leases(self, session: Session, now: float | None = None) -> None:
        """End overdue leases and tell watchers ("unlocked", reason "expired"). Lock held."""
        if not session.leases.by_id:
            return
        for lease in session.leases.expired(time.time() if now is None else now):
            names = session.leases.drop(lease)
            self._signal(session, lock_events(session, lease, names, "unlocked", "expired"))

    def expire_leases(self, now: float | None = None) -> None:
        for session in list(self.sessions.values()):
            if session.leases.by_id:
                with session.lock:
                    if not session.gone:
                        self._expire_leases(session, now)


def lock_events(
    session: Session, lease: Lease, names: list[str], kind: str, reason: str
) -> list[WatchEvent]:
    """The ``locked``/``unlocked`` signal of each still-existing variable of ``lease``."""
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
                    {"holder": lease.holder, "reason": reason},  # never the id: a capability
                )
            )
    return out
