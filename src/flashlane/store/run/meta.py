"""The run's key/value facts (``meta``): fingerprint, task, model, status, output signature."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import RunStore

__all__ = ["MetaRepo"]


class MetaRepo:
    def __init__(self, store: RunStore) -> None:
        self.store = store

    def get(self, key: str) -> str | None:
        row = self.store.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, **values: Any) -> None:
        """Text as it is, anything else as JSON."""
        with self.store.transaction():
            self.store.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                      [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()])

    def all(self) -> dict[str, str]:
        return {k: v for k, v in self.store.db.execute("SELECT key, value FROM meta")}

    def forget_output(self) -> None:
        """The output on disk no longer matches the items (inside the caller's transaction when in one)."""
        self.store.db.execute("DELETE FROM meta WHERE key='output_sig'")

    def clear(self) -> None:
        """Everything but the schema version (inside the caller's transaction)."""
        self.store.db.execute("DELETE FROM meta WHERE key != 'schema_version'")
