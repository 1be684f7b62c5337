"""A response cache per item, so a repeated row (in this run or any later one) costs nothing.

Keyed by everything that decides the answer: model, thinking, the task's system prompt,
instructions and output schema, and the item as rendered. Per item rather than per request,
so packed and single requests share entries and a new pack size still hits. The value is
the item's validated answer (JSON) before the task's conversion, so a hit goes through the
same ``finish`` as a fresh answer. Lives in the user cache dir (or ``settings.state_dir``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

__all__ = ["ResponseCache", "default_cache_path", "CACHE_FILE"]

CACHE_FILE = "responses.db"


def default_cache_path(state_dir: str | None) -> Path:
    if state_dir:
        return Path(state_dir) / CACHE_FILE
    import platformdirs

    return Path(platformdirs.user_cache_dir("flashlane")) / CACHE_FILE


class ResponseCache:
    def __init__(self, path: str | Path) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(p), timeout=30.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, value TEXT, "
                        "created REAL)")
        self.hits = 0

    @staticmethod
    def key(*, endpoint: str = "", model: str, thinking: str | None, system: str, instructions: str, schema: dict[str, Any] | None,
            item: str) -> str:
        blob = json.dumps([endpoint, model, thinking, system, instructions, schema, item], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM responses WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        self.hits += 1
        return json.loads(row[0])

    def put_many(self, entries: dict[str, tuple[str, Any]]) -> None:
        """``{key: (model, raw answer)}``."""
        if not entries:
            return
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                                [(k, m, json.dumps(v, ensure_ascii=False), now) for k, (m, v) in entries.items()])
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()
