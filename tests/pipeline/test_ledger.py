"""A cluster run's ledger (pipeline/ledger.py) without Ray: batch databases in one directory,
finished rows found across them, a report that adds them up, another run's databases refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flashlane.errors import InputError
from flashlane.pipeline import map_items
from flashlane.pipeline.api import job_key
from flashlane.pipeline.ledger import Ledger

from .conftest import LABELS, reviews

LABEL_LIST = LABELS.split(",")


def test_batches_resume_find_each_others_rows_and_add_up(lane: Any, emu: Any, tmp_path: Path) -> None:
    client = lane._client
    rows = reviews(12)
    key = job_key(client, "classify", id_column="id", labels=LABEL_LIST)
    ledger = Ledger(tmp_path / "ledger", key)
    first, second = rows[:8], rows[8:]
    for batch in (first, second):
        db = ledger.batch_db([r["id"] for r in batch])
        map_items(client, "classify", batch, pack=4, id_column="id", labels=LABEL_LIST, cache=False,
                  run_db=db).close()
    assert emu.stats()["requests_total"] == 3
    # The same batch again resumes its own database: nothing is asked again.
    map_items(client, "classify", first, pack=4, id_column="id", labels=LABEL_LIST, cache=False,
              run_db=ledger.batch_db([r["id"] for r in first])).close()
    assert emu.stats()["requests_total"] == 3
    # Rows cut into other batches are found in whichever database finished them.
    found = ledger.finished([r["id"] for r in rows[4:10]] + ["nope"])
    assert sorted(found) == sorted(r["id"] for r in rows[4:10])
    assert {f.result.status for f in found.values()} == {"ok"}

    report = Ledger(tmp_path / "ledger").report()
    assert report["items"] == {"total": 12, "ok": 12, "failed": 0, "pending": 0, "cached": 0}
    assert report["requests"] == 3 and report["batch_databases"] == 2 and report["status"] == "done"
    assert report["task"] == "classify" and report["cost_usd"] > 0


def test_another_runs_ledger_is_refused(lane: Any, tmp_path: Path) -> None:
    client = lane._client
    rows = reviews(4)
    ledger = Ledger(tmp_path / "ledger", job_key(client, "classify", id_column="id", labels=LABEL_LIST))
    map_items(client, "classify", rows, id_column="id", labels=LABEL_LIST, cache=False,
              run_db=ledger.batch_db([r["id"] for r in rows])).close()
    other = Ledger(tmp_path / "ledger", job_key(client, "classify", id_column="id", labels=["a", "b"]))
    with pytest.raises(InputError, match="other settings"):
        other.finished(["x"])
    with pytest.raises(InputError, match="no batch databases"):
        Ledger(tmp_path / "empty").report()
