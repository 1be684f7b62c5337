"""The eval database (``flashlane eval --eval-dir DIR``: ``DIR/eval.db``): what an eval scores
against and which run holds each configuration, so an interrupted eval resumes and ``flashlane
report DIR`` rebuilds the table from disk alone.

Schema::

    meta    (key TEXT PRIMARY KEY, value TEXT)   fingerprint (what the items and their truth are),
                                                 task, kind, metric, truth columns, scoring options,
                                                 schema_version
    truth   (idx INTEGER PRIMARY KEY, value TEXT) each item's truth (JSON), by its position in the
                                                 eval's items file
    configs (idx INTEGER PRIMARY KEY, name TEXT UNIQUE, config TEXT, run_db TEXT)
                                                 one row per configuration of the grid, in order;
                                                 run_db: its run database (a file beside eval.db)

The answers, usage, latencies and the ledger of each configuration are in its run database
(``store.run``), as for any ``flashlane run``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .db import transaction
from .migrate import MetaKey, Migration, Schema, open_migrated

__all__ = ["EVAL_SCHEMA", "EvalStore"]

_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS truth (idx INTEGER PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS configs (idx INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, config TEXT, run_db TEXT)
"""

EVAL_SCHEMA = Schema("eval database", (Migration(1, "truth per item; configurations and their runs", _V1),),
                     MetaKey("meta", "schema_version"), marker="configs",
                     upgrade_hint="upgrade flashlane to read this eval")


class EvalStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.db = open_migrated(path, EVAL_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def get(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set(self, **values: Any) -> None:
        with transaction(self.db):
            self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in values.items()])

    def start(self, meta: dict[str, Any], truth: Iterable[Any]) -> None:
        """A new eval: its facts and every item's truth, in one transaction (all or nothing)."""
        with transaction(self.db):
            self.db.execute("DELETE FROM truth")
            self.db.execute("DELETE FROM configs")
            self.db.executemany("INSERT INTO truth (idx, value) VALUES (?, ?)",
                                ((i, json.dumps(t, ensure_ascii=False)) for i, t in enumerate(truth)))
            self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in meta.items()])

    def truth(self) -> Iterator[Any]:
        return (json.loads(v) for (v,) in self.db.execute("SELECT value FROM truth ORDER BY idx"))

    def config_run(self, name: str, config: dict[str, Any], run_db: str) -> str:
        """The run database of configuration ``name``: the one recorded before (a resumed eval),
        else ``run_db``, recorded now, after the configurations already known."""
        with transaction(self.db):
            row = self.db.execute("SELECT run_db FROM configs WHERE name=?", (name,)).fetchone()
            if row is not None:
                return str(row[0])
            self.db.execute("INSERT INTO configs (idx, name, config, run_db) VALUES "
                            "((SELECT COALESCE(MAX(idx), -1) + 1 FROM configs), ?, ?, ?)",
                            (name, json.dumps(config), run_db))
        return run_db

    def configs(self) -> list[tuple[str, dict[str, Any], str]]:
        """(name, configuration, run database) in the order they were first run."""
        return [(str(n), json.loads(c), str(r)) for n, c, r in
                self.db.execute("SELECT name, config, run_db FROM configs ORDER BY idx")]
