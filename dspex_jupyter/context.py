"""``Context``: the single source of truth for one execution's variables and backend.

Every operation goes through a context, never around it to a backend, because
the context may swap its backend (``LocalState`` -> ``BridgedState``) while
other threads use it; writes pass a :class:`~dspex_jupyter.state.gate.SwitchGate`.
The upgrade protocol is described in ``docs/architecture.md``.

The upgrade and the operations only the bridged backend implements live in
:mod:`~dspex_jupyter.context_bridged` (a mixin of ``Context``).

This layer knows no Jupyter and no runner: the layers above plug in through
:meth:`Context.plug` (``ctx.traits``, ``ctx.widgets()``) and
:meth:`Context.extension` (their per-context objects).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from .bridge.config import BridgeConfig, resolve_lm
from .context_bridged import BridgedOperations
from .errors import (
    DSPexError,
    ValidationError,
    VariableExists,
    VersionConflict,
)
from .state.gate import Stopped, SwitchGate
from .state.local import LocalState
from .state.provider import StateProvider
from .state.watch import Subscription, WatchFilter
from .variables.record import Variable, WatchEvent
from .variables.table import define

__all__ = ["Context", "BridgeConfig", "default_context", "MISSING"]

MISSING: Any = object()

_BACKENDS = ("local", "bridged")


class Context(BridgedOperations):
    """Typed, constrained variables on a pluggable backend.

    ``Context()`` starts on ``LocalState``. It bridges at once when given
    ``backend="bridged"``, a ``bridge`` address or a ``session_id`` to join (or create);
    otherwise it bridges on :meth:`ensure_bridged` (which ``Program.run`` calls
    when a program contains a bridged module). ``DSPEX_BRIDGE`` and
    ``DSPEX_BRIDGE_TOKEN`` configure where that upgrade goes, without forcing it;
    ``connect_timeout_s`` (default 15) bounds how long the upgrade waits for a
    configured server to accept the connection before ``BridgeUnavailable``.

    ``principal`` (or ``DSPEX_PRINCIPAL``) names who this context acts as on the
    bridge server, for access control: the principal that creates a session
    owns it (all rights, and the only one who may ``grant`` / ``revoke``); once
    a session has grants, the server enforces read / write / observe /
    optimize / execute rights on every call. Without any grant, everyone with
    the server token has every right. On a shared server started with a users
    file, the principal is the user whose ``token`` this is (a differing
    ``principal`` is refused), and only admins create sessions.

    ``tls_ca`` (or ``DSPEX_BRIDGE_CA``): the PEM CA bundle of a server that
    serves TLS (``serve --tls-cert ... --tls-key ...``).
    """

    #: What the layers above provide on every context: name -> ``factory(ctx)``.
    _plugins: ClassVar[dict[str, Callable[[Context], Any]]] = {}

    def __init__(
        self,
        *,
        backend: str = "local",
        bridge: str | None = None,
        token: str | None = None,
        session_id: str | None = None,
        lm: Mapping[str, Any] | None = None,
        name: str | None = None,
        store: str | None = None,
        session_ttl_s: float | None = None,
        principal: str | None = None,
        connect_timeout_s: float | None = None,
        tls_ca: str | None = None,
    ) -> None:
        if backend not in _BACKENDS:
            raise ValidationError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        #: Where the upgrade goes (see :class:`BridgeConfig`); replaceable until bridged.
        self.bridge_config = BridgeConfig.resolve(
            bridge=bridge,
            token=token,
            session_id=session_id,
            session_ttl_s=session_ttl_s,
            store=store,
            principal=principal,
            connect_timeout_s=connect_timeout_s,
            tls_ca=tls_ca,
        )
        self.name = name or "context"
        self.lm_config: dict[str, Any] = resolve_lm(lm)
        self._provider: StateProvider | Stopped = LocalState()
        self._gate = SwitchGate()
        self._upgrade_lock = threading.Lock()
        self._on_stop: list[Callable[[], Any]] = []
        self.extensions: dict[str, Any] = {}  # upper layers attach their per-context objects here
        self._extensions_lock = threading.RLock()  # a factory may build another extension
        self.runs: collections.deque[Mapping[str, Any]] = collections.deque(maxlen=50)
        self._run_listeners: list[Callable[[Mapping[str, Any]], Any]] = []
        if backend == "bridged" or bridge is not None or session_id is not None:
            self.ensure_bridged()

    @classmethod
    def start(cls, **options: Any) -> Context:
        """Create a context; see the class docstring for the options."""
        return cls(**options)

    @classmethod
    def plug(cls, name: str, factory: Callable[[Context], Any]) -> None:
        """Let an upper layer provide ``ctx.<name>`` (``"traits"``, ``"widgets"``)."""
        cls._plugins[name] = factory

    def _plugin(self, name: str) -> Any:
        factory = self._plugins.get(name)
        if factory is None:
            raise DSPexError(f"ctx.{name} is provided by the Jupyter layer; import dspex_jupyter")
        return factory(self)

    @property
    def session_id(self) -> str:
        """The bridge session this context uses (or will create when it bridges)."""
        return self.bridge_config.session_id

    @property
    def bridge_address(self) -> str | None:
        """The configured bridge server (``None``: a private one is spawned when needed)."""
        return self.bridge_config.address

    @property
    def principal(self) -> str | None:
        """Who this context acts as on the bridge server (``None``: anonymous)."""
        return self.bridge_config.principal

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def backend(self) -> str:
        """``"local"`` or ``"bridged"`` (``"stopped"`` after :meth:`stop`)."""
        return self._provider.name

    @property
    def provider(self) -> StateProvider:
        """The active backend. For diagnostics and tests; use the context's methods."""
        return self._provider  # type: ignore[return-value]

    @property
    def address(self) -> str | None:
        """The bridge server's address once bridged, else ``None``."""
        return getattr(self._provider, "address", None)

    @property
    def closed(self) -> bool:
        return isinstance(self._provider, Stopped)

    def extension(
        self,
        key: str,
        factory: Callable[[Context], Any],
        *,
        stale: Callable[[Any], bool] = lambda _: False,
    ) -> Any:
        """The per-context object an upper layer keeps under ``key`` (e.g. the widgets),
        made by ``factory(self)`` on first use, or again when ``stale(obj)`` says so."""
        obj = self.extensions.get(key)
        if obj is None or stale(obj):
            with self._extensions_lock:
                obj = self.extensions.get(key)
                if obj is None or stale(obj):
                    obj = self.extensions[key] = factory(self)
        return obj

    def add_stop_callback(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` on :meth:`stop` (last added, first run)."""
        self._on_stop.append(callback)

    def stop(self) -> None:
        """Release everything this context owns: watchers, streams, sessions, a private server."""
        with self._upgrade_lock, self._gate.exclusive():
            if self.closed:
                return
            provider, self._provider = self._provider, Stopped()
        errors = []
        try:
            provider.close()
        except Exception as exc:  # keep releasing the rest
            errors.append(exc)
        while self._on_stop:
            try:
                self._on_stop.pop()()
            except Exception as exc:
                errors.append(exc)
        global _default
        with _default_lock:
            if _default is self:
                _default = None
        if errors:
            raise DSPexError(f"errors while stopping the context: {errors!r}") from errors[0]

    # ------------------------------------------------------------------ variables

    def defvariable(
        self,
        name: str,
        type: str | type,
        *,
        initial: Any,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        source: str = "api",
    ) -> Variable:
        """Define a variable. Re-running the same definition keeps the current value
        (so re-executing a notebook cell never resets what an optimizer set); a
        different type or constraints for an existing name raises ``VariableExists``.

        The whole definition is validated locally first, and a re-run of an
        existing definition is answered from the current record: ``Program.run``
        calls this for every declared variable on every run, and on the bridged
        backend that must not cost a round trip.
        """
        record, _ = define(name, type, initial, constraints=constraints, metadata=metadata)
        existing = self._existing_definition(record)
        if existing is not None:
            return existing
        with self._gate:
            try:
                return self._provider.register(
                    name, type, initial, constraints=constraints, metadata=metadata, source=source
                )
            except VariableExists:
                existing = self._existing_definition(record)
                if existing is None:
                    raise
                return existing

    def _existing_definition(self, record: Variable) -> Variable | None:
        """The current record of ``record.name`` if it has the same definition; ``None``
        if there is no such variable; ``VariableExists`` if it is defined differently."""
        try:
            current = self._provider.get(record.name)
        except KeyError:
            return None
        if current.same_definition(record.type, record.constraints):
            return current
        raise VariableExists(
            f"variable {record.name!r} already exists as {current.type} with constraints "
            f"{dict(current.constraints)!r}, not {record.type} with {dict(record.constraints)!r}; "
            "delete it first"
        )

    def variable(self, name: str) -> Variable:
        """The full current record of ``name`` (value, version, metadata, ...)."""
        return self._provider.get(name)

    def get(self, name: str, default: Any = MISSING) -> Any:
        """The current value of ``name``; ``default`` if given and the variable is missing."""
        if default is MISSING:
            return self._provider.get(name).value
        try:
            return self._provider.get(name).value
        except KeyError:
            return default

    def set(
        self,
        name: str,
        value: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        source: str = "api",
    ) -> Variable:
        with self._gate:
            return self._provider.set(
                name, value, metadata=metadata, expected_version=expected_version, source=source
            )

    def update(
        self, name: str, fn: Callable[[Any], Any], *, source: str = "api", retries: int = 100
    ) -> Variable:
        """Atomic read-modify-write: ``fn(old) -> new``, retried on concurrent writes."""
        for _ in range(retries):
            current = self._provider.get(name)
            try:
                return self.set(
                    name, fn(current.value), expected_version=current.version, source=source
                )
            except VersionConflict:
                continue
        raise VersionConflict(name, current.version, self._provider.get(name).version)

    def get_many(self, names: Iterable[str]) -> dict[str, Any]:
        return {n: v.value for n, v in self._provider.get_many(names).items()}

    def update_many(
        self,
        updates: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_versions: Mapping[str, int] | None = None,
        source: str = "api",
    ) -> dict[str, Variable]:
        with self._gate:
            return self._provider.update_many(
                updates, metadata=metadata, expected_versions=expected_versions, source=source
            )

    def list(self) -> list[Variable]:
        return self._provider.list()

    def delete(self, name: str, *, source: str = "api") -> None:
        with self._gate:
            self._provider.delete(name, source=source)

    def export_state(self) -> dict[str, Any]:
        return self._provider.export_state()

    def import_state(
        self, snapshot: Mapping[str, Any], *, replace: bool = False, source: str | None = None
    ) -> None:
        """Restore a snapshot atomically; ``source`` (if given) marks every imported record."""
        with self._gate:
            self._provider.import_state(snapshot, replace=replace, source=source)

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
        """Call ``callback(event)`` on a dispatcher thread for each change, in version order.

        ``signals=True`` also delivers, in the same order, the events that change
        no value: ``dependency_changed`` (a variable this one depends on was
        written; right after that write), ``locked`` and ``unlocked`` (an
        optimizer lease took or left it). Only the bridged backend produces them.
        The returned handle survives the backend upgrade; pass it to :meth:`unwatch`.
        """
        with self._gate:
            return self._provider.watch(
                names,
                callback,
                include_initial=include_initial,
                filter=filter,
                debounce_ms=debounce_ms,
                signals=signals,
            )

    def unwatch(self, handle: Subscription) -> bool:
        with self._gate:
            return self._provider.unwatch(handle)

    # ------------------------------------------------------------------ runs

    def record_run(self, summary: Mapping[str, Any]) -> None:
        """Remember a finished run (a JSON-safe summary) and tell the run listeners.

        The Program layer calls this; the widgets and the lab panel listen.
        A failing listener is logged and never fails the run.
        """
        self.runs.append(summary)
        for listener in tuple(self._run_listeners):
            try:
                listener(summary)
            except Exception:
                logging.getLogger("dspex_jupyter").exception("run listener %r failed", listener)

    def add_run_listener(self, listener: Callable[[Mapping[str, Any]], Any]) -> None:
        self._run_listeners.append(listener)

    def remove_run_listener(self, listener: Callable[[Mapping[str, Any]], Any]) -> None:
        if listener in self._run_listeners:
            self._run_listeners.remove(listener)

    def lm_info(self) -> dict[str, Any]:
        """Which LM this context's bridged modules run on: the configured provider, or the
        embedded model (file, whether it is loaded, load time, slots); never an API key.

        See :mod:`dspex_jupyter.context_lm`; ``%dspex lm`` shows it.
        """
        from .context_lm import describe_lm

        return describe_lm(self.lm_config, None if self.closed else self.address)

    def note_local_lm(self, info: Mapping[str, Any]) -> None:
        """The Program layer reports here what the run that loaded the embedded model said."""
        from .context_lm import note_local_lm

        note_local_lm(None if self.closed else self.address, info)

    # ------------------------------------------------------------------ plugged in from above

    @property
    def traits(self) -> Any:
        """The variables as a ``traitlets.HasTraits`` (one trait per variable), kept in sync.

        Provided by the Jupyter layer (see :meth:`plug`), cached per context.
        """
        return self._plugin("traits")

    def widgets(self) -> Any:
        """An ipywidgets container with one control per variable (``.controls``: name -> widget)."""
        return self._plugin("widgets")

    # ------------------------------------------------------------------ display

    def __repr__(self) -> str:
        if self.closed:
            return f"<Context {self.name} stopped>"
        where = f" at {self.address}" if self.address else ""
        return (
            f"<Context {self.name} {self.backend}{where} session={self.session_id[:8]} "
            f"variables={len(self._provider.list())}>"
        )


_default: Context | None = None
_default_lock = threading.Lock()


def default_context() -> Context:
    """The kernel's default context, created on first use (and again after it is stopped)."""
    global _default
    with _default_lock:
        if _default is None or _default.closed:
            _default = Context(name="default")
        return _default
