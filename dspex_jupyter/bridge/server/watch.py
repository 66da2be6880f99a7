"""WatchVariables: a snapshot (or the backlog after a sequence number), then live events.

Needs the "observe" right on every named variable (or session-wide when no
names are given); revoking it ends open streams with ``PERMISSION_DENIED``. A
stream that falls more than ``watch_queue`` events behind ends with
``RESOURCE_EXHAUSTED`` right after the last event it was sent, and the client
resumes from that event's sequence number (docs/architecture.md, watch
protocol). An open stream keeps its session alive, and the connection's
(``dspex-client``) leases end a short grace after its last stream closes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import grpc

from ... import errors as E
from .. import convert as C
from .._proto import dspex_bridge_pb2 as pb
from ..errors import OutOfRange
from .core import ServicerCore
from .rpc import Call, rpc
from .session import CLOSED, DENIED, GONE, LIVE, OVERFLOW, Session, Watcher

__all__ = ["WatchMixin"]


def _watched(request: Any) -> list[str] | None:
    return sorted(set(request.names)) or None


class WatchMixin(ServicerCore):
    @rpc("observe", names=_watched)
    def WatchVariables(self, request: Any, call: Call) -> Iterator[pb.WatchMessage]:
        names = frozenset(request.names) or None
        watcher = Watcher(names, self.watch_queue, call.caller.principal)
        client = call.caller.client
        with call.locked() as session:
            first = self._watch_start(session, request, names)
            self.stream_slots.take(watcher.principal)
            session.watchers.add(watcher)
            if client:
                session.clients[client] = session.clients.get(client, 0) + 1
                session.leases.connected(client, True, time.time())
        context = call.context
        if not context.add_callback(lambda: watcher.end(CLOSED)):
            watcher.end(CLOSED)  # the call already ended: do not wait for events
        last = 0
        try:
            yield from first
            while True:
                items, state = watcher.take()
                for item in items:
                    last = item.event.seq
                    yield item
                if state == OVERFLOW:
                    context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"watcher fell more than {self.watch_queue} events behind; "
                        f"resume after seq {last}",
                    )
                if state == GONE:
                    raise E.SessionNotFound(f"session {session.id!r} was cleaned up")
                if state == DENIED:
                    raise E.AccessDenied(
                        f"the 'observe' right of {watcher.principal or 'this caller'!r} "
                        f"on session {session.id!r} was revoked"
                    )
                if state != LIVE:
                    return
        finally:
            self.stream_slots.give(watcher.principal)
            with session.lock:
                session.watchers.discard(watcher)
                session.last_seen = time.time()
                if client:
                    left = session.clients.get(client, 1) - 1
                    if left > 0:
                        session.clients[client] = left
                    else:  # its leases end after a short grace unless it comes back
                        session.clients.pop(client, None)
                        session.leases.connected(client, False, time.time())

    def _watch_start(
        self, session: Session, request: Any, names: frozenset[str] | None
    ) -> list[pb.WatchMessage]:
        if not request.resume:
            records = [
                C.record_to_pb(r)
                for r in session.table.records()
                if names is None or r.name in names
            ]
            return [pb.WatchMessage(snapshot=pb.Snapshot(records=records, seq=session.last_seq))]
        after = request.after_seq
        oldest = session.events[0][0] if session.events else session.last_seq + 1
        if after > session.last_seq or after < oldest - 1:
            raise OutOfRange(
                f"cannot resume after seq {after}: this session retains seq {oldest}.."
                f"{session.last_seq}; re-read a snapshot"
            )
        backlog = [
            m
            for seq, m in session.events
            if seq > after and (names is None or m.event.name in names)
        ]
        return [*backlog, pb.WatchMessage(caught_up=pb.CaughtUp(seq=session.last_seq))]
