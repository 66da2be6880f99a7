"""``LocalState``: the in-kernel backend every context starts on.

Reads take no lock: the current record of a variable is an immutable tuple
replaced atomically, so a dict lookup is a consistent read. Writes take one
lock, validate through the shared :class:`VariableTable`, and offer the event
to subscribers before releasing it, which is what keeps events in version
order; delivery itself happens on each subscription's own thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import ValidationError, VariableNotFound
from ..variables.record import Variable, WatchEvent
from ..variables.table import VariableTable, define
from .provider import StateProvider
from .watch import Subscription, WatchFilter, WatchHub, check_watch_names

__all__ = ["LocalState"]


class LocalState(StateProvider):
    name = "local"
    requires_bridge = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._publish_lock = self._lock
        self._table = VariableTable()
        self._variables = self._table.variables  # read path: one dict lookup
        self._hub = WatchHub()

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
        record, validator = define(
            name, type, initial, constraints=constraints, metadata=metadata, source=source
        )
        with self._lock:
            event = self._table.register(record, validator)
            self._hub.publish(event)
        return record

    def get(self, name: str) -> Variable:
        try:
            return self._variables[name]
        except KeyError:
            raise VariableNotFound(name, self._variables) from None

    def set(
        self,
        name: str,
        value: Any,
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        source: str = "api",
    ) -> Variable:
        with self._lock:
            record = self._table.prepare_set(
                name, value, metadata=metadata, expected_version=expected_version, source=source
            )
            event = self._table.apply(record)
            if self._hub:
                self._hub.publish(event)
        return record

    def delete(self, name: str, *, source: str = "api") -> None:
        with self._lock:
            self._hub.publish(self._table.delete(name, source))

    def list(self) -> list[Variable]:
        return self._table.records()

    def get_many(self, names: Iterable[str]) -> dict[str, Variable]:
        if isinstance(names, str):
            raise ValidationError("get_many expects a list of names, not a single string")
        snapshot = dict(self._variables)  # one consistent view
        result = {}
        for name in names:
            try:
                result[name] = snapshot[name]
            except KeyError:
                raise VariableNotFound(name, snapshot) from None
        return result

    def update_many(
        self,
        updates: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
        *,
        expected_versions: Mapping[str, int] | None = None,
        source: str = "api",
    ) -> dict[str, Variable]:
        with self._lock:
            records, events = self._table.update_many(
                updates, metadata=metadata, expected_versions=expected_versions, source=source
            )
            for event in events:
                self._hub.publish(event)
        return records

    def export_state(self) -> dict[str, Any]:
        with self._lock:
            return self._table.export()

    def import_state(
        self, snapshot: Mapping[str, Any], *, replace: bool = False, source: str | None = None
    ) -> None:
        with self._lock:
            for event in self._table.import_(snapshot, replace=replace, source=source):
                self._hub.publish(event)

    # ------------------------------------------------------------------ watching

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
        names = check_watch_names(names)
        subscription = Subscription(
            names, callback, filter=filter, debounce_ms=debounce_ms, signals=signals
        )
        with self._lock:
            try:
                current = [self.get(n) for n in names] if names is not None else self.list()
            except VariableNotFound:
                subscription.close()
                raise
            subscription.start_from(current, include_initial)
            self._hub.add(subscription)
        return subscription

    def close(self) -> None:
        with self._lock:
            self._hub.close_all()
