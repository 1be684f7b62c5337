"""One upgrade path for every database flashlane keeps: the run database, the limiter's shared
state, the response cache and the gateway ledger.

Each database declares a ``Schema``: its steps (``Migration``: a version, what it changes, and
SQL or a function), where its version lives (a ``Slot``), and a marker table that says a file
written before versions were recorded is at version 1. ``migrate`` applies the missing steps in
order, each in its own ``BEGIN IMMEDIATE`` transaction that re-reads the version first (so two
processes opening one file at once apply a step once), and refuses a file from a newer
flashlane in one line rather than damage it. A file already up to date takes no write lock.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..errors import InputError
from .db import DEFAULT_BUSY_TIMEOUT_S, connect, transaction

__all__ = ["Migration", "Schema", "Slot", "UserVersion", "MetaKey", "migrate", "found_version", "has_table",
           "applied", "open_migrated"]


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    step: str | Callable[[sqlite3.Connection], None]  # SQL statements (split on ';') or a function


class Slot(Protocol):
    """Where a database keeps its schema version."""

    def read(self, con: sqlite3.Connection) -> int | None: ...

    def write(self, con: sqlite3.Connection, version: int) -> None: ...


class UserVersion:
    """SQLite's own header field (``PRAGMA user_version``): 0 means none recorded."""

    def read(self, con: sqlite3.Connection) -> int | None:
        return int(con.execute("PRAGMA user_version").fetchone()[0]) or None

    def write(self, con: sqlite3.Connection, version: int) -> None:
        con.execute(f"PRAGMA user_version = {int(version)}")


@dataclass(frozen=True)
class MetaKey:
    """A row of a key/value table (``table(key TEXT PRIMARY KEY, value TEXT)``), value as text."""

    table: str
    key: str

    def read(self, con: sqlite3.Connection) -> int | None:
        if not has_table(con, self.table):
            return None
        row = con.execute(f"SELECT value FROM {self.table} WHERE key=?", (self.key,)).fetchone()  # noqa: S608
        return None if row is None else int(row[0])

    def write(self, con: sqlite3.Connection, version: int) -> None:
        con.execute(f"INSERT OR REPLACE INTO {self.table} (key, value) VALUES (?, ?)",  # noqa: S608
                    (self.key, str(version)))


@dataclass(frozen=True)
class Schema:
    name: str  # in messages: "run database", "limiter database", ...
    migrations: tuple[Migration, ...]
    slot: Slot
    marker: str  # a table an unversioned file written by an earlier release has: that file is version 1
    upgrade_hint: str  # the fix for a file written by a newer flashlane
    log: str | None = None  # a table recording each step applied (version, when, what)

    @property
    def latest(self) -> int:
        return self.migrations[-1].version


def has_table(con: sqlite3.Connection, name: str) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None


def found_version(con: sqlite3.Connection, schema: Schema) -> int:
    """The file's version: recorded, else 1 for a file of an earlier release, else 0 (empty)."""
    recorded = schema.slot.read(con)
    if recorded is not None:
        return recorded
    return 1 if has_table(con, schema.marker) else 0


def migrate(con: sqlite3.Connection, schema: Schema, where: str) -> int:
    """Bring the database at ``where`` (for messages) up to ``schema.latest``; returns it."""
    found = found_version(con, schema)
    if found > schema.latest:
        raise InputError(f"{where} was written by a newer flashlane ({schema.name} schema {found}; this release "
                         f"reads up to {schema.latest})", hint=schema.upgrade_hint)
    if schema.slot.read(con) is None and found:
        # An unversioned file of an earlier release is adopted: its version is written, nothing else changes.
        with transaction(con):
            if schema.slot.read(con) is None:
                schema.slot.write(con, found_version(con, schema))
    elif found == schema.latest:
        return found
    for m in schema.migrations:
        with transaction(con):
            if found_version(con, schema) >= m.version:
                continue  # applied before, or by another process that opened the file at the same moment
            if isinstance(m.step, str):
                for statement in filter(str.strip, m.step.split(";")):
                    con.execute(statement)
            else:
                m.step(con)
            if schema.log is not None:
                con.execute(f"CREATE TABLE IF NOT EXISTS {schema.log} (version INTEGER PRIMARY KEY, applied REAL, "
                            "what TEXT)")
                con.execute(f"INSERT OR REPLACE INTO {schema.log} VALUES (?, ?, ?)",  # noqa: S608
                            (m.version, time.time(), m.what))
            schema.slot.write(con, m.version)
    return schema.latest


def open_migrated(path: str | os.PathLike[str], schema: Schema, *,
                  busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """``connect`` then ``migrate``; the connection is closed again if the file is refused."""
    con = connect(Path(path), busy_timeout_s=busy_timeout_s)
    try:
        migrate(con, schema, str(path))
    except BaseException:
        con.close()
        raise
    return con


def applied(con: sqlite3.Connection, schema: Schema) -> list[tuple[int, str]]:
    """The steps recorded in the schema's log: (version, what), in order."""
    if schema.log is None or not has_table(con, schema.log):
        return []
    return [(int(v), str(w)) for v, w in con.execute(f"SELECT version, what FROM {schema.log} ORDER BY version")]  # noqa: S608
