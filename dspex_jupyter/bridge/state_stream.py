"""The watch stream behind ``BridgedState``: a coherent local cache of a session.

One ``WatchVariables`` stream per ``BridgedState`` keeps a cache of the
session's variables. While that stream is live and caught up, reads are served
from the cache (a dict lookup, as fast as ``LocalState``); otherwise they go to
the server. Writes put the record the server returns into the cache
(read-your-writes) through :meth:`WatchedCache._after_write`.

Cache entries are ordered by the session-wide sequence number of the write
that produced them, not by arrival: a stream event older than what a write
already put in the cache never overwrites it, and a deletion leaves a
tombstone so that a late event cannot resurrect a variable.

Watchers are the shared :class:`Subscription` objects, fed from the stream in
sequence order. A write returns only once the stream has delivered its own
event to the subscriptions (when there are any), so "set, then flush the
watcher" behaves exactly as on ``LocalState``. After a server restart the
stream resumes from the last sequence number it applied, with no gap and no
duplicate; if that position is no longer retained it re-reads a snapshot and
tells watchers about every variable that changed meanwhile. The protocol is
described in ``docs/architecture.md`` ("The watch protocol").
"""

from __future__ import annotations

import builtins
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import grpc

from ..state.watch import Subscription, WatchFilter, WatchHub, check_watch_names
from ..variables.record import SIGNAL_KINDS, Variable, WatchEvent
from . import convert
from ._proto import dspex_bridge_pb2 as pb
from .errors import error_reason

__all__ = ["WatchedCache", "WRITE_DELIVERY_TIMEOUT_S", "SYNC_TIMEOUT_S"]

log = logging.getLogger("dspex_jupyter.bridged")

#: How long a write waits for its own event to reach the watchers before returning.
WRITE_DELIVERY_TIMEOUT_S = 10.0
#: Backoff after the server refused a stream (``--max-streams-per-principal``): first, cap (s).
BUSY_BACKOFF_S = (0.2, 30.0)


def busy_backoff(refusals: int) -> float:
    """Jittered exponential backoff after ``refusals`` consecutive stream refusals."""
    first, cap = BUSY_BACKOFF_S
    return min(cap, first * 2 ** max(refusals - 1, 0)) * random.uniform(0.5, 1.0)


#: How long the constructor waits for the first snapshot (reads use the server until then).
SYNC_TIMEOUT_S = 15.0


class WatchedCache:
    """The cache half of ``BridgedState``: the stream thread, the cache and the watchers.

    ``BridgedState`` calls :meth:`_start_stream` once its session exists and
    :meth:`_stop_stream` when it closes; everything in between runs on the
    stream thread or under ``_cond``.
    """

    session_id: str
    _stub: Any
    _md: tuple[tuple[str, str], ...]
    _publish_lock: AbstractContextManager[Any]  # as StateProvider declares it

    if TYPE_CHECKING:  # the variable reads, provided by BridgedState

        def get(self, name: str) -> Variable: ...

        def list(self) -> builtins.list[Variable]: ...

        def _fetch(self, name: str) -> Variable: ...

    def _start_stream(self) -> None:
        """Open the stream and wait (up to ``SYNC_TIMEOUT_S``) for its first snapshot."""
        self._cond = threading.Condition(threading.Lock())
        self._publish_lock = self._cond
        self._cache: dict[str, Variable] = {}
        self._cache_seq: dict[str, int] = {}
        self._seq = 0  # last sequence number applied from the stream
        self._synced = False  # a snapshot was applied at least once
        self._live = False  # the stream is up and caught up: the cache answers reads
        self._hub = WatchHub()
        self._batch: builtins.list[Any] = []  # events of an atomic write still arriving
        self._closed = False
        self._call: Any = None
        self._denied = False  # the stream was refused (no "observe" right): reads ask the server
        self._wake = threading.Event()
        self._thread = threading.Thread(
            target=self._stream_loop, name=f"dspex-bridged-{self.session_id[:8]}", daemon=True
        )
        self._thread.start()
        with self._cond:
            self._cond.wait_for(lambda: self._live or self._closed or self._denied, SYNC_TIMEOUT_S)

    def _stop_stream(self) -> bool:
        """End the stream and every watcher; False if it was already stopped."""
        with self._cond:
            if self._closed:
                return False
            self._closed = True
            self._live = False
            self._cond.notify_all()
        self._wake.set()
        call = self._call
        if call is not None:
            call.cancel()
        self._thread.join(10)
        with self._cond:
            self._hub.close_all()
        return True

    def _revalidate_stream(self) -> None:
        """Stop trusting the cache and re-open the stream (after the server denied a call).

        A denial means this caller's rights may just have changed; the server
        ends its watch stream then, but the end reaches this client a moment
        later. Until the stream is re-opened (and caught up, if still allowed),
        reads go to the server, which answers them with the current rights.
        """
        with self._cond:
            self._live = False
            call = self._call
        if call is not None:
            call.cancel()

    @property
    def live(self) -> bool:
        """Whether reads are currently served from the coherent cache."""
        return self._live

    def _record(self, msg: Any) -> Variable:
        return convert.record_from_pb(msg)

    def _after_write(self, writes: builtins.list[tuple[int, str, Variable | None]]) -> None:
        """Put returned records in the cache; wait until watchers were offered their events."""
        if not writes:
            return
        with self._cond:
            for seq, name, record in writes:
                if seq > self._cache_seq.get(name, 0):
                    self._cache_seq[name] = seq
                    if record is None:
                        self._cache.pop(name, None)
                    else:
                        self._cache[name] = record
            if self._hub and self._live:
                last = max(seq for seq, _, _ in writes)
                self._cond.wait_for(
                    lambda: self._seq >= last or not self._live, WRITE_DELIVERY_TIMEOUT_S
                )

    # ------------------------------------------------------------------ the stream

    def _stream_loop(self) -> None:
        backoff = 0.05
        refusals = 0  # consecutive TooManyStreams refusals
        resync = False
        last_logged = None
        while not self._closed:
            resume = self._synced and not resync
            request = pb.WatchRequest(
                session_id=self.session_id, resume=resume, after_seq=self._seq if resume else 0
            )
            try:
                self._batch = []
                call = self._stub.WatchVariables(request, metadata=self._md)
                self._call = call
                if self._closed:
                    call.cancel()
                    break
                for message in call:
                    kind = message.WhichOneof("body")
                    if kind == "event":
                        self._on_event(message.event)
                    elif kind == "snapshot":
                        self._on_snapshot(message.snapshot, resync)
                        resync = False
                    elif kind == "caught_up":
                        with self._cond:
                            self._live = True
                            self._denied = False
                            self._cond.notify_all()
                    backoff, last_logged, refusals = 0.05, None, 0
            except grpc.RpcError as err:
                if self._closed:
                    break
                code = err.code()
                if code == grpc.StatusCode.PERMISSION_DENIED:
                    with self._cond:  # no "observe" right (yet): serve reads from the server
                        self._denied = True
                        self._cond.notify_all()
                    backoff = 5.0  # a grant may come later
                elif code == grpc.StatusCode.OUT_OF_RANGE:
                    resync = True  # our position is gone: re-read a snapshot
                elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    if error_reason(err) == "TooManyStreams":
                        refusals += 1  # the server is at its stream cap: back off
                        if refusals == 1:
                            log.warning("watch stream refused: %s (backing off)", err.details())
                    else:
                        backoff = 0.0  # we fell behind: resume at once from our last seq
                elif code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                    if code != last_logged:  # once per kind of failure, not once per retry
                        log.warning(
                            "watch stream of session %s ended: %s %s (retrying)",
                            self.session_id,
                            code,
                            err.details(),
                        )
                    last_logged = code
            except Exception:  # never let the cache thread die silently
                log.exception("watch stream of session %s failed", self.session_id)
            with self._cond:
                self._live = False
                self._cond.notify_all()
            delay = busy_backoff(refusals) if refusals else backoff
            if self._closed or self._wake.wait(delay):
                break
            backoff = min(max(backoff * 2, 0.05), 5.0 if self._denied else 1.0)

    def _on_event(self, msg: Any) -> None:
        if msg.more:  # part of an atomic batch: apply it whole, with its last event
            self._batch.append(msg)
            return
        batch, self._batch = [*self._batch, msg], []
        with self._cond:
            for event in batch:
                seq = event.seq
                if seq <= self._seq:
                    continue  # already applied (a replay overlapping what we had)
                self._seq = seq
                name = event.name
                cached = self._cache.get(name)
                if event.kind in SIGNAL_KINDS:  # no value change: only watchers care
                    if self._hub:
                        self._hub.publish(convert.event_from_pb(event, None))
                    continue
                if seq > self._cache_seq.get(name, 0):
                    self._cache_seq[name] = seq
                    if event.kind == "deleted":
                        self._cache.pop(name, None)
                    else:
                        self._cache[name] = self._record(event.record)
                if self._hub:
                    type_name = cached.type if cached is not None else None
                    self._hub.publish(convert.event_from_pb(event, type_name))
            self._cond.notify_all()

    def _on_snapshot(self, snap: Any, resync: bool) -> None:
        with self._cond:
            fresh = {r.name: self._record(r) for r in snap.records}
            old = self._cache
            merged: dict[str, Variable] = {}
            seqs: dict[str, int] = {}
            for name, record in fresh.items():
                merged[name] = record
                seqs[name] = snap.seq
            for name, seq in self._cache_seq.items():
                if seq > snap.seq:  # our own write, newer than the snapshot
                    seqs[name] = seq
                    if name in old:
                        merged[name] = old[name]
                    else:
                        merged.pop(name, None)
            if resync and self._hub:
                self._publish_diff(old, merged)
            self._cache, self._cache_seq = merged, seqs
            self._seq = max(self._seq, snap.seq) if not resync else snap.seq
            self._synced = True
            self._live = True
            self._denied = False
            self._cond.notify_all()

    def _publish_diff(self, old: Mapping[str, Variable], new: Mapping[str, Variable]) -> None:
        """After a gap we could not replay, tell watchers what changed meanwhile."""
        for name, record in new.items():
            before = old.get(name)
            if before is None or before.version != record.version:
                self._hub.publish(
                    WatchEvent.change(record, "registered")
                    if before is None
                    else WatchEvent.change(record, "set", before.value)
                )
        for name, before in old.items():
            if name not in new:
                self._hub.publish(WatchEvent.deleted(before, "sync", time.time()))

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
        try:
            with self._cond:
                if self._live:
                    if names is None:
                        current = sorted(self._cache.values(), key=lambda v: v.name)
                    else:
                        # a name missing from the cache may be too new to be streamed yet
                        current = [self._cache.get(n) or self._fetch(n) for n in names]
                else:
                    current = self.list() if names is None else [self.get(n) for n in names]
                subscription.start_from(current, include_initial)
                self._hub.add(subscription)
        except BaseException:
            subscription.close()
            raise
        return subscription
