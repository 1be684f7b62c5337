"""SQLite, the one way: every database flashlane keeps (run stores, the response cache, the
limiter's shared state, the gateway ledger) opens through ``connect`` and writes through
``transaction``; ``migrate.py`` brings each up to its schema.

- WAL journal: readers never block the writer, and a SIGKILL loses nothing committed.
- ``synchronous=NORMAL``: in WAL mode this survives a killed process (what resume and the
  limiter promise); FULL would also survive power loss at one fsync per commit.
- a busy timeout, so a second process waits for the write lock instead of failing at once.
- autocommit connections (``isolation_level=None``); writes group into explicit
  ``BEGIN IMMEDIATE … COMMIT`` blocks, which take the write lock up front so two processes
  can never both read a value and both act on it.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

__all__ = ["DEFAULT_BUSY_TIMEOUT_S", "connect", "copy_database", "transaction"]

DEFAULT_BUSY_TIMEOUT_S = 30.0
MEMORY = ":memory:"
WAL_SUFFIX = "-wal"  # the write-ahead log beside a database in WAL mode (sqlite.org/wal.html)


def connect(path: str | Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """An autocommit connection with WAL, ``synchronous=NORMAL`` and a busy timeout; the
    parent directory is created. Shared between threads only under the caller's lock."""
    name = str(path)
    if name != MEMORY:
        Path(name).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(name, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    if name != MEMORY:
        db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    return db


def copy_database(src: str | Path, dst: str | Path) -> None:
    """A copy of the database file ``src`` at ``dst``, its write-ahead log included (SQLite folds
    it in when the copy is opened), made without opening ``src``: even a read-only connection
    would leave -shm and -wal files beside it. The caller holds the run's lock, so no process is
    writing it. A dry run plans on the copy and leaves the run's own files byte for byte."""
    shutil.copyfile(src, dst)
    wal = Path(f"{src}{WAL_SUFFIX}")
    if wal.exists():
        shutil.copyfile(wal, f"{dst}{WAL_SUFFIX}")


@contextmanager
def transaction(db: sqlite3.Connection, lock: threading.Lock | None = None) -> Iterator[sqlite3.Connection]:
    """``with transaction(db):`` = one BEGIN IMMEDIATE … COMMIT, ROLLBACK on any error;
    under ``lock`` when the connection is shared by threads."""
    with lock if lock is not None else nullcontext():
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
