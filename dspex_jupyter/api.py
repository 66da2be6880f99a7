"""``Variables``: the variable API as thin functions over a context (see the README).

Every function takes the context first; ``None`` means :func:`default_context`.
The caller never needs to know which backend is active.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .context import MISSING, Context, default_context
from .state.watch import Subscription, WatchFilter
from .variables.record import Variable, WatchEvent

__all__ = ["Variables"]


def _ctx(ctx: Context | None) -> Context:
    return default_context() if ctx is None else ctx


class Variables:
    """Define, read, write and watch a context's variables."""

    @staticmethod
    def defvariable(
        ctx: Context | None,
        name: str,
        type: str | builtins.type,
        *,
        initial: Any,
        constraints: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        source: str = "api",
    ) -> Variable:
        """Define ``name``; re-running the same definition keeps the current value."""
        return _ctx(ctx).defvariable(
            name, type, initial=initial, constraints=constraints, metadata=metadata, source=source
        )

    @staticmethod
    def get(ctx: Context | None, name: str, default: Any = MISSING) -> Any:
        return _ctx(ctx).get(name, default)

    @staticmethod
    def info(ctx: Context | None, name: str) -> Variable:
        """The full record: value, type, constraints, version, metadata, source, time."""
        return _ctx(ctx).variable(name)

    @staticmethod
    def set(
        ctx: Context | None,
        name: str,
        value: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        source: str = "api",
    ) -> Variable:
        """Write ``value`` (validated); ``metadata`` is merged into the variable's metadata."""
        return _ctx(ctx).set(
            name, value, metadata=metadata, expected_version=expected_version, source=source
        )

    @staticmethod
    def update(
        ctx: Context | None,
        name: str,
        fn: Callable[[Any], Any],
        *,
        source: str = "api",
        retries: int = 100,
    ) -> Variable:
        """Atomic ``value = fn(value)``, retried if another writer got there first."""
        return _ctx(ctx).update(name, fn, source=source, retries=retries)

    @staticmethod
    def get_many(ctx: Context | None, names: Iterable[str]) -> dict[str, Any]:
        return _ctx(ctx).get_many(names)

    @staticmethod
    def update_many(
        ctx: Context | None,
        updates: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_versions: Mapping[str, int] | None = None,
        source: str = "api",
    ) -> dict[str, Variable]:
        """Write several variables at once: all succeed or none changes."""
        return _ctx(ctx).update_many(
            updates, metadata=metadata, expected_versions=expected_versions, source=source
        )

    @staticmethod
    def list(ctx: Context | None = None) -> builtins.list[Variable]:
        return _ctx(ctx).list()

    @staticmethod
    def delete(ctx: Context | None, name: str, *, source: str = "api") -> None:
        _ctx(ctx).delete(name, source=source)

    @staticmethod
    def watch(
        ctx: Context | None,
        names: Iterable[str] | str | None,
        callback: Callable[[WatchEvent], Any],
        *,
        include_initial: bool = False,
        filter: WatchFilter | None = None,
        debounce_ms: float = 0,
        signals: bool = False,
    ) -> Subscription:
        return _ctx(ctx).watch(
            names,
            callback,
            include_initial=include_initial,
            filter=filter,
            debounce_ms=debounce_ms,
            signals=signals,
        )

    @staticmethod
    def unwatch(ctx: Context | None, handle: Subscription) -> bool:
        return _ctx(ctx).unwatch(handle)

    @staticmethod
    def history(
        ctx: Context | None, name: str, limit: int | None = None
    ) -> builtins.list[Variable]:
        """Past versions of ``name`` (bridged backend)."""
        return _ctx(ctx).history(name, limit)

    @staticmethod
    def rollback(ctx: Context | None, name: str, version: int) -> Variable:
        """Write an earlier version's value again, as a new version (bridged backend)."""
        return _ctx(ctx).rollback(name, version)
