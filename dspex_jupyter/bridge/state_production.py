"""The production calls of ``BridgedState``: dependencies, optimizer locks, access control.

The server enforces all three (``docs/architecture.md``); this client only
carries them:

* dependencies: ``add_dependency`` / ``remove_dependency`` / ``dependencies`` /
  ``topological_order``; dependents learn about a write from a
  ``dependency_changed`` watch event (``watch(..., signals=True)``).
* optimizer locks: ``acquire_lock`` returns a :class:`Lease`. While this
  ``BridgedState`` holds a lease, every call it sends carries the lease id
  (``dspex-lease`` call metadata, added by :meth:`ProductionCalls._rpc`), so
  writes made through it (through its context) pass; writes from anyone else
  are refused with ``LockedError``. ``with ctx.acquire_lock(...) as lease:``
  releases it on exit.
* access control: the client's principal (``Context.start(principal=...)``)
  travels as ``dspex-principal`` metadata; ``grant`` / ``revoke`` /
  ``permissions`` manage rights.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import AccessDenied, ValidationError, VariableNotFound
from ..variables.record import Variable
from . import convert
from ._proto import dspex_bridge_pb2 as pb

if TYPE_CHECKING:
    from .client import BridgeClient

__all__ = ["Lease", "ProductionCalls"]

log = logging.getLogger("dspex_jupyter.bridged")


class Lease:
    """An optimizer's lease on some variables (``Context.acquire_lock``).

    ``lease_id``, ``holder``, ``names``, ``expires_at`` (server clock, seconds
    since the epoch) and ``ttl_s``. Writes through the ``BridgedState`` (the
    context) that acquired it pass while it is held. Use it as a context
    manager to release it on exit; :meth:`renew` pushes its expiry ``ttl_s``
    further.
    """

    def __init__(self, state: ProductionCalls, msg: Any) -> None:
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


class ProductionCalls:
    """The lease-carrying calls of ``BridgedState`` (a mixin: it owns the leases)."""

    client: BridgeClient
    session_id: str
    _cache: dict[str, Variable]
    _cond: threading.Condition
    _closed: bool

    if TYPE_CHECKING:

        def _revalidate_stream(self) -> None: ...

    def _init_leases(self) -> None:
        self._leases: dict[str, Lease] = {}
        self._lease_md: tuple[tuple[str, str], ...] = ()

    def _rpc(self, method: str, request: Any) -> Any:
        """A call to this session that carries the leases this client holds."""
        try:
            return self.client.call(method, request, extra_metadata=self._lease_md)
        except AccessDenied:
            self._revalidate_stream()
            raise

    # ------------------------------------------------------------------ dependencies

    def _names(self, method: str, request: Any) -> builtins.list[str]:
        return list(self._rpc(method, request).names)

    def _dependency_request(self, name: Any, depends_on: Any = "") -> Any:
        for value in (name, depends_on):
            if not isinstance(value, str):
                raise VariableNotFound(str(value), self._cache)
        return pb.DependencyRequest(session_id=self.session_id, name=name, depends_on=depends_on)

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
        return self._names("TopologicalOrder", pb.SessionRequest(session_id=self.session_id))

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
            pb.AcquireLockRequest(
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
            pb.LeaseRequest(session_id=self.session_id, lease_id=lease_id, ttl_s=float(ttl_s or 0)),
        )
        held = self._leases.get(lease_id)
        if held is None:
            held = Lease(self, reply)
        held.expires_at, held.ttl_s = reply.expires_at, reply.ttl_s
        return held

    def release_lock(self, lease: Lease | str) -> None:
        """Release a lease (no error if it already expired)."""
        lease_id = self._lease_id(lease)
        self._rpc("ReleaseLock", pb.LeaseRequest(session_id=self.session_id, lease_id=lease_id))
        with self._cond:
            held = self._leases.pop(lease_id, None)
            self._set_leases()
        for obj in (held, lease):
            if isinstance(obj, Lease):
                obj.released = True

    def locks(self) -> dict[str, str]:
        """Leased variables (that this principal may read) -> holder."""
        reply = self._rpc("ListLocks", pb.SessionRequest(session_id=self.session_id))
        return dict(sorted(reply.holders.items()))

    def _release_leases(self) -> None:
        """On a clean exit, free our leases at once rather than when they expire."""
        for lease in list(self._leases.values()):
            if self._closed or not getattr(self.client, "ready", True):
                break  # unreachable: the server ends them when this connection is gone
            try:
                self.release_lock(lease)
            except Exception:
                log.debug("release of lease %s failed", lease.lease_id, exc_info=True)

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
            pb.GrantRequest(
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
            pb.PermissionsRequest(session_id=self.session_id, principal=principal),
        )
        return convert.loads(reply.permissions_json, "permissions")
