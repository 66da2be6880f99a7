"""Where a bridge server keeps its sessions: in memory, or durably in SQLite.

The server owns the live state (a ``VariableTable`` per session, the recent
event log, per-variable history) and calls the store inside each session's
write lock. ``SqliteStore.commit`` returns only after the transaction is
committed with ``synchronous=FULL`` in WAL mode, and the server acknowledges a
write only after ``commit`` returns: that is the whole durability argument for
"every acknowledged write survives ``kill -9``".
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from ..variables.record import Variable

__all__ = ["Store", "MemoryStore", "SqliteStore", "SessionData", "open_store"]


@dataclass
class SessionData:
    """A session as reloaded from a store at server start."""

    session_id: str
    ttl_s: float
    created_at: float
    last_seq: int
    variables: list[dict[str, Any]] = field(default_factory=list)
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: JSON-safe per-session settings: "dependencies" (edges), "owner", "acl".
    meta: dict[str, Any] = field(default_factory=dict)


class Store:
    """The in-memory store: nothing to persist, nothing to reload."""

    name = "memory"
    durable = False

    def load(self, history_limit: int, event_limit: int) -> list[SessionData]:
        return []

    def save_session(self, session_id: str, ttl_s: float, created_at: float) -> None:
        pass

    def drop_session(self, session_id: str) -> None:
        pass

    def commit(
        self,
        session_id: str,
        last_seq: int,
        upserts: Sequence[Variable],
        deletes: Sequence[str],
        events: Sequence[tuple[int, dict[str, Any]]],
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Persist one write: current records, deletions (their history goes too),
        the history rows (= the upserted records), the events and changed session
        settings (``meta``), atomically."""

    def save_meta(self, session_id: str, meta: dict[str, Any]) -> None:
        """Persist session settings (dependency edges, owner, ACL); key -> JSON-safe value."""

    def close(self) -> None:
        pass


MemoryStore = Store


class SqliteStore(Store):
    """SQLite in WAL mode with ``synchronous=FULL``: a commit survives a crash."""

    name = "sqlite"
    durable = True

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY, ttl_s REAL NOT NULL, created_at REAL NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS variables (
        session TEXT NOT NULL, name TEXT NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (session, name));
    CREATE TABLE IF NOT EXISTS history (
        session TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
        record TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS history_by_name ON history (session, name, version);
    CREATE TABLE IF NOT EXISTS events (
        session TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
        PRIMARY KEY (session, seq));
    CREATE TABLE IF NOT EXISTS session_meta (
        session TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (session, key));
    """

    def __init__(self, path: str, event_limit: int = 10_000, history_keep: int = 1000) -> None:
        self.path = path
        self._event_limit = event_limit
        #: Rows of history kept per variable: trimmed on every write, so the file
        #: (and the time a restart takes to load it) does not grow with use.
        self._history_keep = history_keep
        self._lock = threading.Lock()
        self._commits = 0
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(self.SCHEMA)
        except sqlite3.Error as exc:
            raise ValidationError(f"cannot open the SQLite store {path!r}: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the store lock around one ``BEGIN IMMEDIATE`` .. ``COMMIT`` (``ROLLBACK``
        on any exception, which is re-raised): what is written inside is all or nothing."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def load(self, history_limit: int, event_limit: int) -> list[SessionData]:
        with self._lock:
            db = self._db
            # A store written before history was trimmed (or with a larger keep): trim once.
            db.execute(
                "DELETE FROM history WHERE rowid IN (SELECT rowid FROM (SELECT rowid, "
                "ROW_NUMBER() OVER (PARTITION BY session, name ORDER BY version DESC) AS n "
                "FROM history) WHERE n > ?)",
                (history_limit,),
            )
            sessions = {
                sid: SessionData(sid, ttl, created, seq)
                for sid, ttl, created, seq in db.execute(
                    "SELECT id, ttl_s, created_at, last_seq FROM sessions"
                )
            }
            for sid, record in db.execute("SELECT session, record FROM variables ORDER BY name"):
                if sid in sessions:
                    sessions[sid].variables.append(json.loads(record))
            for sid, name, record in db.execute(
                "SELECT session, name, record FROM history ORDER BY session, name, version"
            ):
                if sid in sessions:
                    sessions[sid].history.setdefault(name, []).append(json.loads(record))
            for sid, key, value in db.execute("SELECT session, key, value FROM session_meta"):
                if sid in sessions:
                    sessions[sid].meta[key] = json.loads(value)
            for data in sessions.values():
                for name, rows in data.history.items():
                    data.history[name] = rows[-history_limit:]
                event_rows = db.execute(
                    "SELECT seq, event FROM events WHERE session = ? AND seq > ? ORDER BY seq",
                    (data.session_id, data.last_seq - event_limit),
                ).fetchall()
                data.events = [(seq, json.loads(event)) for seq, event in event_rows]
            return list(sessions.values())

    def save_session(self, session_id: str, ttl_s: float, created_at: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO sessions (id, ttl_s, created_at, last_seq) VALUES (?,?,?,"
                "COALESCE((SELECT last_seq FROM sessions WHERE id = ?), 0))",
                (session_id, ttl_s, created_at, session_id),
            )

    def drop_session(self, session_id: str) -> None:
        with self.transaction() as db:
            for table, key in (
                ("sessions", "id"),
                ("variables", "session"),
                ("history", "session"),
                ("events", "session"),
                ("session_meta", "session"),
            ):
                db.execute(f"DELETE FROM {table} WHERE {key} = ?", (session_id,))

    def commit(
        self,
        session_id: str,
        last_seq: int,
        upserts: Sequence[Variable],
        deletes: Sequence[str],
        events: Sequence[tuple[int, dict[str, Any]]],
        meta: dict[str, Any] | None = None,
    ) -> None:
        with self.transaction() as db:
            for name in deletes:
                db.execute(
                    "DELETE FROM variables WHERE session = ? AND name = ?", (session_id, name)
                )
                db.execute("DELETE FROM history WHERE session = ? AND name = ?", (session_id, name))
            for record in upserts:
                text = json.dumps(record.to_dict())
                db.execute(
                    "INSERT OR REPLACE INTO variables (session, name, record) VALUES (?,?,?)",
                    (session_id, record.name, text),
                )
                db.execute(
                    "INSERT INTO history (session, name, version, record) VALUES (?,?,?,?)",
                    (session_id, record.name, record.version, text),
                )
                db.execute(
                    "DELETE FROM history WHERE session = ? AND name = ? AND version <= ?",
                    (session_id, record.name, record.version - self._history_keep),
                )
            db.executemany(
                "INSERT INTO events (session, seq, event) VALUES (?,?,?)",
                [(session_id, seq, json.dumps(event)) for seq, event in events],
            )
            db.execute("UPDATE sessions SET last_seq = ? WHERE id = ?", (last_seq, session_id))
            self._put_meta(session_id, meta)
            self._commits += 1
            if self._commits % 1000 == 0:
                db.execute(
                    "DELETE FROM events WHERE session = ? AND seq <= ?",
                    (session_id, last_seq - self._event_limit),
                )

    def _put_meta(self, session_id: str, meta: dict[str, Any] | None) -> None:
        for key, value in (meta or {}).items():
            self._db.execute(
                "INSERT OR REPLACE INTO session_meta (session, key, value) VALUES (?,?,?)",
                (session_id, key, json.dumps(value)),
            )

    def save_meta(self, session_id: str, meta: dict[str, Any]) -> None:
        with self.transaction():
            self._put_meta(session_id, meta)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(spec: str | None, event_limit: int = 10_000, history_keep: int = 1000) -> Store:
    """``memory`` (default) or ``sqlite:PATH``."""
    if spec in (None, "", "memory"):
        return Store()
    if spec.startswith("sqlite:"):
        path = spec[len("sqlite:") :]
        if not path:
            raise ValidationError("--store sqlite:PATH needs a path")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return SqliteStore(path, event_limit, history_keep)
    raise ValidationError(f"unknown store {spec!r}: use 'memory' or 'sqlite:PATH'")
