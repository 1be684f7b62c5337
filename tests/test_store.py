"""The four SQLite databases share one upgrade path, and SQL stays inside the store package.

``fixtures/unversioned_*`` were written by main at 5b80ae7 (before the store package): a limiter
file after one admission and a 429 gate, a response cache with one answer, a gateway ledger with
one request. None records a version the way the store now does (the ledger wrote ``schema`` =
"1" and never read it); each is adopted as version 1 with its rows kept.
"""

from __future__ import annotations

import ast
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import flashlane
from flashlane.caching.response_cache import ResponseCache
from flashlane.errors import InputError
from flashlane.gateway.ledger import Ledger, read_ledger
from flashlane.limits.sqlite import SqliteStore
from flashlane.store.gateway_ledger import LEDGER_SCHEMA
from flashlane.store.limiter import LIMITER_SCHEMA
from flashlane.store.migrate import Schema, found_version
from flashlane.store.response_cache import RESPONSE_CACHE_SCHEMA
from flashlane.store.run import RUN_SCHEMA, RunStore

FIXTURES = Path(__file__).parent / "fixtures"
SRC = Path(flashlane.__file__).parent
KEY = "proj/gemini-3.1-flash-lite"  # the limiter key the fixture admitted under

# name -> (schema, open it the way flashlane does, close it)
OPENERS: dict[str, tuple[Schema, Callable[[Path], Any]]] = {
    "run": (RUN_SCHEMA, RunStore),
    "limiter": (LIMITER_SCHEMA, SqliteStore),
    "response_cache": (RESPONSE_CACHE_SCHEMA, ResponseCache),
    "ledger": (LEDGER_SCHEMA, Ledger),
}


def _version(path: Path, schema: Schema) -> int:
    con = sqlite3.connect(path)
    try:
        return found_version(con, schema)
    finally:
        con.close()


@pytest.mark.parametrize("name", sorted(OPENERS))
def test_a_new_file_is_created_at_the_latest_version(tmp_path: Path, name: str) -> None:
    schema, open_ = OPENERS[name]
    path = tmp_path / f"{name}.db"
    open_(path).close()
    assert _version(path, schema) == schema.latest
    open_(path).close()  # and opens again as it is


@pytest.mark.parametrize("name", sorted(OPENERS))
def test_a_file_from_a_newer_flashlane_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    schema, open_ = OPENERS[name]
    path = tmp_path / f"{name}.db"
    open_(path).close()
    con = sqlite3.connect(path)
    schema.slot.write(con, schema.latest + 1)
    con.commit()
    con.close()
    with pytest.raises(InputError) as e:
        open_(path)
    message = str(e.value)
    assert "newer flashlane" in message and schema.name in message and "\n" not in message
    assert e.value.hint and "upgrade flashlane" in e.value.hint
    assert _version(path, schema) == schema.latest + 1  # and the file is left as it was


def _copy(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    shutil.copy(FIXTURES / f"unversioned_{name}", path)
    return path


def test_an_unversioned_limiter_file_is_adopted(tmp_path: Path) -> None:
    path = _copy(tmp_path, "limits.sqlite3")
    store = SqliteStore(path)
    try:
        assert store.usage(KEY, 1_000_010.0, 60.0) == (1, 120)  # its admission is still counted
        assert store._load(KEY, 0.0).gate_until == 1_000_030.0  # and its 429 gate still closed
    finally:
        store.close()
    assert _version(path, LIMITER_SCHEMA) == 1
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1


def test_an_unversioned_response_cache_is_adopted(tmp_path: Path) -> None:
    path = _copy(tmp_path, "responses.db")
    cache = ResponseCache(path)
    try:
        assert cache.get("k1") == {"label": "positive"}
    finally:
        cache.close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1


def test_a_ledger_of_the_previous_release_is_read_and_kept(tmp_path: Path) -> None:
    path = _copy(tmp_path, "ledger.sqlite3")
    con = sqlite3.connect(path)
    con.execute("DELETE FROM gateway_meta WHERE key='schema'")  # a ledger with no version at all
    con.commit()
    con.close()
    ledger = Ledger(path)
    ledger.record("team-a", "proj", "gemini-3.1-flash-lite", ok=True, now=1_000_001.0)
    ledger.close()
    [row] = read_ledger(path)
    assert (row["label"], row["requests"], row["prompt_tokens"]) == ("team-a", 2, 100)
    assert _version(path, LEDGER_SCHEMA) == LEDGER_SCHEMA.latest  # upgraded: resource owners added


# Redis pipelines also have an ``execute()``, with no argument; every SQL execute has one.
SQL_CALLS = {"executemany", "executescript"}


def test_no_sql_outside_the_store_package() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if (SRC / "store") in path.parents:
            continue
        rel = path.relative_to(SRC).as_posix()
        calls = [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute)
                 and (node.func.attr in SQL_CALLS or (node.func.attr == "execute" and node.args))]
        if calls:
            offenders += [f"{rel}:{node.lineno}: {ast.unparse(node)[:80]}" for node in calls]
    assert not offenders, "SQL outside flashlane/store:\n" + "\n".join(offenders)
