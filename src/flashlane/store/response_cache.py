"""The response cache's file: ``responses (key TEXT PRIMARY KEY, model, value, created)``, one
row per item answer, the value as JSON text. Versioned in ``PRAGMA user_version``; a file
written before versions were recorded has ``responses`` and is version 1."""

from __future__ import annotations

import time
from pathlib import Path

from .db import transaction
from .migrate import Migration, Schema, UserVersion, open_migrated

__all__ = ["RESPONSE_CACHE_SCHEMA", "ResponseTable"]

RESPONSE_CACHE_SCHEMA = Schema(
    "response cache", (Migration(1, "one answer per item key", "CREATE TABLE IF NOT EXISTS responses (key TEXT "
                                 "PRIMARY KEY, model TEXT, value TEXT, created REAL)"),), UserVersion(),
    marker="responses",
    upgrade_hint="upgrade flashlane, or run with --no-cache (or another state_dir) to leave this cache alone")


class ResponseTable:
    def __init__(self, path: str | Path) -> None:
        self.db = open_migrated(path, RESPONSE_CACHE_SCHEMA)

    def get(self, key: str) -> str | None:
        """The answer stored under ``key``, as its JSON text."""
        row = self.db.execute("SELECT value FROM responses WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put_many(self, entries: dict[str, tuple[str, str]]) -> None:
        """``{key: (model, answer as JSON text)}``, in one transaction."""
        now = time.time()
        with transaction(self.db):
            self.db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                                [(k, m, v, now) for k, (m, v) in entries.items()])

    def close(self) -> None:
        self.db.close()
