"""``BridgedState``: the StateProvider core over gRPC, with a coherent local cache.

One ``WatchVariables`` stream per ``BridgedState`` keeps a cache of the
session's variables. While that stream is live and caught up, reads are served
from the cache (a dict lookup, as fast as ``LocalState``); otherwise they go to
the server. Writes go to the server and put the record it returns into the
cache (read-your-writes).

Cache entries are ordered by the session-wide sequence number of the write
that produced them, not by arrival: a stream event older than what a write
already put in the cache never overwrites it, and a deletion leaves a
tombstone so that a late event cannot resurrect a variable.

Watchers are the shared :class:`Subscription` objects, fed from the stream in
sequence order. A write returns only once the stream has delivered its own
event to the subscriptions (when there are any), so "set, then flush the
watcher" behaves exactly as on ``LocalState``. After a server restart the
stream resumes from the last sequence number it applied, with no gap and no
duplicate; if that position is no longer retained it re-reads a snapshot and
tells watchers about every variable that changed meanwhile.

The production features (SPEC §6) are server-enforced; this class only
carries them:

* dependencies: ``add_dependency`` / ``remove_dependency`` / ``dependencies`` /
  ``topological_order``; dependents learn about a write from a
  ``dependency_changed`` watch event (``watch(..., signals=True)``).
* optimizer locks: ``acquire_lock`` returns a :class:`Lease`. While this
  ``BridgedState`` holds a lease, every write it sends carries the lease id
  (``dspex-lease`` call metadata), so writes made through it (through its
  context) pass; writes from anyone else are refused with ``LockedError``.
  ``with ctx.acquire_lock(...) as lease:`` releases it on exit.
* access control: the client's principal (``Context.start(principal=...)``)
  travels as ``dspex-principal`` metadata; ``grant`` / ``revoke`` /
  ``permissions`` manage rights.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import grpc

from ..errors import ValidationError, VariableNotFound
from ..state.provider import StateProvider
from ..state.watch import Subscription, WatchFilter, WatchHub, check_watch_names
from ..variables.record import SIGNAL_KINDS, Variable, WatchEvent
from ..variables.types import check_name, normalize_type
from . import convert
from ._proto import dspex_bridge_pb2 as pb

if TYPE_CHECKING:
    from .client import BridgeClient

__all__ = ["BridgedState", "Lease"]

log = logging.getLogger("dspex_jupyter.bridged")

#: How long a write waits for its own event to reach the watchers before returning.
WRITE_DELIVERY_TIMEOUT_S = 10.0
#: How long the constructor waits for the first snapshot (reads use the server until then).
SYNC_TIMEOUT_S = 15.0


class Lease:
    """An optimizer's lease on some variables (``Context.acquire_lock``).

    ``lease_id``, ``holder``, ``names``, ``expires_at`` (server clock, seconds
    since the epoch) and ``ttl_s``. Writes through the ``BridgedState`` (the
    context) that acquired it pass while it is held. Use it as a context
    manager to release it on exit; :meth:`renew` pushes its expiry ``ttl_s``
    further.
    """

    def __init__(self, state: BridgedState, msg: Any) -> None:
        self._state = state
        self.lease_id: str = msg.lease_id
        self.holder: str = msg.holder
        self.names: list[str] = list(msg.names)
        self.ttl_s: float = msg.ttl_s
        self.expires_at: float = msg.expires_at
        self.released = False

    def renew(self, ttl_s: float | None = None) -> Lease:
        return self._state.renew_lock(self, ttl_s)

    def release(self) -> None:
        self._state.release_lock(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.released:
            self.release()

    def __repr__(self) -> str:
        state = "released" if self.released else f"expires_at={self.expires_at:.0f}"
        return f"<Lease {self.lease_id[:8]} by {self.holder!r} on {self.names} {state}>"


class BridgedState(StateProvider):
    """Variables of one bridge session, cached locally and kept coherent by a watch stream."""

    name = "bridged"
    requires_bridge = True

    def __init__(
        self,
        client: BridgeClient,
        session_id: str,
        *,
        join: bool = False,
        ttl_s: float | None = None,
        on_close: Callable[[], Any] | None = None,
        cleanup_on_close: bool = False,
        owns_client: bool = True,
    ) -> None:
        self._pb = pb
        self._c = convert
        self.client = client
        self.address: str = client.address
        self.session_id = session_id
        self._md = client.metadata
        self._stub = client.stub
        self._on_close = on_close
        self._cleanup_on_close = cleanup_on_close
        self._owns_client = owns_client
        if ttl_s is not None and (not isinstance(ttl_s, (int, float)) or ttl_s < 0):
            raise ValidationError(f"session_ttl_s must be a number >= 0, got {ttl_s!r}")
        self.session = client.call(
            "InitializeSession",
            pb.InitializeSessionRequest(
                session_id=session_id, ttl_s=float(ttl_s or 0), must_exist=join
            ),
        )
        self._cond = threading.Condition(threading.Lock())
        self._publish_lock = self._cond
        self._cache: dict[str, Variable] = {}
        self._cache_seq: dict[str, int] = {}
        self._seq = 0  # last sequence number applied from the stream
        self._synced = False  # a snapshot was applied at least once
        self._live = False  # the stream is up and caught up: the cache answers reads
        self._hub = WatchHub()
        self._batch: list[Any] = []  # events of an atomic write still arriving
        self._closed = False
        self._call: Any = None
        self._denied = False  # the stream was refused (no "observe" right): reads ask the server
        self._leases: dict[str, Lease] = {}
        self._lease_md: tuple[tuple[str, str], ...] = ()
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._stream_loop, name=f"dspex-bridged-{session_id[:8]}", daemon=True
        )
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._live or self._closed or self._denied, SYNC_TIMEOUT_S)

    # ------------------------------------------------------------------ plumbing

    @property
    def live(self) -> bool:
        """Whether reads are currently served from the coherent cache."""
        return self._live

    def _rpc(self, method: str, request: Any) -> Any:
        return self.client.call(method, request, extra_metadata=self._lease_md)

    def _record(self, msg: Any) -> Variable:
        return self._c.record_from_pb(msg)

    def _after_write(self, writes: list[tuple[int, str, Variable | None]]) -> None:
        """Put returned records in the cache; wait until watchers were offered their events."""
        if not writes:
            return
        with self._cond:
            for seq, name, record in writes:
                if seq > self._cache_seq.get(name, 0):
                    self._cache_seq[name] = seq
                    if record is None:
                        self._cache.pop(name, None)
                    else:
                        self._cache[name] = record
            if self._hub and self._live:
                last = max(seq for seq, _, _ in writes)
                self._cond.wait_for(
                    lambda: self._seq >= last or not self._live, WRITE_DELIVERY_TIMEOUT_S
                )

    # ------------------------------------------------------------------ the stream

    def _stream_loop(self) -> None:
        pb = self._pb
        backoff = 0.05
        resync = False
        last_logged = None
        while not self._closed:
            resume = self._synced and not resync
            request = pb.WatchRequest(
                session_id=self.session_id, resume=resume, after_seq=self._seq if resume else 0
            )
            try:
                self._batch = []
                call = self._stub.WatchVariables(request, metadata=self._md)
                self._call = call
                if self._closed:
                    call.cancel()
                    break
                for message in call:
                    kind = message.WhichOneof("body")
                    if kind == "event":
                        self._on_event(message.event)
                    elif kind == "snapshot":
                        self._on_snapshot(message.snapshot, resync)
                        resync = False
                    elif kind == "caught_up":
                        with self._cond:
                            self._live = True
                            self._denied = False
                            self._cond.notify_all()
                    backoff, last_logged = 0.05, None
            except grpc.RpcError as err:
                if self._closed:
                    break
                code = err.code()
                if code == grpc.StatusCode.PERMISSION_DENIED:
                    with self._cond:  # no "observe" right (yet): serve reads from the server
                        self._denied = True
                        self._cond.notify_all()
                    backoff = 5.0  # a grant may come later
                elif code == grpc.StatusCode.OUT_OF_RANGE:
                    resync = True  # our position is gone: re-read a snapshot
                elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    backoff = 0.0  # we fell behind: resume at once from our last seq
                elif code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                    if code != last_logged:  # once per kind of failure, not once per retry
                        log.warning(
                            "watch stream of session %s ended: %s %s (retrying)",
                            self.session_id,
                            code,
                            err.details(),
                        )
                    last_logged = code
            except Exception:  # never let the cache thread die silently
                log.exception("watch stream of session %s failed", self.session_id)
            with self._cond:
                self._live = False
                self._cond.notify_all()
            if self._closed or self._wake.wait(backoff):
                break
            backoff = min(max(backoff * 2, 0.05), 5.0 if self._denied else 1.0)

    def _on_event(self, msg: Any) -> None:
        if msg.more:  # part of an atomic batch: apply it whole, with its last event
            self._batch.append(msg)
            return
        batch, self._batch = [*self._batch, msg], []
        with self._cond:
            for event in batch:
                seq = event.seq
                if seq <= self._seq:
                    continue  # already applied (a replay overlapping what we had)
                self._seq = seq
                name = event.name
                cached = self._cache.get(name)
                if event.kind in SIGNAL_KINDS:  # no value change: only watchers care
                    if self._hub:
                        self._hub.publish(self._c.event_from_pb(event, None))
                    continue
                if seq > self._cache_seq.get(name, 0):
                    self._cache_seq[name] = seq
                    if event.kind == "deleted":
                        self._cache.pop(name, None)
                    else:
                        self._cache[name] = self._record(event.record)
                if self._hub:
                    type_name = cached.type if cached is not None else None
                    self._hub.publish(self._c.event_from_pb(event, type_name))
            self._cond.notify_all()

    def _on_snapshot(self, snap: Any, resync: bool) -> None:
        with self._cond:
            fresh = {r.name: self._record(r) for r in snap.records}
            old = self._cache
            merged: dict[str, Variable] = {}
            seqs: dict[str, int] = {}
            for name, record in fresh.items():
                merged[name] = record
                seqs[name] = snap.seq
            for name, seq in self._cache_seq.items():
                if seq > snap.seq:  # our own write, newer than the snapshot
                    seqs[name] = seq
                    if name in old:
                        merged[name] = old[name]
                    else:
                        merged.pop(name, None)
            if resync and self._hub:
                self._publish_diff(old, merged)
            self._cache, self._cache_seq = merged, seqs
            self._seq = max(self._seq, snap.seq) if not resync else snap.seq
            self._synced = True
            self._live = True
            self._denied = False
            self._cond.notify_all()

    def _publish_diff(self, old: Mapping[str, Variable], new: Mapping[str, Variable]) -> None:
        """After a gap we could not replay, tell watchers what changed meanwhile."""
        for name, record in new.items():
            before = old.get(name)
            if before is None or before.version != record.version:
                self._hub.publish(
                    WatchEvent.change(record, "registered")
                    if before is None
                    else WatchEvent.change(record, "set", before.value)
                )
        for name, before in old.items():
            if name not in new:
                self._hub.publish(WatchEvent.deleted(before, "sync", time.time()))

    # ------------------------------------------------------------------ core

    def register(
        self,
        name: str,
        type: str | type,
        initial: Any,
        *,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        source: str = "api",
    ) -> Variable:
        check_name(name)
        c = self._c
        request = self._pb.RegisterVariableRequest(
            session_id=self.session_id,
            name=name,
            type=normalize_type(type),
            initial_json=c.dumps(initial),
            constraints_json=_map_json(c, constraints, "constraints"),
            metadata_json=_map_json(c, metadata, "metadata"),
            source=str(source),
        )
        reply = self._rpc("RegisterVariable", request)
        record = self._record(reply.record)
        self._after_write([(reply.seq, name, record)])
        return record

    def get(self, name: str) -> Variable:
        if self._live:
            try:
                return self._cache[name]
            except KeyError:
                pass  # maybe just created elsewhere and not streamed yet: ask the server
            except TypeError:
                raise VariableNotFound(str(name), self._cache) from None
        if not isinstance(name, str):
            raise VariableNotFound(str(name))
        return self._fetch(name)

    def _fetch(self, name: str) -> Variable:
        """The server's record of ``name`` (VariableNotFound if it has none)."""
        return self._record(
            self._rpc(
                "GetVariable", self._pb.GetVariableRequest(session_id=self.session_id, name=name)
            )
        )

    def set(
        self,
        name: str,
        value: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        source: str = "api",
    ) -> Variable:
        if not isinstance(name, str):
            raise VariableNotFound(str(name), self._cache)
        request = self._pb.SetVariableRequest(
            session_id=self.session_id,
            name=name,
            value_json=self._c.dumps(value),
            metadata_json=_map_json(self._c, metadata, "metadata"),
            source=str(source),
        )
        if expected_version is not None:
            request.expected_version = _version(expected_version)
        reply = self._rpc("SetVariable", request)
        record = self._record(reply.record)
        self._after_write([(reply.seq, name, record)])
        return record

    def delete(self, name: str, *, source: str = "api") -> None:
        if not isinstance(name, str):
            raise VariableNotFound(str(name), self._cache)
        reply = self._rpc(
            "DeleteVariable",
            self._pb.DeleteVariableRequest(
                session_id=self.session_id, name=name, source=str(source)
            ),
        )
        self._after_write([(reply.seq, name, None)])

    def list(self) -> list[Variable]:
        if self._live:
            with self._cond:
                records = list(self._cache.values())
            return sorted(records, key=lambda v: v.name)
        reply = self._rpc("ListVariables", self._pb.SessionRequest(session_id=self.session_id))
        return [self._record(r) for r in reply.records]

    def get_many(self, names: Iterable[str]) -> dict[str, Variable]:
        if isinstance(names, str):
            raise ValidationError("get_many expects a list of names, not a single string")
        names = list(names)
        if self._live:
            with self._cond:  # a consistent view: batches land in the cache whole
                snapshot = dict(self._cache)
            try:
                return {name: snapshot[name] for name in names}
            except (KeyError, TypeError):
                pass  # a miss may be too new to be streamed: the server answers atomically
        if not all(isinstance(n, str) for n in names):
            bad = next(n for n in names if not isinstance(n, str))
            raise VariableNotFound(str(bad))
        reply = self._rpc(
            "GetVariables", self._pb.GetVariablesRequest(session_id=self.session_id, names=names)
        )
        return {r.name: self._record(r) for r in reply.records}

    def update_many(
        self,
        updates: Mapping[str, Any],
        *,
        metadata: Mapping[str, Any] | None = None,
        expected_versions: Mapping[str, int] | None = None,
        source: str = "api",
    ) -> dict[str, Variable]:
        if not isinstance(updates, Mapping):
            raise ValidationError(f"update_many expects a mapping name -> value, got {updates!r}")
        if not all(isinstance(n, str) for n in updates):
            bad = next(n for n in updates if not isinstance(n, str))
            raise VariableNotFound(str(bad), self._cache)
        if expected_versions is not None and not isinstance(expected_versions, Mapping):
            raise ValidationError(f"expected_versions must be a mapping, got {expected_versions!r}")
        c = self._c
        request = self._pb.UpdateVariablesRequest(
            session_id=self.session_id,
            values_json={n: c.dumps(v) for n, v in updates.items()},
            metadata_json=_map_json(c, metadata, "metadata"),
            expected_versions={n: _version(v) for n, v in (expected_versions or {}).items()},
            source=str(source),
            order=list(updates),
        )
        reply = self._rpc("UpdateVariables", request)
        records = [self._record(r) for r in reply.records]
        self._after_write([(s, r.name, r) for s, r in zip(reply.seqs, records, strict=True)])
        return {r.name: r for r in records}

    def export_state(self) -> dict[str, Any]:
        reply = self._rpc("ExportState", self._pb.SessionRequest(session_id=self.session_id))
        return self._c.loads(reply.snapshot_json, "snapshot")

    def import_state(
        self, snapshot: Mapping[str, Any], *, replace: bool = False, source: str | None = None
    ) -> None:
        if not isinstance(snapshot, Mapping):
            raise ValidationError("not a dspex-state/1 snapshot")
        request = self._pb.ImportStateRequest(
            session_id=self.session_id,
            snapshot_json=self._c.dumps(dict(snapshot)),
            replace=bool(replace),
        )
        if source is not None:
            request.source = str(source)
        reply = self._rpc("ImportState", request)
        records = [self._record(r) for r in reply.records]
        self._after_write([(s, r.name, r) for s, r in zip(reply.seqs, records, strict=True)])

    # ------------------------------------------------------------------ history

    def history(self, name: str, limit: int | None = None) -> builtins.list[Variable]:
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or limit < 1
        ):
            raise ValidationError(f"limit must be a positive int or None, got {limit!r}")
        if not isinstance(name, str):
            raise VariableNotFound(str(name), self._cache)
        reply = self._rpc(
            "GetHistory",
            self._pb.HistoryRequest(session_id=self.session_id, name=name, limit=limit or 0),
        )
        return [self._record(r) for r in reply.records]

    def rollback(self, name: str, version: int) -> Variable:
        if not isinstance(name, str):
            raise VariableNotFound(str(name), self._cache)
        reply = self._rpc(
            "RollbackVariable",
            self._pb.RollbackRequest(
                session_id=self.session_id, name=name, version=_version(version)
            ),
        )
        record = self._record(reply.record)
        self._after_write([(reply.seq, name, record)])
        return record

    # ------------------------------------------------------------------ dependencies

    def _names(self, method: str, request: Any) -> builtins.list[str]:
        return list(self._rpc(method, request).names)

    def _dependency_request(self, name: Any, depends_on: Any = "") -> Any:
        for value in (name, depends_on):
            if not isinstance(value, str):
                raise VariableNotFound(str(value), self._cache)
        return self._pb.DependencyRequest(
            session_id=self.session_id, name=name, depends_on=depends_on
        )

    def add_dependency(self, name: str, depends_on: str) -> None:
        """``name`` depends on ``depends_on``; ``CycleError`` (naming the cycle) if that closes one."""
        self._names("AddDependency", self._dependency_request(name, depends_on))

    def remove_dependency(self, name: str, depends_on: str) -> None:
        self._names("RemoveDependency", self._dependency_request(name, depends_on))

    def dependencies(self, name: str) -> builtins.list[str]:
        """What ``name`` directly depends on, sorted."""
        return self._names("GetDependencies", self._dependency_request(name))

    def topological_order(self) -> builtins.list[str]:
        """Every variable, each after everything it depends on (ties by name)."""
        return self._names("TopologicalOrder", self._pb.SessionRequest(session_id=self.session_id))

    # ------------------------------------------------------------------ optimizer locks

    def _set_leases(self) -> None:
        ids = ",".join(self._leases)
        self._lease_md = (("dspex-lease", ids),) if ids else ()

    def acquire_lock(self, names: Iterable[str], holder: str, ttl_s: float = 30.0) -> Lease:
        """Lease ``names`` for ``holder``, all or none (``LockedError`` naming the other holder).

        Until it is released or expires (after ``ttl_s`` unless renewed, or a few
        seconds after this client's connection is gone), only writes sent through
        this ``BridgedState`` may change those variables.
        """
        if isinstance(names, str):
            names = [names]
        try:
            names = list(names)
        except TypeError:
            raise ValidationError(f"acquire_lock expects variable names, got {names!r}") from None
        if not all(isinstance(n, str) for n in names):
            bad = next(n for n in names if not isinstance(n, str))
            raise VariableNotFound(str(bad), self._cache)
        if not isinstance(holder, str):
            raise ValidationError(f"holder must be a string, got {holder!r}")
        if not isinstance(ttl_s, (int, float)) or isinstance(ttl_s, bool):
            raise ValidationError(f"ttl_s must be a number, got {ttl_s!r}")
        reply = self._rpc(
            "AcquireLock",
            self._pb.AcquireLockRequest(
                session_id=self.session_id, names=names, holder=holder, ttl_s=float(ttl_s)
            ),
        )
        lease = Lease(self, reply)
        with self._cond:
            self._leases[lease.lease_id] = lease
            self._set_leases()
        return lease

    def _lease_id(self, lease: Any) -> str:
        lease_id = lease if isinstance(lease, str) else getattr(lease, "lease_id", None)
        if not isinstance(lease_id, str) or not lease_id:
            raise ValidationError(f"expected a lease from acquire_lock, got {lease!r}")
        return lease_id

    def renew_lock(self, lease: Lease | str, ttl_s: float | None = None) -> Lease:
        """Push the lease's expiry ``ttl_s`` (default: its own) from now."""
        lease_id = self._lease_id(lease)
        if ttl_s is not None and (not isinstance(ttl_s, (int, float)) or isinstance(ttl_s, bool)):
            raise ValidationError(f"ttl_s must be a number, got {ttl_s!r}")
        reply = self._rpc(
            "RenewLock",
            self._pb.LeaseRequest(
                session_id=self.session_id, lease_id=lease_id, ttl_s=float(ttl_s or 0)
            ),
        )
        held = self._leases.get(lease_id)
        if held is None:
            held = Lease(self, reply)
        held.expires_at, held.ttl_s = reply.expires_at, reply.ttl_s
        return held

    def release_lock(self, lease: Lease | str) -> None:
        """Release a lease (no error if it already expired)."""
        lease_id = self._lease_id(lease)
        self._rpc(
            "ReleaseLock", self._pb.LeaseRequest(session_id=self.session_id, lease_id=lease_id)
        )
        with self._cond:
            held = self._leases.pop(lease_id, None)
            self._set_leases()
        for obj in (held, lease):
            if isinstance(obj, Lease):
                obj.released = True

    def locks(self) -> dict[str, str]:
        """Leased variables (that this principal may read) -> holder."""
        reply = self._rpc("ListLocks", self._pb.SessionRequest(session_id=self.session_id))
        return dict(sorted(reply.holders.items()))

    # ------------------------------------------------------------------ access control

    def _acl(self, method: str, principal: Any, rights: Any, variable: Any) -> None:
        if isinstance(rights, str):
            rights = [rights]
        if not isinstance(rights, Iterable) or not all(isinstance(r, str) for r in rights):
            raise ValidationError(f"rights must be a list of right names, got {rights!r}")
        if not isinstance(principal, str):
            raise ValidationError(f"principal must be a string, got {principal!r}")
        if variable is not None and not isinstance(variable, str):
            raise VariableNotFound(str(variable), self._cache)
        self._rpc(
            method,
            self._pb.GrantRequest(
                session_id=self.session_id,
                principal=principal,
                rights=list(rights),
                variable=variable or "",
            ),
        )

    def grant(self, principal: str, rights: Iterable[str], variable: str | None = None) -> None:
        """Give ``principal`` rights (read/write/observe/optimize) on the session or one
        variable. Only the session owner may; the first grant turns access control on."""
        self._acl("Grant", principal, rights, variable)

    def revoke(self, principal: str, rights: Iterable[str], variable: str | None = None) -> None:
        self._acl("Revoke", principal, rights, variable)

    def permissions(self, principal: str) -> dict[str, builtins.list[str]]:
        """``{"*": session-wide rights, variable: rights, ...}`` of ``principal``."""
        if not isinstance(principal, str):
            raise ValidationError(f"principal must be a string, got {principal!r}")
        reply = self._rpc(
            "GetPermissions",
            self._pb.PermissionsRequest(session_id=self.session_id, principal=principal),
        )
        return self._c.loads(reply.permissions_json, "permissions")

    # ------------------------------------------------------------------ module execution

    def execute_module(
        self,
        module_spec: Mapping[str, Any],
        inputs: Mapping[str, Any],
        bindings: Mapping[str, str],
        lm_config: Mapping[str, Any],
        *,
        timeout_s: float = 300.0,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run a bridged module in the server's workers (see ``bridge.execution``).

        ``overrides`` (variable -> value) replace the session's values for this
        call only; the server validates them and never writes them.

        The LM configuration (API key included) travels with this call only; the
        server never stores it.
        """
        if not isinstance(bindings, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in bindings.items()
        ):
            raise ValidationError(
                f"bindings must map parameter names to variable names, got {bindings!r}"
            )
        c = self._c
        request = self._pb.ExecuteModuleRequest(
            session_id=self.session_id,
            module_spec_json=c.dumps(dict(module_spec)),
            inputs_json=_map_json(c, inputs, "inputs"),
            bindings=dict(bindings),
            lm_config_json=_map_json(c, lm_config, "lm config"),
            timeout_s=float(timeout_s),
            overrides_json=_map_json(c, overrides, "overrides") if overrides else "",
        )
        reply = self.client.call("ExecuteModule", request, timeout=timeout_s + 30)
        return c.loads(reply.result_json, "module result")

    # ------------------------------------------------------------------ watching

    def watch(
        self,
        names: Iterable[str] | None,
        callback: Callable[[WatchEvent], Any],
        *,
        include_initial: bool = False,
        filter: WatchFilter | None = None,
        debounce_ms: float = 0,
        signals: bool = False,
    ) -> Subscription:
        names = check_watch_names(names)
        subscription = Subscription(
            names, callback, filter=filter, debounce_ms=debounce_ms, signals=signals
        )
        try:
            with self._cond:
                if self._live:
                    if names is None:
                        current = sorted(self._cache.values(), key=lambda v: v.name)
                    else:
                        # a name missing from the cache may be too new to be streamed yet
                        current = [self._cache.get(n) or self._fetch(n) for n in names]
                else:
                    current = self.list() if names is None else [self.get(n) for n in names]
                subscription.start_from(current, include_initial)
                self._hub.add(subscription)
        except BaseException:
            subscription.close()
            raise
        return subscription

    # ------------------------------------------------------------------ lifecycle

    def heartbeat(self) -> Any:
        """Refresh the session's TTL (an open watch stream also keeps it alive)."""
        return self._rpc("Heartbeat", self._pb.SessionRequest(session_id=self.session_id))

    def close(self) -> None:
        for lease in list(self._leases.values()):  # a clean exit frees its leases at once
            if self._closed or not getattr(self.client, "ready", True):
                break  # unreachable: the server ends them when this connection is gone
            try:
                self.release_lock(lease)
            except Exception:
                log.debug("release of lease %s failed", lease.lease_id, exc_info=True)
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._live = False
            self._cond.notify_all()
        self._wake.set()
        call = self._call
        if call is not None:
            call.cancel()
        self._thread.join(10)
        with self._cond:
            self._hub.close_all()
        try:
            if self._cleanup_on_close:
                try:
                    self._rpc("CleanupSession", self._pb.SessionRequest(session_id=self.session_id))
                except Exception:
                    log.debug("cleanup of session %s failed", self.session_id, exc_info=True)
            if self._owns_client:
                self.client.close()
        finally:
            if self._on_close is not None:
                self._on_close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("live" if self._live else "syncing")
        return f"<BridgedState {self.address} session={self.session_id[:8]} {state}>"


def _map_json(convert: Any, mapping: Any, what: str) -> str:
    if mapping is None:
        return ""
    if not isinstance(mapping, Mapping):
        raise ValidationError(f"{what} must be a mapping, got {mapping!r}")
    return convert.dumps_map(mapping)


def _version(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"a version must be an int, got {value!r}")
    return value
