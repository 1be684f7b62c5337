"""Runs as processes: one writer per run database, a ledger that survives SIGKILL, SIGTERM
handled like SIGINT, temporary files of a killed writer cleaned up."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
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


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _cmd(src: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "flashlane", "run", "classify", str(src), "--column", "text", "--labels", LABELS,
            "-o", str(out), "--no-cache", "--quiet", "--concurrency", "8", *extra]


@pytest.fixture
def slow_emu() -> Any:
    emu = EmulatorProcess("--latency-scale", "0.02")
    yield emu
    emu.stop()


def test_second_run_on_one_database_is_refused_naming_the_holder(tmp_path: Path) -> None:
    rows, pack = 600, 10
    src = write_csv(tmp_path / "r.csv", reviews(rows))
    out = tmp_path / "o.jsonl"
    emu = EmulatorProcess("--latency-scale", "0.2")  # a run lasts seconds: both start while it holds the db
    env = subprocess_env(emu.base_url)
    cmd = _cmd(src, out, "--pack", str(pack), "--concurrency", "4")
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        errs = [p.communicate(timeout=120)[1] for p in procs]
        codes = sorted((p.returncode, i) for i, p in enumerate(procs))
        assert [c for c, _ in codes] == [0, 2], errs
        winner, loser = procs[codes[0][1]], codes[1][1]
        assert f"in use by another flashlane run (pid {winner.pid} on " in errs[loser]
        assert len(errs[loser].strip().splitlines()) <= 2 and "Traceback" not in errs[loser]
        got = read_jsonl(out)
        assert len(got) == rows and all(r["status"] == "ok" for r in got)
        # Nothing asked twice: 600 rows' worth of requests in all (packs of 10).
        assert _get(emu.base_url + "/_emulator/stats")["requests_total"] <= rows // pack
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        emu.stop()


def test_report_counts_what_the_server_served_after_sigkills(tmp_path: Path, slow_emu: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    rows = 300
    src = write_csv(tmp_path / "r.csv", reviews(rows))
    out = tmp_path / "o.jsonl"
    db = Path(f"{out}.flashlane.db")
    env = subprocess_env(slow_emu.base_url)
    for kill_at in (30, 90, 150):
        proc = subprocess.Popen(_cmd(src, out, "--pack", "3"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda n=kill_at, p=proc: len(finished_items(db)) >= n or p.poll() is not None,  # type: ignore[misc]
                 timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    final = subprocess.run(_cmd(src, out, "--pack", "3"), env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    capsys.readouterr()
    assert run_cli("report", str(db), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    served = _get(slow_emu.base_url + "/_emulator/stats")["requests_total"]
    answered = report["requests"] - report["unanswered_requests"]
    # Every request is in the ledger before it is sent: the report never counts fewer than
    # were served; it can count more only by requests cut off by a kill before reaching the server.
    assert answered <= served <= report["requests"], (report, served)
    assert report["unanswered_requests"] <= 3 * 8  # at most what was in flight at each kill
    assert report["sessions"] == 4 and report["killed_sessions"] == 3
    assert report["items"]["ok"] == rows
    # Rates from wall time: killed sessions end at their last recorded request, not at their start.
    # wall_time_s is rounded to the millisecond in the report, items_per_minute is not: allow for it.
    assert report["wall_time_s"] > 0.5 and report["items_per_minute"] < rows / (report["wall_time_s"] - 0.001) * 60 + 1


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_write_partial_output_and_resume(tmp_path: Path, slow_emu: Any, sig: int,
                                                            code: int) -> None:
    rows = 150
    src = write_csv(tmp_path / "r.csv", reviews(rows))
    out = tmp_path / "o.jsonl"
    db = Path(f"{out}.flashlane.db")
    stale = tmp_path / ".o.jsonl.k1lled.tmp"  # what a writer killed mid-write leaves
    stale.write_text("half a file")
    env = subprocess_env(slow_emu.base_url)
    proc = subprocess.Popen(_cmd(src, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(finished_items(db)) >= 20 or proc.poll() is not None, timeout=60)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    name = signal.Signals(sig).name
    assert f"interrupted by {name}: partial output written to {out}" in err and "rerun the same command" in err
    assert "Traceback" not in err
    assert not stale.exists()
    partial = read_jsonl(out)
    assert len(partial) == rows and {r["status"] for r in partial} == {"ok", "pending"}
    done = sum(r["status"] == "ok" for r in partial)
    before = _get(slow_emu.base_url + "/_emulator/stats")["requests_total"]
    again = subprocess.run(_cmd(src, out), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert all(r["status"] == "ok" for r in read_jsonl(out))
    asked = _get(slow_emu.base_url + "/_emulator/stats")["requests_total"] - before
    assert asked <= rows - done + 8  # the pending rows, plus at most those cut off in flight
    assert not list(tmp_path.glob(".*.tmp"))


def test_lock_of_a_dead_holder_is_taken_over(tmp_path: Path, cli_env: Any) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(5))
    out = tmp_path / "o.jsonl"
    lock = Path(f"{out}.flashlane.db.lock")
    # A holder that died: its record is there, its flock went with it.
    lock.write_text(json.dumps({"pid": 999999, "host": "gone", "started": time.time() - 60}))
    assert run_cli("run", "classify", str(src), "--column", "text", "--labels", LABELS, "-o", str(out), "-q") == 0
    assert len(read_jsonl(out)) == 5
