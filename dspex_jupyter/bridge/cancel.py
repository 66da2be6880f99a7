"""Cancel scopes: bridged calls that an evaluation can cancel together.

An evaluation runs each example on a kernel thread that blocks in an
``ExecuteModule`` call. A Ctrl-C (or a timed-out example) must end those calls
on the server too, not leave them running to completion in the worker pool.
The example's thread enters ``with scope.active():``; every bridged call made
on that thread registers its gRPC future with the scope, and
:meth:`CancelScope.cancel` (from any thread) cancels them, plus any call the
thread starts afterwards. The server sees the cancellation and tells the worker
pool to drop the run (see ``bridge/workers.py``).

A context variable carries the scope so that the layers in between (the
runner, the context) need no new parameter. No gRPC here: a native-only
evaluation imports this module without importing gRPC.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CancelScope", "current_scope"]

_current: contextvars.ContextVar[CancelScope | None] = contextvars.ContextVar(
    "dspex_cancel_scope", default=None
)


class CancelScope:
    """A set of in-flight cancellable calls; :meth:`cancel` ends them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: set[Any] = set()
        self.cancelled = False

    @contextmanager
    def active(self) -> Iterator[CancelScope]:
        """Make this the scope of the bridged calls made on this thread inside the block."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def track(self, call: Any) -> None:
        """Register ``call`` (anything with ``cancel()``); cancelled at once if the scope is."""
        with self._lock:
            if not self.cancelled:
                self._calls.add(call)
                return
        call.cancel()

    def untrack(self, call: Any) -> None:
        with self._lock:
            self._calls.discard(call)

    def cancel(self) -> None:
        """Cancel every registered call, and every call registered from now on."""
        with self._lock:
            self.cancelled = True
            calls, self._calls = self._calls, set()
        for call in calls:
            call.cancel()


def current_scope() -> CancelScope | None:
    """The scope entered on this thread, if any."""
    return _current.get()
