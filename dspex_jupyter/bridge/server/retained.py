"""What a session keeps after a write: per-variable history and the event backlog.

Both hold each value once, as the decoded Python object the table already
keeps (a history record *is* the table's record; a backlog entry refers to the
same record and to the write's ``WatchEvent``, whose old and new values are the
records' own objects). The JSON text and protobuf form of a write exist only
while it is being answered and fanned out; a backlog entry is turned back into
a stream message only when a watcher resumes through it. Without this sharing a
1 MiB value retained about 4-5 MB (value, old/new JSON, record JSON).

``History`` also accounts the bytes it keeps (each record's protobuf size),
which is what ``--max-session-bytes`` budgets.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator

from ...variables.record import Variable, WatchEvent
from .. import convert as C
from .._proto import dspex_bridge_pb2 as pb
from ..production import SIGNAL_KINDS

__all__ = ["History", "EventLog", "watch_message"]


class History:
    """One variable's kept records, oldest first, at most ``keep``, with their byte sizes."""

    __slots__ = ("records", "sizes", "keep", "bytes")

    def __init__(self, keep: int) -> None:
        self.records: collections.deque[Variable] = collections.deque()
        self.sizes: collections.deque[int] = collections.deque()
        self.keep = keep
        self.bytes = 0

    def append(self, record: Variable, size: int) -> int:
        """Keep ``record``; return the bytes this frees net (negative: it grew)."""
        self.records.append(record)
        self.sizes.append(size)
        freed = -size
        while len(self.records) > self.keep:
            self.records.popleft()
            freed += self.sizes.popleft()
        self.bytes -= freed
        return freed

    def freed_by_next(self) -> int:
        """The bytes the next :meth:`append` trims (the oldest record, once full)."""
        return self.sizes[0] if len(self.records) >= self.keep and self.sizes else 0

    def __iter__(self) -> Iterator[Variable]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)


#: A backlog entry: a prebuilt message (restored from the store) or how to build one.
Entry = pb.WatchMessage | Callable[[], pb.WatchMessage]


class EventLog:
    """The last ``limit`` events as ``(seq, message)``; messages are built on demand.

    Besides the count, the values the backlog alone keeps alive (after history
    trimmed them or their variable was deleted) are bounded: :meth:`append` drops
    the oldest entries while those referenced exceed ``max_bytes``, so a session
    keeps at most about twice ``--max-session-bytes``. A watcher resuming from
    before the oldest entry re-reads a snapshot (docs/architecture.md, watch
    protocol).
    """

    __slots__ = ("_entries", "_limit", "bytes")

    def __init__(self, limit: int) -> None:
        self._entries: collections.deque[tuple[int, Entry, int]] = collections.deque()
        self._limit = limit
        self.bytes = 0

    def append(self, seq: int, entry: Entry, size: int = 0, max_bytes: int = 0) -> None:
        """Keep ``entry`` (``size``: the bytes of the record it refers to)."""
        self._entries.append((seq, entry, size))
        self.bytes += size
        while len(self._entries) > self._limit or (
            max_bytes and self.bytes > max_bytes and len(self._entries) > 1
        ):
            self.bytes -= self._entries.popleft()[2]

    @staticmethod
    def _message(entry: Entry) -> pb.WatchMessage:
        return entry if isinstance(entry, pb.WatchMessage) else entry()

    def __getitem__(self, index: int) -> tuple[int, pb.WatchMessage]:
        seq, entry, _ = self._entries[index]
        return seq, self._message(entry)

    def __iter__(self) -> Iterator[tuple[int, pb.WatchMessage]]:
        for seq, entry, _ in list(self._entries):
            yield seq, self._message(entry)

    def __len__(self) -> int:
        return len(self._entries)


def watch_message(
    seq: int,
    event: WatchEvent,
    record: Variable | None,
    record_pb: pb.VariableRecord | None,
    more: bool,
) -> pb.WatchMessage:
    """The stream message of one committed event (``record_pb``: its record, if built)."""
    if record is not None and record_pb is None:
        record_pb = C.record_to_pb(record)
    if event.kind in SIGNAL_KINDS:  # the event's own metadata, with the current record alongside
        event_pb = C.event_to_pb(seq, event, None)
        if record_pb is not None:
            event_pb.record.CopyFrom(record_pb)
    else:
        event_pb = C.event_to_pb(seq, event, record, record_pb)
    if more:
        event_pb.more = True
    return pb.WatchMessage(event=event_pb)
