"""The production features of a bridge session (dependencies, optimizer locks, access control), as plain data structures.

The server (``bridge/server/``) keeps one of each per session and calls them
under the session's lock; nothing here does I/O.

* :class:`DependencyGraph` — edges ``name -> depends_on`` between existing
  variables, cycle detection that names the cycle in order, a deterministic
  topological order, and the transitive dependents of a write.
* :class:`Leases` — optimizer locks: all-or-nothing acquisition, holder-only
  writes (a write passes if it carries the lease id), expiry after ``ttl_s``
  unless renewed, and a short grace once the holder's connection is gone.
* :class:`AccessControl` — principals and rights. A session with no grants is
  open to everyone who has the server token; the first grant closes it: from
  then on only its owner (the principal that created it) and granted
  principals have rights.
"""

from __future__ import annotations

import heapq
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import errors as E
from ..variables.record import SIGNAL_KINDS

__all__ = [
    "RIGHTS",
    "SIGNAL_KINDS",
    "SESSION_SCOPE",
    "DependencyGraph",
    "Lease",
    "Leases",
    "AccessControl",
    "LEASE_DISCONNECT_GRACE_S",
]

RIGHTS = ("read", "write", "observe", "optimize", "execute")
#: The key of session-wide rights in ``permissions()``.
SESSION_SCOPE = "*"
#: How long a lease outlives the last watch stream of the connection that holds it.
LEASE_DISCONNECT_GRACE_S = 5.0
MAX_LEASE_TTL_S = 7 * 24 * 3600.0


# ---------------------------------------------------------------------- dependencies


class DependencyGraph:
    """``deps[name]`` is the set of variables ``name`` depends on."""

    def __init__(self, edges: Iterable[Iterable[str]] = ()) -> None:
        self.deps: dict[str, set[str]] = {}
        for name, depends_on in edges:
            self.deps.setdefault(name, set()).add(depends_on)

    def edges(self) -> list[list[str]]:
        return [[n, d] for n in sorted(self.deps) for d in sorted(self.deps[n])]

    def of(self, name: str) -> list[str]:
        return sorted(self.deps.get(name, ()))

    def _path(self, start: str, goal: str) -> list[str] | None:
        """A path ``start -> ... -> goal`` along "depends on" edges (sorted, so deterministic)."""
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen = {start}
        while stack:
            node, path = stack.pop()
            if node == goal:
                return path
            for nxt in sorted(self.deps.get(node, ()), reverse=True):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
        return None

    def check_add(self, name: str, depends_on: str) -> None:
        """``CycleError`` naming the cycle ``[name, depends_on, ..., name]`` if the edge closes one."""
        if name == depends_on:
            raise E.CycleError([name, name])
        path = self._path(depends_on, name)
        if path is not None:
            raise E.CycleError([name, *path])

    def add(self, name: str, depends_on: str) -> bool:
        self.check_add(name, depends_on)
        targets = self.deps.setdefault(name, set())
        added = depends_on not in targets
        targets.add(depends_on)
        return added

    def remove(self, name: str, depends_on: str) -> bool:
        targets = self.deps.get(name)
        if not targets or depends_on not in targets:
            return False
        targets.discard(depends_on)
        if not targets:
            del self.deps[name]
        return True

    def without(self, names: Iterable[str]) -> DependencyGraph | None:
        """A copy without every edge touching ``names``; ``None`` if none does."""
        gone = set(names)
        if not gone:
            return None
        touched = any(n in gone or t & gone for n, t in self.deps.items())
        if not touched:
            return None
        graph = DependencyGraph()
        for n, targets in self.deps.items():
            if n in gone:
                continue
            kept = targets - gone
            if kept:
                graph.deps[n] = set(kept)
        return graph

    def dependents(self, changed: Iterable[str]) -> dict[str, list[str]]:
        """Every variable that transitively depends on one of ``changed``, with the
        changed names it depends on."""
        reverse: dict[str, set[str]] = {}
        for n, targets in self.deps.items():
            for t in targets:
                reverse.setdefault(t, set()).add(n)
        if not reverse:
            return {}
        found: dict[str, set[str]] = {}
        for origin in changed:
            stack = [origin]
            seen = {origin}
            while stack:
                node = stack.pop()
                for dep in reverse.get(node, ()):
                    if dep not in seen:
                        seen.add(dep)
                        found.setdefault(dep, set()).add(origin)
                        stack.append(dep)
        return {n: sorted(v) for n, v in found.items()}

    def order(self, names: Iterable[str]) -> list[str]:
        """``names`` with every dependency before its dependents; ties by name."""
        names = set(names)
        indegree = {n: 0 for n in names}
        users: dict[str, list[str]] = {}
        for n in names:
            for d in self.deps.get(n, ()):
                if d in names:
                    indegree[n] += 1
                    users.setdefault(d, []).append(n)
        ready = [n for n, k in indegree.items() if k == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            n = heapq.heappop(ready)
            out.append(n)
            for u in users.get(n, ()):
                indegree[u] -= 1
                if indegree[u] == 0:
                    heapq.heappush(ready, u)
        return out


# ---------------------------------------------------------------------- leases


@dataclass
class Lease:
    lease_id: str
    holder: str
    names: list[str]
    ttl_s: float
    expires_at: float
    client: str = ""
    disconnected_at: float | None = None
    #: Who acquired it: Renew/Release need this principal as well as the id.
    principal: str = ""

    def deadline(self) -> float:
        if self.disconnected_at is None:
            return self.expires_at
        return min(self.expires_at, self.disconnected_at + LEASE_DISCONNECT_GRACE_S)


def check_ttl(ttl_s: Any, cap: float = MAX_LEASE_TTL_S, what: str = "ttl_s") -> float:
    """A finite, positive TTL no longer than ``cap`` (NaN and infinity fail the range test)."""
    if not isinstance(ttl_s, (int, float)) or isinstance(ttl_s, bool) or not (0 < ttl_s <= cap):
        raise E.ValidationError(
            f"{what} must be a number of seconds in (0, {cap:g}], got {ttl_s!r}"
        )
    return float(ttl_s)


@dataclass
class Leases:
    by_id: dict[str, Lease] = field(default_factory=dict)
    locked: dict[str, str] = field(default_factory=dict)  # variable -> lease id

    def holders(self) -> dict[str, str]:
        return {n: self.by_id[lid].holder for n, lid in sorted(self.locked.items())}

    def expired(self, now: float) -> list[Lease]:
        return [lease for lease in self.by_id.values() if lease.deadline() <= now]

    def check_free(self, names: Iterable[str], carried: Iterable[str]) -> None:
        """``LockedError`` if a name is leased by a lease the caller does not carry."""
        carried = set(carried)
        for name in names:
            lid = self.locked.get(name)
            if lid is not None and lid not in carried:
                lease = self.by_id[lid]
                left = max(0.0, lease.deadline() - time.time())
                raise E.LockedError(
                    f"variable {name!r} is locked by optimizer {lease.holder!r} "
                    f"(lease expires in {left:.0f} s unless renewed)",
                    lease.holder,
                )

    def acquire(
        self, names: list[str], holder: str, ttl_s: float, client: str, principal: str = ""
    ) -> Lease:
        self.check_free(names, ())
        lease = Lease(
            secrets.token_hex(16),
            holder,
            names,
            ttl_s,
            time.time() + ttl_s,
            client,
            principal=principal,
        )
        self.by_id[lease.lease_id] = lease
        for n in names:
            self.locked[n] = lease.lease_id
        return lease

    def get(self, lease_id: str) -> Lease | None:
        return self.by_id.get(lease_id)

    def drop(self, lease: Lease) -> list[str]:
        """Remove a lease; the names it still held."""
        self.by_id.pop(lease.lease_id, None)
        names = [n for n in lease.names if self.locked.get(n) == lease.lease_id]
        for n in names:
            del self.locked[n]
        return names

    def forget_variables(self, names: Iterable[str]) -> None:
        """Deleted variables leave their leases (a lease with no names left ends)."""
        for n in names:
            lid = self.locked.pop(n, None)
            lease = self.by_id.get(lid) if lid else None
            if lease is not None:
                lease.names = [x for x in lease.names if x != n]
                if not lease.names:
                    del self.by_id[lease.lease_id]

    def connected(self, client: str, up: bool, now: float) -> None:
        if not client:
            return
        for lease in self.by_id.values():
            if lease.client == client:
                lease.disconnected_at = None if up else now


# ---------------------------------------------------------------------- access control


def check_rights(rights: Any) -> list[str]:
    if isinstance(rights, str):
        rights = [rights]
    try:
        rights = list(rights)
    except TypeError:
        raise E.ValidationError(f"rights must be a list of {RIGHTS}, got {rights!r}") from None
    bad = [r for r in rights if r not in RIGHTS]
    if not rights or bad:
        raise E.ValidationError(f"rights must be a non-empty list of {RIGHTS}, got {rights!r}")
    return sorted(set(rights))


def check_principal(principal: Any) -> str:
    if not isinstance(principal, str) or not principal or len(principal) > 256:
        raise E.ValidationError(f"a principal must be a 1..256 character string, got {principal!r}")
    return principal


class AccessControl:
    """Rights per principal, session-wide (``"*"``) or per variable."""

    def __init__(self, owner: str = "", data: Mapping[str, Any] | None = None) -> None:
        self.owner = owner
        data = data or {}
        self.enabled = bool(data.get("enabled"))
        self.grants: dict[str, dict[str, set[str]]] = {
            p: {scope: set(r) for scope, r in scopes.items()}
            for p, scopes in (data.get("grants") or {}).items()
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "grants": {
                p: {s: sorted(r) for s, r in scopes.items() if r}
                for p, scopes in self.grants.items()
            },
        }

    def allowed(self, principal: str, right: str, variable: str | None = None) -> bool:
        if not self.enabled or (self.owner and principal == self.owner):
            return True
        scopes = self.grants.get(principal)
        if not scopes:
            return False
        if right in scopes.get(SESSION_SCOPE, ()):
            return True
        return variable is not None and right in scopes.get(variable, ())

    def require(self, principal: str, right: str, variable: str | None, session_id: str) -> None:
        if not self.allowed(principal, right, variable):
            who = repr(principal) if principal else "an anonymous caller (no principal)"
            where = f"variable {variable!r}" if variable is not None else "the whole session"
            raise E.AccessDenied(
                f"{who} lacks the {right!r} right on {where} of session {session_id!r}"
            )

    def require_owner(self, principal: str, what: str) -> None:
        if not self.owner:
            raise E.AccessDenied(
                f"cannot {what}: this session has no owner principal; create it with "
                "Context.start(principal=...) to use access control"
            )
        if principal != self.owner:
            who = repr(principal) if principal else "an anonymous caller"
            raise E.AccessDenied(
                f"cannot {what}: only the session owner {self.owner!r} may, not {who}"
            )

    def grant(self, principal: str, rights: list[str], variable: str | None) -> None:
        scope = SESSION_SCOPE if variable is None else variable
        self.enabled = True
        self.grants.setdefault(principal, {}).setdefault(scope, set()).update(rights)

    def revoke(self, principal: str, rights: list[str], variable: str | None) -> None:
        scope = SESSION_SCOPE if variable is None else variable
        scopes = self.grants.get(principal, {})
        if scope in scopes:
            scopes[scope].difference_update(rights)
            if not scopes[scope]:
                del scopes[scope]
        if not scopes:
            self.grants.pop(principal, None)

    def forget_variables(self, names: Iterable[str]) -> bool:
        changed = False
        for n in names:
            for scopes in self.grants.values():
                if scopes.pop(n, None) is not None:
                    changed = True
        return changed

    def permissions(self, principal: str) -> dict[str, list[str]]:
        if not self.enabled or (self.owner and principal == self.owner):
            return {SESSION_SCOPE: sorted(RIGHTS)}
        return {s: sorted(r) for s, r in sorted(self.grants.get(principal, {}).items()) if r}
