"""Checkpoint and resume: SIGKILL mid-run, rerun, nothing finished is requested again."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    LABELS,
    EmulatorProcess,
    finished_items,
    read_jsonl,
    reviews,
    run_cli,
    subprocess_env,
    wait_for,
    write_csv,
)

ROWS = 600


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def test_sigkill_then_resume_requests_nothing_twice(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "reviews.csv", reviews(ROWS))
    out = tmp_path / "out.jsonl"
    db = Path(f"{out}.flashlane.db")
    emu = EmulatorProcess("--latency-scale", "0.02")
    try:
        cmd = [sys.executable, "-m", "flashlane", "run", "classify", str(src), "--column", "text", "--labels", LABELS,
               "-o", str(out), "--no-cache", "--quiet", "--concurrency", "8"]
        env = subprocess_env(emu.base_url)
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: len(finished_items(db)) >= 100 or first.poll() is not None, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        done_before = finished_items(db)
        assert 0 < len(done_before) < ROWS
        requests_before = _get(emu.base_url + "/_emulator/stats")["requests_total"]

        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr

        rows = read_jsonl(out)
        ids = [r["id"] for r in rows]
        assert len(rows) == ROWS and len(set(ids)) == ROWS
        assert all(r["status"] == "ok" for r in rows)
        assert ids == [str(i) for i in range(ROWS)]  # input order; the input's "id" column is the id

        log = _get(emu.base_url + "/_emulator/requests")["requests"][requests_before:]
        prompts = "\n".join(e.get("prompt") or "" for e in log)
        # row i has id "i" and marker row-i
        finished_markers = {f"row-{int(i):04d}" for i in done_before}
        again = sorted(m for m in finished_markers if m in prompts)
        assert not again, f"finished rows requested again: {again[:5]}"
        # and every unfinished row was requested in the second run
        assert len(log) >= ROWS - len(done_before)
    finally:
        emu.stop()


def test_changed_options_refused_then_fresh(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(5))
    out = tmp_path / "o.jsonl"
    assert run_cli("run", "classify", str(src), "--column", "text", "--labels", LABELS, "-o", str(out), "-q") == 0
    capsys.readouterr()
    code = run_cli("run", "classify", str(src), "--column", "text", "--labels", "good,bad", "-o", str(out), "-q")
    err = capsys.readouterr().err
    assert code == 2
    assert f"labels: {LABELS} → good,bad" in err and "--fresh" in err
    assert run_cli("run", "classify", str(src), "--column", "text", "--labels", "good,bad", "-o", str(out), "-q",
                   "--fresh") == 0
    assert {r["result"]["label"] for r in read_jsonl(out)} <= {"good", "bad"}


def test_rerun_of_finished_run_sends_nothing(tmp_path: Path, cli_env: Any) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(12))
    out = tmp_path / "o.csv"
    args = ("run", "classify", str(src), "--column", "text", "--labels", LABELS, "-o", str(out), "-q", "--no-cache")
    assert run_cli(*args) == 0
    before = cli_env.stats()["requests_total"]
    assert run_cli(*args) == 0
    assert cli_env.stats()["requests_total"] == before
    assert len(out.read_text().splitlines()) == 13


def test_output_rewritten_after_a_kill_before_it_was_written(tmp_path: Path, cli_env: Any) -> None:
    """A run whose rows finished but which died before writing its output rewrites it next time,
    even though nothing is left to request."""
    from flashlane.store.run import RunStore

    src = write_csv(tmp_path / "r.csv", reviews(4))
    out = tmp_path / "o.jsonl"
    args = ("run", "classify", str(src), "--column", "text", "--labels", LABELS, "-o", str(out), "-q", "--no-cache",
            "--budget-usd", "0.000000001")
    assert run_cli(*args) == 1  # stopped before any request: an output of pending rows is written
    assert {r["status"] for r in read_jsonl(out)} == {"pending"}
    # What a killed process leaves: rows recorded as done through the store, output not rewritten.
    store = RunStore(Path(f"{out}.flashlane.db"))
    try:
        ids = [r["id"] for r in read_jsonl(out)]
        from flashlane.models import Usage

        store.requests.record(started=0.0, item_ids=ids, outcome="ok", error=None, usage=Usage(1, 1, 0, 0, 2),
                             cost_usd=0.0001, ok={i: ({"label": "neutral"}, Usage(), 0.0) for i in ids}, failed={})
    finally:
        store.close()
    before = cli_env.stats()["requests_total"]
    assert run_cli(*args[:-2]) == 0
    assert cli_env.stats()["requests_total"] == before
    assert {r["status"] for r in read_jsonl(out)} == {"ok"}
