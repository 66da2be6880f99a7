"""The slot a context keeps its backend in: a switch gate, and the stopped placeholder.

A context may swap its backend (``LocalState`` -> ``BridgedState``) while
other threads use it. Writes pass the :class:`SwitchGate`: any number of
writers at once, or one switch with no writer in flight. Reads need no gate:
until the swap the old backend answers them consistently, since no write can
land while the switch runs. See ``docs/architecture.md`` (the upgrade protocol).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ContextClosed

__all__ = ["SwitchGate", "Stopped"]


class SwitchGate:
    """Many writers at once, or one backend switch with no writer in flight."""

    __slots__ = ("_cond", "_writers", "_switching")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._writers = 0
        self._switching = False

    def __enter__(self) -> None:
        with self._cond:
            while self._switching:
                self._cond.wait()
            self._writers += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._writers -= 1
            if self._switching and not self._writers:
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Wait for the writers in flight to finish and keep new ones out."""
        with self._cond:
            while self._switching:
                self._cond.wait()
            self._switching = True
            while self._writers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._switching = False
                self._cond.notify_all()


class Stopped:
    """Stands in for the backend after ``stop()``: every use says so clearly."""

    name = "stopped"
    requires_bridge = False

    def __getattr__(self, operation: str) -> Any:
        raise ContextClosed(
            f"this context was stopped; cannot {operation!r} (start a new one with Context.start())"
        )
