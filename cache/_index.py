"""SQLite index of the entries: key, kind, version, size and last access (for LRU pruning).

The index is a cache of the entry folders, never the truth: it is updated only after an entry
folder is in place, and :meth:`cache.Store.cleanup` rebuilds missing rows from the folders'
``meta.json`` and drops rows whose folder is gone. A damaged index file is moved aside and
rebuilt. The database runs in WAL mode so that readers in other processes are not blocked.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

__all__ = ["Index", "IndexRow"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    version TEXT NOT NULL,
    created TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    last_access REAL NOT NULL,
    access_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_kind ON entries (kind);
CREATE INDEX IF NOT EXISTS entries_access ON entries (access_seq);
"""

_NEXT_SEQ = "(SELECT COALESCE(MAX(access_seq), 0) + 1 FROM entries)"
_COLUMNS = "key, kind, version, created, size_bytes, last_access, access_seq"


@dataclass(frozen=True)
class IndexRow:
    """One row of the index."""

    key: str
    kind: str
    version: str
    created: str
    size_bytes: int
    last_access: float
    access_seq: int


class Index:
    """Thread-safe, fork-aware access to ``index.sqlite``.

    Parameters
    ----------
    path
        The database file.
    readonly
        Open the database read-only (no schema creation, no writes).
    quarantine
        Folder that receives a damaged database file before it is rebuilt.
    busy_timeout_s
        How long a write waits for another process's write to finish.
    """

    def __init__(
        self, path: Path, *, readonly: bool, quarantine: Path, busy_timeout_s: float = 30.0
    ) -> None:
        self.path = path
        self.readonly = readonly
        self._quarantine = quarantine
        self._busy_timeout_s = busy_timeout_s
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        with self._lock:
            self._connection()

    def _open(self) -> sqlite3.Connection:
        if self.readonly:
            uri = f"file:{quote(os.fspath(self.path))}?mode=ro"
            conn = sqlite3.connect(
                uri, uri=True, timeout=self._busy_timeout_s,
                isolation_level=None, check_same_thread=False,
            )  # fmt: skip
            conn.execute("SELECT COUNT(*) FROM entries").fetchone()
            return conn
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        # A connection must not cross fork(): a child opens its own and abandons the parent's.
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            conn = self._open()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) or self.readonly:
                raise
            aside = (
                self._quarantine
                / f"index-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{os.getpid()}.sqlite"
            )
            logger.warning(
                "cache index %s is damaged (%s); moved to %s and rebuilt", self.path, exc, aside
            )
            self._quarantine.mkdir(parents=True, exist_ok=True)
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")
            conn = self._open()
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            return fn(self._connection())

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def upsert(self, key: str, kind: str, version: str, created: str, size_bytes: int) -> None:
        """Insert or replace the row of ``key`` and mark it as the most recently used."""
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO entries ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, {_NEXT_SEQ}) "
                "ON CONFLICT(key) DO UPDATE SET kind = excluded.kind, version = excluded.version, "
                "created = excluded.created, size_bytes = excluded.size_bytes, "
                "last_access = excluded.last_access, access_seq = excluded.access_seq",
                (key, kind, version, created, int(size_bytes), time.time()),
            )

    def touch(self, key: str, version: str) -> bool:
        """Mark ``key`` as just used; ``False`` if no row of that key and version exists."""

        def run(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                f"UPDATE entries SET last_access = ?, access_seq = {_NEXT_SEQ} "
                "WHERE key = ? AND version = ?",
                (time.time(), key, version),
            )
            return cur.rowcount > 0

        return self._run(run)

    def remove(self, key: str, version: str | None = None) -> None:
        """Drop the row of ``key`` (only if it still names ``version``, when given)."""
        if version is None:
            self._run(lambda c: c.execute("DELETE FROM entries WHERE key = ?", (key,)))
        else:
            self._run(
                lambda c: c.execute(
                    "DELETE FROM entries WHERE key = ? AND version = ?", (key, version)
                )
            )

    def get(self, key: str) -> IndexRow | None:
        """The row of ``key``, or ``None``."""
        row = self._run(
            lambda c: c.execute(f"SELECT {_COLUMNS} FROM entries WHERE key = ?", (key,)).fetchone()
        )
        return None if row is None else IndexRow(*row)

    def rows(self, kind: str | None = None, *, lru: bool = False) -> list[IndexRow]:
        """All rows (of one kind), by key or least recently used first."""
        order = "access_seq" if lru else "key"
        args: tuple[str, ...]
        if kind is None:
            sql, args = f"SELECT {_COLUMNS} FROM entries ORDER BY {order}", ()
        else:
            sql, args = f"SELECT {_COLUMNS} FROM entries WHERE kind = ? ORDER BY {order}", (kind,)
        return [IndexRow(*r) for r in self._run(lambda c: c.execute(sql, args).fetchall())]

    def keys(self) -> set[str]:
        """Keys of all rows."""
        return {r[0] for r in self._run(lambda c: c.execute("SELECT key FROM entries").fetchall())}

    def total_size(self) -> int:
        """Sum of ``size_bytes`` over all rows."""
        row = self._run(
            lambda c: c.execute("SELECT COALESCE(SUM(size_bytes), 0) FROM entries").fetchone()
        )
        return int(row[0])

    def clear(self) -> None:
        """Drop every row."""
        self._run(lambda c: c.execute("DELETE FROM entries"))

    def close(self) -> None:
        """Close this process's connection."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
