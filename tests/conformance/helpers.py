"""Small helpers for watch tests: collect events and wait for them without sleeping blindly."""

from __future__ import annotations

import threading
import time

from dspex_jupyter.variables.record import WatchEvent

WAIT_S = 30.0  # generous: the machine is small and shared; a pass never waits this long


class Collector:
    """A watch callback that records events and lets a test wait for a count."""

    def __init__(self) -> None:
        self.events: list[WatchEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: WatchEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT_S) -> list[WatchEvent]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.events) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} events, got {len(self.events)}: {self.events!r}"
                    )
                self._cond.wait(remaining)
            return list(self.events)

    def flush_until(self, version: int, timeout: float = WAIT_S) -> bool:
        """Wait until an event with at least ``version`` has arrived."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(e.version >= version for e in self.events):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def versions(self, name: str | None = None) -> list[int]:
        return [e.version for e in self.events if name is None or e.name == name]
