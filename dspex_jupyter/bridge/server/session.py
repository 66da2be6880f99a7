"""A session's live state on the server, and one watch stream's queue.

Each session serializes its writes with one lock (``Session.lock``); every field
of a :class:`Session` is guarded by it. Watch fan-out never blocks a writer:
each watcher has a bounded queue; a watcher that falls more than ``limit``
events behind is marked overflowed, and its stream ends with
``RESOURCE_EXHAUSTED`` right after the last event it was sent.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from ...variables.record import Variable, WatchEvent
from ...variables.table import VariableTable
from .. import convert as C
from .._proto import dspex_bridge_pb2 as pb
from ..production import AccessControl, DependencyGraph, Leases
from .retained import EventLog, History

__all__ = [
    "Session",
    "Watcher",
    "LIVE",
    "OVERFLOW",
    "CLOSED",
    "GONE",
    "DENIED",
    "EVENT_LIMIT",
    "HISTORY_LIMIT",
    "WATCH_QUEUE",
    "MAX_STREAMS_PER_PRINCIPAL",
    "StreamSlots",
    "event_dict",
    "event_message",
]

HISTORY_LIMIT = 1000
EVENT_LIMIT = 10_000
WATCH_QUEUE = 4096
MAX_STREAMS_PER_PRINCIPAL = 256
STREAM_YIELD_S = 0.0002  # see Watcher.take

#: A watcher's state: streaming, fell behind, stream ended, session dropped, right revoked.
LIVE, OVERFLOW, CLOSED, GONE, DENIED = range(5)


class Watcher:
    """One stream's bounded queue of prebuilt messages."""

    __slots__ = ("names", "items", "cond", "state", "limit", "principal")

    def __init__(self, names: frozenset[str] | None, limit: int, principal: str = "") -> None:
        self.names = names
        self.principal = principal
        self.items: collections.deque[pb.WatchMessage] = collections.deque()
        self.cond = threading.Condition(threading.Lock())
        self.state = LIVE
        self.limit = limit

    def push(self, name: str, message: pb.WatchMessage) -> None:
        if self.names is not None and name not in self.names:
            return
        with self.cond:
            if self.state != LIVE:
                return
            if len(self.items) >= self.limit:
                self.state = OVERFLOW  # never block the writer: tell the watcher instead
            else:
                self.items.append(message)
            self.cond.notify()

    def end(self, state: int) -> None:
        with self.cond:
            if self.state == LIVE:
                self.state = state
            self.cond.notify()

    def take(self) -> tuple[list[pb.WatchMessage], int]:
        with self.cond:
            if not self.items and self.state == LIVE:
                while not self.items and self.state == LIVE:
                    self.cond.wait()
                if self.state == LIVE and STREAM_YIELD_S:
                    # Just woken by a writer that still has to send its reply: step
                    # aside briefly so the two threads do not fight over the GIL
                    # (it also gathers the writer's batch into one wake-up).
                    self.cond.release()
                    try:
                        time.sleep(STREAM_YIELD_S)
                    finally:
                        self.cond.acquire()
            items = list(self.items)
            self.items.clear()
            return items, self.state


class StreamSlots:
    """Open watch streams per principal, capped (``--max-streams-per-principal``).

    A stream beyond the cap is refused with ``TooManyStreams``
    (``RESOURCE_EXHAUSTED``) instead of taking a server thread.
    """

    def __init__(self, limit: int = MAX_STREAMS_PER_PRINCIPAL) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, principal: str) -> None:
        from ..errors import TooManyStreams

        with self._lock:
            held = self._open.get(principal, 0)
            if held >= self.limit:
                raise TooManyStreams(
                    f"{principal or 'this caller'!r} already has {held} open watch streams, "
                    f"the most this server allows per principal "
                    f"(--max-streams-per-principal {self.limit}); close one or retry later"
                )
            self._open[principal] = held + 1

    def give(self, principal: str) -> None:
        with self._lock:
            left = self._open.get(principal, 1) - 1
            if left > 0:
                self._open[principal] = left
            else:
                self._open.pop(principal, None)


class Session:
    """The live state of one session; every field is guarded by ``lock``."""

    def __init__(
        self, session_id: str, ttl_s: float, created_at: float, event_limit: int = EVENT_LIMIT
    ) -> None:
        self.id = session_id
        self.ttl_s = ttl_s
        self.created_at = created_at
        self.last_seen = time.time()
        self.lock = threading.Lock()
        self.table = VariableTable()
        self.history: dict[str, History] = {}
        #: The bytes the histories keep (every current record is its history's newest).
        self.bytes = 0
        self.events = EventLog(event_limit)
        self.last_seq = 0
        self.watchers: set[Watcher] = set()
        self.gone = False
        self.graph = DependencyGraph()
        self.leases = Leases()
        self.acl = AccessControl()
        self.clients: dict[str, int] = {}  # connection id -> open watch streams

    def info(self, created: bool = False) -> pb.SessionInfo:
        return pb.SessionInfo(
            session_id=self.id,
            ttl_s=self.ttl_s,
            created_at=self.created_at,
            expires_at=self.last_seen + self.ttl_s,
            last_seq=self.last_seq,
            variable_count=len(self.table),
            created=created,
        )

    def expired(self, now: float) -> bool:
        return not self.watchers and now > self.last_seen + self.ttl_s


def event_dict(seq: int, event: WatchEvent, record: Variable | None, more: bool) -> dict[str, Any]:
    """An event as the store keeps it (JSON-safe), with its sequence number and record."""
    data = event.to_dict()
    data["seq"] = seq
    data["more"] = more
    data["record"] = None if record is None else record.to_dict()
    return data


def event_message(data: dict[str, Any]) -> pb.WatchMessage:
    """The prebuilt stream message of a stored event dict."""
    msg = pb.Event(
        seq=data["seq"],
        name=data["name"],
        kind=data["kind"],
        old_value_json=C.dumps(data["old_value"]),
        new_value_json=C.dumps(data["new_value"]),
        version=data["version"],
        source=data["source"],
        timestamp=data["timestamp"],
        metadata_json=C.dumps_map(data["metadata"]),
        more=bool(data.get("more")),
    )
    record = data.get("record")
    if record is not None:
        msg.record.CopyFrom(
            pb.VariableRecord(
                name=record["name"],
                type=record["type"],
                value_json=C.dumps(record["value"]),
                constraints_json=C.dumps_map(record["constraints"]),
                version=record["version"],
                metadata_json=C.dumps_map(record["metadata"]),
                source=record["source"],
                timestamp=record["timestamp"],
            )
        )
    return pb.WatchMessage(event=msg)
