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

from ...variables.record import Variable
from .._proto import dspex_bridge_pb2 as pb

__all__ = ["History", "EventLog"]


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
    """The last ``limit`` events as ``(seq, message)``; messages are built on demand."""

    __slots__ = ("_entries",)

    def __init__(self, limit: int) -> None:
        self._entries: collections.deque[tuple[int, Entry]] = collections.deque(maxlen=limit)

    def append(self, seq: int, entry: Entry) -> None:
        self._entries.append((seq, entry))

    @staticmethod
    def _message(entry: Entry) -> pb.WatchMessage:
        return entry if isinstance(entry, pb.WatchMessage) else entry()

    def __getitem__(self, index: int) -> tuple[int, pb.WatchMessage]:
        seq, entry = self._entries[index]
        return seq, self._message(entry)

    def __iter__(self) -> Iterator[tuple[int, pb.WatchMessage]]:
        for seq, entry in list(self._entries):
            yield seq, self._message(entry)

    def __len__(self) -> int:
        return len(self._entries)
