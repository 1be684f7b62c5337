"""SQLite backend: one file shared by every process on a machine.

WAL so readers never block; each admit is one ``BEGIN IMMEDIATE`` transaction (takes the write
lock up front, so two processes can't both read "14 of 15" and both admit). ``busy_timeout``
makes a contending process wait for the lock instead of failing.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from ..store.db import connect, transaction
from .config import Limits
from .window import Decision, Entry, KeyState, decide, prune_before, usage

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "SqliteStore", "default_path"]

DEFAULT_BUSY_TIMEOUT_MS = 30_000
DEFAULT_FILENAME = "limits.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS admission (key TEXT NOT NULL, id TEXT PRIMARY KEY, ts REAL NOT NULL,
                                      tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS admission_key_ts ON admission (key, ts);
CREATE TABLE IF NOT EXISTS day (key TEXT PRIMARY KEY, reset REAL NOT NULL, count INTEGER NOT NULL,
                                blocked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS gate (key TEXT PRIMARY KEY, until REAL NOT NULL);
"""


def default_path() -> Path:
    """``$FLASHLANE_STATE_DIR/limits.sqlite3``, else the platform's user state dir."""
    env = os.environ.get("FLASHLANE_STATE_DIR")
    if env:
        base = Path(env)
    else:
        import platformdirs

        base = Path(platformdirs.user_state_dir("flashlane"))
    return base / DEFAULT_FILENAME


class SqliteStore:
    name = "sqlite"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection, used under a lock: sqlite3 connections aren't safe to share between
        # threads concurrently, and one writer per process is all the file allows anyway.
        self._lock = threading.Lock()
        self._db = connect(self.path, busy_timeout_s=DEFAULT_BUSY_TIMEOUT_MS / 1000)
        self._db.executescript(_SCHEMA)  # idempotent; concurrent openers wait on busy_timeout

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self._lock)

    def _load(self, key: str, since: float) -> KeyState:
        db = self._db
        entries = [Entry(ts, tok) for ts, tok in
                   db.execute("SELECT ts, tokens FROM admission WHERE key = ? AND ts > ?", (key, since))]
        day = db.execute("SELECT reset, count, blocked FROM day WHERE key = ?", (key,)).fetchone()
        gate = db.execute("SELECT until FROM gate WHERE key = ?", (key,)).fetchone()
        st = KeyState(entries=entries, gate_until=gate[0] if gate else 0.0)
        if day:
            st.day_reset, st.day_count, st.day_blocked = day[0], day[1], bool(day[2])
        return st

    def admit(self, key: str, clock: Callable[[], float], tokens: int, limits: Limits, entry_id: str) -> Decision:
        with self._tx() as db:
            now = clock()  # inside the write lock: see window.py
            db.execute("DELETE FROM admission WHERE key = ? AND ts <= ?", (key, prune_before(now, limits.span)))
            d = decide(self._load(key, now - limits.span), now, tokens, limits)
            db.execute("INSERT INTO day (key, reset, count, blocked) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET reset = excluded.reset, count = excluded.count, "
                       "blocked = excluded.blocked", (key, d.day_reset, d.day_count, int(d.day_blocked)))
            if d.admitted:
                db.execute("INSERT INTO admission (key, id, ts, tokens) VALUES (?, ?, ?, ?)",
                           (key, entry_id, now, tokens))
        return d

    def adjust(self, key: str, entry_id: str, tokens: int, ts: float | None = None) -> None:
        with self._tx() as db:
            if ts is None:
                db.execute("UPDATE admission SET tokens = ? WHERE id = ?", (tokens, entry_id))
            else:
                db.execute("UPDATE admission SET tokens = ?, ts = max(ts, ?) WHERE id = ?", (tokens, ts, entry_id))

    def remove(self, key: str, entry_id: str, day_reset: float) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM admission WHERE id = ?", (entry_id,))
            db.execute("UPDATE day SET count = count - 1 WHERE key = ? AND reset = ? AND count > 0",
                       (key, day_reset))

    def extend_gate(self, key: str, until: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO gate (key, until) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET until = max(until, excluded.until)", (key, until))

    def block_day(self, key: str, day_reset: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO day (key, reset, count, blocked) VALUES (?, ?, 0, 1) "
                       "ON CONFLICT (key) DO UPDATE SET reset = excluded.reset, blocked = 1", (key, day_reset))

    def usage(self, key: str, now: float, span: float) -> tuple[int, int]:
        with self._lock:
            return usage(self._load(key, now - span), now, span)

    def close(self) -> None:
        with self._lock:
            self._db.close()

