"""Run databases from earlier releases resume after an upgrade; newer ones are refused.

``fixtures/v1_run.flashlane.db`` was written by the first release (schema 1, main at
3453b15) with ``flashlane run classify v1_reviews.csv --column text --labels
positive,negative,neutral --emulator --no-cache --budget-usd 0.0003 --concurrency 1``:
the budget stopped it with 1 row ok and 7 pending. ``fixtures/v5_run.flashlane.db`` is the
same run written by main at 8b5fb6f (schema 5, before the store package), stopped the same way.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from flashlane.store.run import SCHEMA_VERSION, RunStore

from .conftest import LABELS, read_jsonl, run_cli

FIXTURES = Path(__file__).parent / "fixtures"


def _copy(tmp_path: Path, release: str = "v1") -> tuple[Path, Path]:
    src = tmp_path / "reviews.csv"
    db = tmp_path / "run.flashlane.db"
    shutil.copy(FIXTURES / "v1_reviews.csv", src)
    shutil.copy(FIXTURES / f"{release}_run.flashlane.db", db)
    return src, db


def test_v1_database_migrates_in_recorded_steps(tmp_path: Path) -> None:
    _, db = _copy(tmp_path)
    store = RunStore(db)
    try:
        assert store.schema_version == SCHEMA_VERSION
        assert [v for v, _ in store.migrations()] == list(range(2, SCHEMA_VERSION + 1))
        assert store.metadata.get("schema_version") == str(SCHEMA_VERSION)
        assert store.items.counts() == {"pending": 7, "ok": 1, "failed": 0}
    finally:
        store.close()


def test_v5_database_takes_only_the_newer_steps(tmp_path: Path) -> None:
    _, db = _copy(tmp_path, "v5")
    store = RunStore(db)
    try:
        assert store.schema_version == SCHEMA_VERSION
        assert [v for v, _ in store.migrations()] == list(range(1, SCHEMA_VERSION + 1))  # as it was written
        assert store.items.counts() == {"pending": 7, "ok": 1, "failed": 0}
        assert store.metadata.get("status") == "budget"
    finally:
        store.close()


# The first release made ids from the row number; by schema 5 a column named id is the id.
@pytest.mark.parametrize(("release", "ids"), [("v1", [str(i) for i in range(1, 9)]),
                                              ("v5", [f"r{i}" for i in range(1, 9)])])
def test_old_run_resumes_finishes_and_reports(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str],
                                              release: str, ids: list[str]) -> None:
    src, db = _copy(tmp_path, release)
    out = tmp_path / "out.jsonl"
    args = ("run", "classify", str(src), "--column", "text", "--labels", LABELS, "-o", str(out), "--run-db", str(db),
            "-q", "--no-cache")
    assert run_cli(*args) == 0, capsys.readouterr().err
    assert cli_env.stats()["requests_total"] == 7  # the row the old release finished is not asked again
    rows = read_jsonl(out)
    assert [r["status"] for r in rows] == ["ok"] * 8
    assert [r["id"].split("-")[0] for r in rows] == ids  # the run's own ids
    capsys.readouterr()
    assert run_cli("report", str(db), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["items"]["ok"] == 8 and report["sessions"] == 2 and report["requests"] == 8
    assert run_cli(*args) == 0  # and a rerun of the finished run asks nothing
    assert cli_env.stats()["requests_total"] == 7


def test_newer_schema_is_refused(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src, db = _copy(tmp_path)
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    con.commit()
    con.close()
    code = run_cli("run", "classify", str(src), "--column", "text", "--labels", LABELS, "-o", str(tmp_path / "o.jsonl"),
                   "--run-db", str(db), "-q")
    assert code == 2
    assert "newer flashlane" in capsys.readouterr().err
