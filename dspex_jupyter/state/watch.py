"""Watch subscriptions and their delivery, shared by every backend.

A :class:`Subscription` is a small actor: backends *offer* it events (cheap,
non-blocking, safe to call while holding a backend lock) and its own daemon
thread delivers them to the callback in order. So a slow or failing callback
delays only its own subscription; writers and other watchers never wait.

A subscription remembers the last version it accepted per variable and drops
anything older or equal. That is what lets the context move a subscription
from ``LocalState`` to ``BridgedState`` during an upgrade without a gap or a
duplicate: whichever backend offers an event first, it is delivered once.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ValidationError
from ..variables.record import SIGNAL_KINDS, Variable, WatchEvent

__all__ = [
    "Subscription",
    "WatchHub",
    "WatchCallback",
    "WatchFilter",
    "check_watch_names",
    "initial_event",
]

log = logging.getLogger("dspex_jupyter.watch")

WatchCallback = Callable[[WatchEvent], Any]
WatchFilter = Callable[[Any, Any], bool]

_STOP = object()
_ids = itertools.count(1)


class Subscription:
    """A watch handle: pass it to ``unwatch``. ``errors`` counts callback failures."""

    def __init__(
        self,
        names: Iterable[str] | None,
        callback: WatchCallback,
        *,
        filter: WatchFilter | None = None,
        debounce_ms: float = 0,
        signals: bool = False,
    ) -> None:
        if not callable(callback):
            raise ValidationError(f"watch callback must be callable, got {callback!r}")
        if not isinstance(debounce_ms, (int, float)) or debounce_ms < 0:
            raise ValidationError(f"debounce_ms must be >= 0, got {debounce_ms!r}")
        self.id = next(_ids)
        self.names: frozenset[str] | None = None if names is None else frozenset(names)
        self.callback = callback
        self.filter = filter
        self.debounce = debounce_ms / 1000.0
        #: Also deliver the signal kinds (``dependency_changed``, ``locked``, ``unlocked``).
        self.signals = bool(signals)
        self.errors = 0
        self.last_error: BaseException | None = None
        self.delivered = 0
        self._last_version: dict[str, int] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._offer_lock = threading.Lock()
        self._idle = threading.Condition()
        self._pending = 0
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"dspex-watch-{self.id}", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ producer side

    def wants(self, name: str) -> bool:
        return self.names is None or name in self.names

    def offer(self, event: WatchEvent) -> None:
        """Queue an event unless it was already seen; never blocks on the callback."""
        if self._closed or (self.names is not None and event.name not in self.names):
            return
        if event.kind in SIGNAL_KINDS:  # no version of their own: never deduplicated
            if not self.signals:
                return
            with self._idle:
                self._pending += 1
            self._queue.put(event)
            return
        with self._offer_lock:
            if event.kind != "initial":
                last = self._last_version.get(event.name)
                if last is not None and event.version <= last:
                    return
                if event.kind == "deleted":
                    self._last_version.pop(event.name, None)
                else:
                    self._last_version[event.name] = event.version
            with self._idle:
                self._pending += 1
            self._queue.put(event)

    def start_from(self, records: Iterable[Variable], include_initial: bool) -> None:
        """Take ``records`` as the starting state: their versions need no delivery, and
        with ``include_initial`` each is offered once as an ``initial`` event. Backends
        call this under the lock they publish with, just before adding the subscription."""
        for record in records:
            self.seen(record.name, record.version)
            if include_initial:
                self.offer(initial_event(record))

    def seen(self, name: str, version: int) -> None:
        """Record that ``version`` of ``name`` needs no delivery (it is the starting state)."""
        with self._offer_lock:
            if version > self._last_version.get(name, 0):
                self._last_version[name] = version

    # ------------------------------------------------------------------ lifecycle

    @property
    def active(self) -> bool:
        return not self._closed

    def close(self) -> None:
        """Stop delivering. Events already queued are dropped; a running callback finishes."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every offered event has been delivered; True if it was."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def __repr__(self) -> str:
        names = "*" if self.names is None else ",".join(sorted(self.names))
        state = "active" if self.active else "closed"
        return f"<Subscription #{self.id} [{names}] {state}, {self.delivered} delivered>"

    # ------------------------------------------------------------------ consumer side

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            taken = [item]
            if self.debounce:
                gathered = self._gather(taken)
                if gathered is None:
                    return
                taken = gathered
            for event in _coalesce(taken) if self.debounce else taken:
                if self._closed:
                    return
                self._deliver(event)
            with self._idle:
                self._pending = max(0, self._pending - len(taken))
                if not self._pending:
                    self._idle.notify_all()

    def _gather(self, items: list[Any]) -> list[Any] | None:
        """Take every event that arrives within ``debounce`` of the first one."""
        deadline = time.monotonic() + self.debounce
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is _STOP:
                return None
            items.append(item)
        return items

    def _deliver(self, event: WatchEvent) -> None:
        try:
            if (
                self.filter is not None
                and event.kind == "set"
                and not self.filter(event.old_value, event.new_value)
            ):
                return
            self.callback(event)
            self.delivered += 1
        except Exception as exc:  # a watcher's bug must not kill delivery
            self.errors += 1
            self.last_error = exc
            log.exception(
                "watch callback %r failed on %s v%s", self.callback, event.name, event.version
            )


def _coalesce(events: list[WatchEvent]) -> list[WatchEvent]:
    """Per variable, one event with the first old value and the latest new value."""
    merged: dict[Any, WatchEvent] = {}
    for event in events:
        key = (event.name, event.kind) if event.kind in SIGNAL_KINDS else event.name
        first = merged.pop(key, None)
        merged[key] = event if first is None else event._replace(old_value=first.old_value)
    return list(merged.values())


class WatchHub:
    """The subscriptions of one backend. ``publish`` is cheap when nobody watches."""

    __slots__ = ("_subs",)

    def __init__(self) -> None:
        self._subs: tuple[Subscription, ...] = ()

    def __bool__(self) -> bool:
        return bool(self._subs)

    def add(self, subscription: Subscription) -> None:
        self._subs = (*self._subs, subscription)

    def remove(self, subscription: Subscription) -> bool:
        before = len(self._subs)
        self._subs = tuple(s for s in self._subs if s is not subscription)
        return len(self._subs) != before

    def detach_all(self) -> list[Subscription]:
        subs, self._subs = list(self._subs), ()
        return subs

    def publish(self, event: WatchEvent) -> None:
        for sub in self._subs:
            sub.offer(event)

    def close_all(self) -> None:
        for sub in self.detach_all():
            sub.close()

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return self._subs


def check_watch_names(names: Iterable[str] | str | None) -> list[str] | None:
    """``None`` means every variable; a single string is one name."""
    if names is None:
        return None
    if isinstance(names, str):
        return [names]
    names = list(names)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValidationError(f"watch expects variable names (or None for all), got {names!r}")
    return names


def initial_event(record: Variable) -> WatchEvent:
    """The event ``include_initial`` delivers: the current value, with no old value."""
    return WatchEvent.change(record, "initial")
