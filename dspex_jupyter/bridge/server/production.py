"""Production RPCs: dependencies, optimizer locks (leases) and access control.

The data structures are in ``bridge/production.py``; these handlers apply them
to a session under its lock. Rights, once a session has access control (its
owner has them all): "write" on the dependent for Add/RemoveDependency; "read"
for GetDependencies and (session-wide) TopologicalOrder; "optimize" on every
name for AcquireLock, while Renew/ReleaseLock need only the lease id (a bearer
capability) and ListLocks shows only readable variables; owner only for Grant,
Revoke and GetPermissions of another principal.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from ... import errors as E
from .. import convert as C
from .._proto import dspex_bridge_pb2 as pb
from ..production import (
    AccessControl,
    DependencyGraph,
    Lease,
    check_principal,
    check_rights,
    check_ttl,
)
from .core import ServicerCore, lock_events
from .rpc import OWNER, Call, rpc
from .session import DENIED, Session, Watcher

__all__ = ["ProductionMixin"]


def _named(request: Any) -> list[str]:
    return [request.name]


def _lease_pb(lease: Lease, with_id: bool = True) -> pb.Lease:
    """A lease as a reply shows it; only its acquirer ever gets the id (a capability)."""
    return pb.Lease(
        lease_id=lease.lease_id if with_id else "",
        holder=lease.holder,
        names=lease.names,
        expires_at=lease.deadline(),
        ttl_s=lease.ttl_s,
    )


def _may_observe(acl: AccessControl, watcher: Watcher) -> bool:
    if watcher.names is None:
        return acl.allowed(watcher.principal, "observe")
    return all(acl.allowed(watcher.principal, "observe", n) for n in watcher.names)


def _permissions(session: Session, principal: str) -> pb.PermissionsResponse:
    return pb.PermissionsResponse(permissions_json=C.dumps(session.acl.permissions(principal)))


class ProductionMixin(ServicerCore):
    # ------------------------------------------------------------------ dependencies

    @rpc("write", names=_named)
    def AddDependency(self, request: Any, call: Call) -> pb.NamesResponse:
        return self._change_dependency(request, call, DependencyGraph.add)

    @rpc("write", names=_named)
    def RemoveDependency(self, request: Any, call: Call) -> pb.NamesResponse:
        return self._change_dependency(request, call, DependencyGraph.remove)

    def _change_dependency(
        self, request: Any, call: Call, change: Callable[[DependencyGraph, str, str], bool]
    ) -> pb.NamesResponse:
        """Apply ``change(graph, name, depends_on)`` to a copy of the session's graph;
        persist and adopt it only if it changed (a ``CycleError`` leaves all as it was)."""
        with call.locked() as session:
            session.table.get(request.name)  # VariableNotFound
            session.table.get(request.depends_on)
            graph = DependencyGraph(session.graph.edges())
            if change(graph, request.name, request.depends_on):
                self.store.save_meta(session.id, {"dependencies": graph.edges()})
                session.graph = graph
            return pb.NamesResponse(names=session.graph.of(request.name))

    @rpc("read", names=_named)
    def GetDependencies(self, request: Any, call: Call) -> pb.NamesResponse:
        with call.locked() as session:
            session.table.get(request.name)
            return pb.NamesResponse(names=session.graph.of(request.name))

    @rpc("read")
    def TopologicalOrder(self, request: Any, call: Call) -> pb.NamesResponse:
        with call.locked() as session:
            return pb.NamesResponse(names=session.graph.order(session.table.variables))

    # ------------------------------------------------------------------ optimizer locks

    @rpc("optimize", names=lambda request: list(dict.fromkeys(request.names)))
    def AcquireLock(self, request: Any, call: Call) -> pb.Lease:
        names = list(dict.fromkeys(request.names))
        if not names:
            raise E.ValidationError("acquire_lock needs at least one variable name")
        holder = request.holder
        if not holder or len(holder) > 256:
            raise E.ValidationError(f"holder must be 1..256 characters, got {holder!r}")
        ttl_s = check_ttl(request.ttl_s, self.max_lease_ttl_s)
        with call.locked() as session:
            for n in names:
                session.table.get(n)  # VariableNotFound
            self._expire_leases(session)
            lease = session.leases.acquire(
                names, holder, ttl_s, call.caller.client, call.caller.principal
            )
            self._signal(session, lock_events(session, lease, names, "locked", "acquired"))
            return _lease_pb(lease)

    def _own_lease(self, session: Session, lease_id: str, principal: str) -> Lease | None:
        """The caller's lease ``lease_id``; ``None`` if no such lease is the caller's.

        A lease id alone is not enough: a lease of another principal is treated
        exactly as one that does not exist (no oracle for ids).
        """
        self._expire_leases(session)
        lease = session.leases.get(lease_id) if lease_id else None
        if lease is None or not hmac.compare_digest(lease.principal, principal):
            return None
        return lease

    def _lease(self, session: Session, lease_id: str, principal: str) -> Lease:
        lease = self._own_lease(session, lease_id, principal)
        if lease is None:
            raise E.LockedError(
                f"lease {lease_id!r} is not held (it expired, was released, or never existed)"
            )
        return lease

    @rpc()
    def RenewLock(self, request: Any, call: Call) -> pb.Lease:
        with call.locked() as session:
            lease = self._lease(session, request.lease_id, call.caller.principal)
            if request.ttl_s:
                lease.ttl_s = check_ttl(request.ttl_s, self.max_lease_ttl_s)
            lease.expires_at = time.time() + lease.ttl_s
            return _lease_pb(lease)

    @rpc()
    def ReleaseLock(self, request: Any, call: Call) -> pb.ReleaseLockResponse:
        with call.locked() as session:
            lease = self._own_lease(session, request.lease_id, call.caller.principal)
            if lease is None:
                return pb.ReleaseLockResponse(released=False)
            names = session.leases.drop(lease)
            self._signal(session, lock_events(session, lease, names, "unlocked", "released"))
            return pb.ReleaseLockResponse(released=True)

    @rpc()
    def ListLocks(self, request: Any, call: Call) -> pb.LocksResponse:
        principal = call.caller.principal
        with call.locked() as session:
            self._expire_leases(session)
            visible = {  # only the variables the caller may read
                n: h
                for n, h in session.leases.holders().items()
                if session.acl.allowed(principal, "read", n)
            }
            leases = [
                _lease_pb(lease, with_id=False)
                for lease in session.leases.by_id.values()
                if any(n in visible for n in lease.names)
            ]
        return pb.LocksResponse(holders=visible, leases=leases)

    # ------------------------------------------------------------------ access control

    @rpc(OWNER, what="change access rights")
    def Grant(self, request: Any, call: Call) -> pb.PermissionsResponse:
        return self._change_acl(request, call, True)

    @rpc(OWNER, what="change access rights")
    def Revoke(self, request: Any, call: Call) -> pb.PermissionsResponse:
        return self._change_acl(request, call, False)

    def _change_acl(self, request: Any, call: Call, grant: bool) -> pb.PermissionsResponse:
        principal = check_principal(request.principal)
        rights = check_rights(list(request.rights))
        variable = request.variable or None
        with call.locked() as session:
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
                    watcher.end(DENIED)
            return _permissions(session, principal)

    @rpc()
    def GetPermissions(self, request: Any, call: Call) -> pb.PermissionsResponse:
        principal = check_principal(request.principal)
        with call.locked() as session:
            caller = call.caller.principal
            if caller != principal and session.acl.enabled:
                session.acl.require_owner(caller, f"read the permissions of {principal!r}")
            return _permissions(session, principal)
