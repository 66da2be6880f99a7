"""The bridged half of :class:`~dspex_jupyter.context.Context`.

Two things only the bridged backend gives a context: the upgrade to it
(:meth:`BridgedOperations.ensure_bridged`, the protocol in
``docs/architecture.md``) and the operations that exist there alone
(dependencies, optimizer locks, access control, history and rollback, module
execution). Every one goes through the active backend; on ``LocalState`` the
advanced ones raise ``NotSupportedByBackend`` naming the operation.

A mixin of ``Context``: it uses the context's backend slot (``_provider``), its
``SwitchGate`` and its upgrade lock, and nothing from the layers above.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .bridge.config import BridgeConfig
from .errors import BridgeUnavailable, ContextClosed, DSPexError, NotSupportedByBackend
from .state.gate import Stopped, SwitchGate
from .state.provider import StateProvider
from .variables.record import Variable

__all__ = ["BridgedOperations"]


@contextmanager
def _quiet() -> Iterator[None]:
    yield


_Self = TypeVar("_Self", bound="BridgedOperations")


class BridgedOperations:
    """The upgrade to ``BridgedState`` and the operations only it implements."""

    bridge_config: BridgeConfig
    lm_config: dict[str, Any]
    _provider: StateProvider | Stopped
    _gate: SwitchGate
    _upgrade_lock: threading.Lock
    #: ``reporter(message) -> done``: shows which slow first step runs now (the
    #: Jupyter layer installs a transient status line in the cell); None: silent.
    _progress: ClassVar[Callable[[str], Callable[[], None]] | None] = None
    _ran_a_module = False

    @classmethod
    def report_progress_with(cls, reporter: Callable[[str], Callable[[], None]] | None) -> None:
        """Let an upper layer show the slow first steps (starting the bridge, loading DSPy)."""
        BridgedOperations._progress = reporter

    @contextmanager
    def _slow_step(self, message: str) -> Iterator[None]:
        reporter = BridgedOperations._progress
        done = reporter(message) if reporter is not None else None
        try:
            yield
        finally:
            if done is not None:
                done()

    if TYPE_CHECKING:

        @property
        def closed(self) -> bool: ...

    # ------------------------------------------------------------------ the upgrade

    def ensure_bridged(self: _Self) -> _Self:
        """Upgrade to ``BridgedState`` (no-op if already bridged); see ``docs/architecture.md``.

        The slow part (reaching or spawning the server, creating the session)
        happens before writers are paused. Then, with no writer in flight, the
        variables are imported in one atomic batch with their versions, every
        watcher moves to the new backend, and the backend is swapped. On any
        failure the context stays local and intact, and ``BridgeUnavailable``
        is raised.
        """
        if self._provider.name == "bridged":
            return self
        with self._upgrade_lock:
            if self._provider.name == "bridged":
                return self
            if self.closed:
                raise ContextClosed("this context was stopped")
            where = self.bridge_config.address
            step = (
                f"connecting to the bridge at {where}…" if where else "starting the bridge server…"
            )
            with self._slow_step(step):
                new = self._open_bridged_state()
            try:
                with self._gate.exclusive():
                    old = self._provider
                    snapshot = old.export_state()
                    if snapshot["variables"]:
                        new.import_state(snapshot)
                    for subscription in old.detach_all():
                        new.attach(subscription)
                    self._provider = new
            except BaseException as exc:
                for subscription in new.detach_all():
                    self._provider.attach(subscription)
                new.close()
                if isinstance(exc, DSPexError):
                    raise BridgeUnavailable(
                        f"upgrade to the bridged backend failed: {exc}"
                    ) from exc
                raise
            old.close()
        return self

    def _open_bridged_state(self) -> StateProvider:
        """Reach or spawn a bridge server and open this context's session on it."""
        try:
            from .bridge.connect import open_bridged_state
        except ImportError as exc:
            raise BridgeUnavailable(f"the bridge is not available: {exc}") from exc
        return open_bridged_state(self.bridge_config)

    # ------------------------------------------------------------------ advanced operations

    def add_dependency(self, name: str, depends_on: str) -> None:
        """``name`` depends on ``depends_on`` (bridged). A cycle raises ``CycleError``
        naming it; dependents get ``dependency_changed`` events (``watch(signals=True)``)."""
        with self._gate:
            self._provider.add_dependency(name, depends_on)

    def remove_dependency(self, name: str, depends_on: str) -> None:
        with self._gate:
            self._provider.remove_dependency(name, depends_on)

    def dependencies(self, name: str) -> builtins.list[str]:
        return self._provider.dependencies(name)

    def topological_order(self) -> builtins.list[str]:
        """Every variable, each after what it depends on (ties by name)."""
        return self._provider.topological_order()

    def acquire_lock(self, names: Iterable[str], holder: str, ttl_s: float = 30.0) -> Any:
        """Lease ``names`` for an optimizer, all or none (bridged); ``LockedError`` names
        the other holder. Returns a ``Lease`` (a context manager that releases on exit).
        While it is held, writes through this context pass and everyone else's are
        refused. It ends on release, after ``ttl_s`` unless ``lease.renew()``-ed, or
        a few seconds after this process's connection is gone."""
        with self._gate:
            return self._provider.acquire_lock(names, holder, ttl_s)

    def release_lock(self, lease: Any) -> None:
        with self._gate:
            self._provider.release_lock(lease)

    def locks(self) -> dict[str, str]:
        """Leased variable -> holder (bridged)."""
        return self._provider.locks()

    def grant(self, principal: str, rights: Iterable[str], variable: str | None = None) -> None:
        """Give ``principal`` rights (``read``, ``write``, ``observe``, ``optimize``) on the
        session or one ``variable`` (bridged; only the session's owner may). The first
        grant turns access control on for the session."""
        with self._gate:
            self._provider.grant(principal, rights, variable)

    def revoke(self, principal: str, rights: Iterable[str], variable: str | None = None) -> None:
        with self._gate:
            self._provider.revoke(principal, rights, variable)

    def permissions(self, principal: str) -> dict[str, builtins.list[str]]:
        """``{"*": session-wide rights, variable: rights}`` of ``principal`` (bridged)."""
        return self._provider.permissions(principal)

    def history(self, name: str, limit: int | None = None) -> builtins.list[Variable]:
        return self._provider.history(name, limit)

    def rollback(self, name: str, version: int) -> Variable:
        with self._gate:
            return self._provider.rollback(name, version)

    # ------------------------------------------------------------------ module execution

    def execute_module(
        self,
        module_spec: Mapping[str, Any],
        inputs: Mapping[str, Any],
        bindings: Mapping[str, str],
        lm_config: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = 300.0,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run one bridged module through the active backend (``Program.run`` calls this).

        ``lm_config`` defaults to this context's LM configuration; ``overrides``
        (variable -> value) are used by this call only and never written. Only
        the bridged backend implements it; see ``dspex_jupyter.bridge.execution``.
        """
        first, self._ran_a_module = not self._ran_a_module, True
        with self._slow_step("loading DSPy on the bridge (first run)…") if first else _quiet():
            return self._provider.execute_module(
                module_spec,
                inputs,
                bindings,
                self.lm_config if lm_config is None else lm_config,
                timeout_s=timeout_s,
                overrides=overrides,
            )

    def compile_program(
        self,
        job: Mapping[str, Any],
        *,
        on_progress: Callable[[dict[str, Any]], None] | None = None,
        timeout_s: float = 3600.0,
    ) -> dict[str, Any]:
        """Compile a program's bridged modules in the bridge (``Program.compile`` calls this).

        ``job`` is the compile job of ``bridge/compiling.py``; the context's LM
        configuration travels with this call only. Only the bridged backend does it.
        """
        compile_program = getattr(self._provider, "compile_program", None)
        if compile_program is None:
            raise NotSupportedByBackend("compile_program", self._provider.name)
        first, self._ran_a_module = not self._ran_a_module, True
        with self._slow_step("loading DSPy on the bridge (first run)…") if first else _quiet():
            result: dict[str, Any] = compile_program(
                job, self.lm_config, on_progress=on_progress, timeout_s=timeout_s
            )
        return result
