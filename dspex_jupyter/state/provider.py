"""The ``StateProvider`` interface every backend implements.

The core (register ... watch) is abstract. The advanced operations
(dependencies, optimizer locks, access control, history) have a default that
raises :class:`NotSupportedByBackend` naming the operation and the backend, so
a backend that lacks them fails loudly, never silently.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import Any

from ..errors import NotSupportedByBackend
from ..variables.record import Variable, WatchEvent
from .watch import Subscription, WatchFilter, WatchHub

__all__ = ["StateProvider"]


class StateProvider(ABC):
    """Typed, versioned variables with watchers. Implementations must be thread-safe."""

    #: ``"local"`` or ``"bridged"``.
    name: str = "abstract"
    #: Whether this backend needs a bridge server.
    requires_bridge: bool = False

    # ------------------------------------------------------------------ core

    @abstractmethod
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
        """Define a new variable; raises ``VariableExists`` if the name is taken."""

    @abstractmethod
    def get(self, name: str) -> Variable: ...

    @abstractmethod
    def set(
        self,
        name: str,
        value: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        source: str = "api",
    ) -> Variable:
        """Write a validated value; with ``expected_version``, only if it is still current."""

    @abstractmethod
    def delete(self, name: str, *, source: str = "api") -> None: ...

    @abstractmethod
    def list(self) -> list[Variable]:
        """Every variable, sorted by name."""

    @abstractmethod
    def get_many(self, names: Iterable[str]) -> dict[str, Variable]: ...

    @abstractmethod
    def update_many(
        self,
        updates: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_versions: Mapping[str, int] | None = None,
        source: str = "api",
    ) -> dict[str, Variable]:
        """Write several variables atomically: all of them or none."""

    @abstractmethod
    def export_state(self) -> dict[str, Any]:
        """A JSON-safe snapshot, versions included."""

    @abstractmethod
    def import_state(
        self, snapshot: Mapping[str, Any], *, replace: bool = False, source: str | None = None
    ) -> None:
        """Restore a snapshot atomically (see ``VariableTable.import_``)."""

    @abstractmethod
    def watch(
        self,
        names: Iterable[str] | str | None,
        callback: Callable[[WatchEvent], Any],
        *,
        include_initial: bool = False,
        filter: WatchFilter | None = None,
        debounce_ms: float = 0,
        signals: bool = False,
    ) -> Subscription:
        """Deliver changes of ``names`` (``None``: every variable, present and future).

        ``signals=True`` also delivers the events that change no value
        (``dependency_changed``, ``locked``, ``unlocked``; see ``SIGNAL_KINDS``)."""

    # A backend keeps its subscriptions in ``_hub`` and publishes events while
    # holding ``_publish_lock``; adding or removing a subscription under the same
    # lock is what keeps a subscription's events gapless and in order.
    _hub: WatchHub
    _publish_lock: AbstractContextManager[Any]

    def unwatch(self, handle: Subscription) -> bool:
        """Stop a subscription; True if it was active here."""
        with self._publish_lock:
            removed = self._hub.remove(handle)
        handle.close()
        return removed

    def attach(self, subscription: Subscription) -> None:
        """Adopt a live subscription from another backend (used by the upgrade)."""
        with self._publish_lock:
            self._hub.add(subscription)

    def detach_all(self) -> builtins.list[Subscription]:
        """Hand over every live subscription without closing it."""
        with self._publish_lock:
            return self._hub.detach_all()

    @abstractmethod
    def close(self) -> None:
        """Release everything this backend holds. Idempotent."""

    # ------------------------------------------------------------------ advanced

    def _unsupported(self, operation: str) -> NotSupportedByBackend:
        return NotSupportedByBackend(
            operation, self.name, "it needs the bridged backend (call ctx.ensure_bridged())"
        )

    def add_dependency(self, name: str, depends_on: str) -> None:
        raise self._unsupported("add_dependency")

    def remove_dependency(self, name: str, depends_on: str) -> None:
        raise self._unsupported("remove_dependency")

    def dependencies(self, name: str) -> builtins.list[str]:
        raise self._unsupported("dependencies")

    def topological_order(self) -> builtins.list[str]:
        raise self._unsupported("topological_order")

    def acquire_lock(self, names: Iterable[str], holder: str, ttl_s: float = 30.0) -> Any:
        raise self._unsupported("acquire_lock")

    def release_lock(self, lease: Any) -> None:
        raise self._unsupported("release_lock")

    def locks(self) -> dict[str, str]:
        raise self._unsupported("locks")

    def grant(self, principal: str, rights: Iterable[str], variable: str | None = None) -> None:
        raise self._unsupported("grant")

    def revoke(self, principal: str, rights: Iterable[str], variable: str | None = None) -> None:
        raise self._unsupported("revoke")

    def permissions(self, principal: str) -> dict[str, builtins.list[str]]:
        raise self._unsupported("permissions")

    def history(self, name: str, limit: int | None = None) -> builtins.list[Variable]:
        raise self._unsupported("history")

    def rollback(self, name: str, version: int) -> Variable:
        raise self._unsupported("rollback")

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
        """Run a bridged module (``Module.to_dict()``) out of process; see
        ``dspex_jupyter.bridge.execution`` for the JSON shapes in and out.
        ``bindings`` maps module parameters to variable names, resolved against
        the session when the module starts; the run gets ``timeout_s`` seconds.
        ``overrides`` (variable -> value) are used by this call only and never written."""
        raise NotSupportedByBackend("execute_module", self.name)
