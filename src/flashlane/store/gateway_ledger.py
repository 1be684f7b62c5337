"""The gateway ledger's file: a row per (token label, project, model), counters added up.

Schema (version in ``gateway_meta.schema``, where the first release already wrote "1")::

    gateway_meta   (key TEXT PRIMARY KEY, value TEXT)       kind = "flashlane-gateway-ledger", schema
    gateway_usage  (label, project, model,                   PRIMARY KEY (label, project, model)
                    requests, ok, prompt_tokens, output_tokens, thoughts_tokens, cached_tokens,
                    cost_usd, rate_limited_absorbed, retries, upstream_errors, refused,
                    limiter_wait_s, first_ts, last_ts)
    gateway_owners (name TEXT PRIMARY KEY, project, created)  schema 2: which token project created
                                                             each cache, file and batch job

Usage writes are additive upserts, so several gateway processes may share one file; an owner is
written once, when the resource is created, and never changes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .db import transaction
from .migrate import MetaKey, Migration, Schema, open_migrated

__all__ = ["COUNTERS", "LEDGER_KIND", "LEDGER_SCHEMA", "LedgerRow", "LedgerTables", "OwnerTables", "ledger_kind",
           "read_rows"]

LEDGER_KIND = "flashlane-gateway-ledger"


@dataclass
class LedgerRow:
    requests: int = 0
    ok: int = 0  # answered 2xx
    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    rate_limited_absorbed: int = 0  # upstream 429s the gateway waited out instead of passing on
    retries: int = 0
    upstream_errors: int = 0  # requests answered with an upstream error (after retries)
    refused: int = 0  # answered by the gateway itself: retired model, day used up, deadline
    limiter_wait_s: float = 0.0
    first_ts: float = 0.0
    last_ts: float = 0.0


COUNTERS = [f.name for f in fields(LedgerRow) if f.name not in ("first_ts", "last_ts")]

# The kind names the file a ledger (``is_ledger``), whatever it is called.
_V1 = f"""
CREATE TABLE IF NOT EXISTS gateway_meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS gateway_usage (
    label TEXT NOT NULL, project TEXT NOT NULL, model TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0, ok INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
    thoughts_tokens INTEGER NOT NULL DEFAULT 0, cached_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0, rate_limited_absorbed INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0, upstream_errors INTEGER NOT NULL DEFAULT 0,
    refused INTEGER NOT NULL DEFAULT 0, limiter_wait_s REAL NOT NULL DEFAULT 0,
    first_ts REAL, last_ts REAL,
    PRIMARY KEY (label, project, model));
INSERT OR IGNORE INTO gateway_meta (key, value) VALUES ('kind', '{LEDGER_KIND}')
"""

_V2 = "CREATE TABLE IF NOT EXISTS gateway_owners (name TEXT PRIMARY KEY, project TEXT NOT NULL, created REAL)"

LEDGER_SCHEMA = Schema(
    "gateway ledger", (Migration(1, "usage counters per label, project and model", _V1),
                       Migration(2, "the token project that owns each cache, file and batch job", _V2)),
    MetaKey("gateway_meta", "schema"), marker="gateway_usage",
    upgrade_hint="upgrade flashlane, or pass another --ledger path")

_ADD = (f"INSERT INTO gateway_usage (label, project, model, {', '.join(COUNTERS)}, first_ts, last_ts) "
        f"VALUES (?, ?, ?, {', '.join('?' for _ in COUNTERS)}, ?, ?) "
        f"ON CONFLICT (label, project, model) DO UPDATE SET {', '.join(f'{c} = {c} + excluded.{c}' for c in COUNTERS)}, "
        "first_ts = min(COALESCE(first_ts, excluded.first_ts), excluded.first_ts), "
        "last_ts = max(COALESCE(last_ts, excluded.last_ts), excluded.last_ts)")


class LedgerTables:
    """The open ledger file; ``add`` may run on another thread than ``close``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._db = open_migrated(path, LEDGER_SCHEMA)
        self._lock = threading.Lock()  # the connection (flusher vs close)

    def add(self, rows: dict[tuple[str, str, str], LedgerRow]) -> None:
        """Add ``{(label, project, model): counts}`` to the stored counters, in one transaction."""
        values = [(*k, *(getattr(r, c) for c in COUNTERS), r.first_ts, r.last_ts) for k, r in rows.items()]
        with transaction(self._db, self._lock):
            self._db.executemany(_ADD, values)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class OwnerTables:
    """Which project owns a resource created through the gateway (``files/abc`` -> ``team-a``), in
    the ledger's file (or in memory, for a gateway without a ledger)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._db = open_migrated(path, LEDGER_SCHEMA)
        self._lock = threading.Lock()

    def claim(self, name: str, project: str, now: float) -> None:
        with transaction(self._db, self._lock):
            self._db.execute("INSERT OR IGNORE INTO gateway_owners (name, project, created) VALUES (?, ?, ?)",
                             (name, project, now))

    def owner(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT project FROM gateway_owners WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _read_only(path: str | Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)


def ledger_kind(path: str | Path) -> str | None:
    """The kind a file says it is (None: no kind, or not a database)."""
    try:
        with _read_only(path) as db:
            row = db.execute("SELECT value FROM gateway_meta WHERE key='kind'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else str(row[0])


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Every (label, project, model) row, ordered by project, label, model."""
    with _read_only(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM gateway_usage ORDER BY project, label, model")]
