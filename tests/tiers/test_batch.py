"""Batch runs end to end: real SDK over real HTTP against the emulator (thread or process)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from flashlane.models import Usage, cost_of
from flashlane.store.run import RunStore
from tests.pipeline.conftest import (
    LABELS,
    EmulatorProcess,
    read_jsonl,
    reviews,
    run_cli,
    scenario,
    subprocess_env,
    wait_for,
    write_csv,
)

MODEL = "gemini-3.1-flash-lite"


def _classify(inp: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "classify", str(inp), "--labels", LABELS, "-o", str(out), "--service-tier", "batch", "--no-cache",
            "-q", *extra]


def _named_jobs(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("SELECT COUNT(*) FROM batch_jobs WHERE name IS NOT NULL").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0  # not created yet, or the migration still running


def _ledger_cost(db: Path) -> tuple[float, float, float]:
    """(recorded cost, the same tokens at batch prices, at standard prices)."""
    store = RunStore(db, create=False)
    try:
        pt, ot, tt, recorded = store.db.execute(
            "SELECT SUM(prompt_tokens), SUM(output_tokens), SUM(thoughts_tokens), SUM(cost_usd) FROM usage "
            "JOIN request_tiers USING (request_id) WHERE tier='batch'").fetchone()
    finally:
        store.close()
    usage = Usage(prompt_tokens=pt, output_tokens=ot + tt)
    return float(recorded), float(cost_of(MODEL, usage, service_tier="batch") or 0), float(cost_of(MODEL, usage) or 0)


def test_sigkill_after_create_then_rerun_creates_no_second_job(tmp_path: Path) -> None:
    """1,000 rows, --service-tier batch, a few seconds of turnaround; killed after the job exists and
    before its results; the rerun re-attaches: one job ever, every row once, batch prices."""
    inp = write_csv(tmp_path / "in.csv", reviews(1000))
    out = tmp_path / "out.jsonl"
    db = Path(f"{out}.flashlane.db")
    emu = EmulatorProcess("--batch-turnaround", "3")
    try:
        env = subprocess_env(emu.base_url)
        # packed 4 to a request (250 requests), as a cost-minded batch run would be
        cmd = [sys.executable, "-m", "flashlane", *_classify(inp, out, "--pack", "4")]
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: _named_jobs(db) == 1 or first.poll() is not None, timeout=60)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert first.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        assert not out.exists() or len(read_jsonl(out)) == 0
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        stats: dict[str, Any] = _control(emu.base_url, "/_emulator/batches?keys=1")
    finally:
        emu.stop()
    assert sum(stats["jobs_created"].values()) == 1, stats["jobs_created"]
    assert stats["keys_answered_twice"] == {}
    rows = read_jsonl(out)
    assert len(rows) == 1000 and len({r["id"] for r in rows}) == 1000
    assert all(r["status"] == "ok" for r in rows)
    recorded, at_batch, at_standard = _ledger_cost(db)
    assert abs(recorded - at_batch) < 1e-9 and at_batch < 0.6 * at_standard


def _control(base_url: str, path: str) -> Any:
    from tests.conftest import control

    return control(base_url, path)


def _answers(path: Path) -> dict[str, Any]:
    return {r["id"]: r["result"] for r in read_jsonl(path)}


def test_inline_results_out_of_order_are_joined_by_key(cli_env: Any, tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(40))
    plain, shuffled = tmp_path / "plain.jsonl", tmp_path / "shuffled.jsonl"
    assert run_cli(*_classify(inp, plain)) == 0
    scenario(cli_env.base_url, {"match": {"method": "batchGenerateContent"}, "action": {"shuffle": True}})
    assert run_cli(*_classify(inp, shuffled)) == 0
    a, b = _answers(plain), _answers(shuffled)
    assert len(a) == 40 and a == b  # the same request gets the same answer: each row got its own
    assert len({str(v) for v in a.values()}) > 20  # answers differ by row, so a position join would show


def test_expired_job_resubmits_only_the_missing_keys(cli_env: Any, tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(60))
    out = tmp_path / "out.jsonl"
    scenario(cli_env.base_url, {"match": {"method": "batchGenerateContent"}, "times": 1,
                                "action": {"batch_state": "expired", "done_fraction": 0.5}})
    assert run_cli(*_classify(inp, out)) == 0
    stats = cli_env.batches(keys=True)
    assert sum(stats["jobs_created"].values()) == 2
    first, second = sorted(stats["jobs"], key=lambda j: -j["requests"])
    assert first["state"] == "EXPIRED" and first["done"] == 30 and second["requests"] == 30
    assert stats["keys_answered_twice"] == {}
    rows = read_jsonl(out)
    assert len(rows) == 60 and all(r["status"] == "ok" for r in rows)


def test_requests_failed_inside_a_job_are_resubmitted_a_bounded_number_of_times(cli_env: Any,
                                                                                tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(12))
    # Two jobs in which every request fails: the third (the last allowed) answers them all.
    scenario(cli_env.base_url, {"match": {"method": "batchGenerateContent"}, "times": 2,
                                "action": {"error_rate": 1.0, "error_code": 500}})
    out = tmp_path / "out.jsonl"
    assert run_cli(*_classify(inp, out)) == 0
    assert sum(cli_env.batches()["jobs_created"].values()) == 3
    assert all(r["status"] == "ok" for r in read_jsonl(out))
    # Three failing jobs: no fourth; every row lands in the failures file with its reason.
    cli_env.reset()
    scenario(cli_env.base_url, {"match": {"method": "batchGenerateContent"}, "times": 3,
                                "action": {"error_rate": 1.0, "error_code": 500}})
    out2 = tmp_path / "out2.jsonl"
    assert run_cli(*_classify(inp, out2)) == 1
    assert sum(cli_env.batches()["jobs_created"].values()) == 3
    fails = read_jsonl(Path(f"{out2}.failures.jsonl"))
    assert len(fails) == 12 and {f["reason"] for f in fails} == {"batch_error"}


def test_batch_fallback_standard_sends_failed_requests_live(cli_env: Any, tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(8))
    scenario(cli_env.base_url, {"match": {"method": "batchGenerateContent"}, "times": 1,
                                "action": {"error_rate": 1.0, "error_code": 500}})
    out = tmp_path / "out.jsonl"
    assert run_cli(*_classify(inp, out, "--batch-fallback", "standard")) == 0
    assert sum(cli_env.batches()["jobs_created"].values()) == 1
    assert cli_env.stats()["by_method"].get("generateContent", 0) == 8
    assert all(r["status"] == "ok" for r in read_jsonl(out))


def test_detach_then_collect_and_lost_name_is_found_by_display_name(cli_env: Any, tmp_path: Path,
                                                                     capsys: Any) -> None:
    cli_env.configure(batch_turnaround_s=60)
    inp = write_csv(tmp_path / "in.csv", reviews(30))
    out = tmp_path / "out.jsonl"
    db = Path(f"{out}.flashlane.db")
    assert run_cli(*_classify(inp, out, "--detach")) == 0
    assert "rerun the same command" in capsys.readouterr().err
    assert run_cli("batch", "list", str(out)) == 0
    assert "PENDING" in capsys.readouterr().out
    # A crash between batches.create and recording its name: the name is lost, the intent kept.
    con = sqlite3.connect(db)
    con.execute("UPDATE batch_jobs SET name=NULL, state=NULL")
    con.commit()
    con.close()
    cli_env.advance_clock(61)  # the job's turnaround has passed
    assert run_cli(*_classify(inp, out)) == 0
    assert sum(cli_env.batches()["jobs_created"].values()) == 1
    rows = read_jsonl(out)
    assert len(rows) == 30 and all(r["status"] == "ok" for r in rows)


def test_cancel_then_rerun_resubmits_the_rest(cli_env: Any, tmp_path: Path, capsys: Any) -> None:
    cli_env.configure(batch_turnaround_s=60)
    inp = write_csv(tmp_path / "in.csv", reviews(10))
    out = tmp_path / "out.jsonl"
    assert run_cli(*_classify(inp, out, "--detach")) == 0
    assert run_cli("batch", "cancel", str(out)) == 0
    assert run_cli("batch", "status", str(out)) == 0
    assert "CANCELLED" in capsys.readouterr().out
    cli_env.configure(batch_turnaround_s=0)
    assert run_cli(*_classify(inp, out)) == 0
    assert sum(cli_env.batches()["jobs_created"].values()) == 2
    assert len(read_jsonl(out)) == 10


def test_large_jobs_go_as_uploaded_files_split_by_request_count(cli_env: Any, tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(50))
    out = tmp_path / "out.jsonl"
    assert run_cli(*_classify(inp, out, "--batch-inline-max-bytes", "2000", "--batch-max-requests", "20")) == 0
    stats = cli_env.batches()
    assert sorted(j["requests"] for j in stats["jobs"]) == [10, 20, 20]
    store = RunStore(Path(f"{out}.flashlane.db"), create=False)
    modes = [m for (m,) in store.db.execute("SELECT mode FROM batch_jobs")]
    store.close()
    assert modes == ["file", "file", "file"]
    rows = read_jsonl(out)
    assert len(rows) == 50 and all(r["status"] == "ok" for r in rows)


def test_packed_batch_and_lane_map(lane: Any) -> None:
    texts = [f"review {i}: {'great' if i % 2 else 'awful'} kettle" for i in range(25)]
    res = lane.map("classify", texts, labels=["positive", "negative"], pack=5, service_tier="batch", cache=False)
    assert [r.index for r in res] == list(range(25)) and all(r.ok for r in res)
    assert res[0].cost_usd is not None and res[0].cost_usd > 0


def test_a_batch_reserves_its_maximum_cost_against_the_budget_when_submitted(cli_env: Any, tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(40))
    out = tmp_path / "out.jsonl"
    budget = 0.002
    code = run_cli(*_classify(inp, out, "--budget-usd", str(budget)))
    store = RunStore(Path(f"{out}.flashlane.db"), create=False)
    try:
        jobs = store.db.execute("SELECT n_requests, reserved_usd FROM batch_jobs ORDER BY id").fetchall()
        spent = store.requests.spent_usd()
        counts = store.items.counts()
    finally:
        store.close()
    assert jobs[0][0] < 40  # the whole run would have reserved more than the budget
    assert all(reserved <= budget for _, reserved in jobs)
    assert spent <= budget
    assert (code, counts["pending"] > 0) in ((1, True), (0, False))


def test_a_full_enqueued_token_quota_waits_for_jobs_in_flight(cli_env: Any, tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(30))
    out = tmp_path / "out.jsonl"
    cli_env.configure(batch_turnaround_s=1, batch_enqueued_tokens=400)  # about one 10-request job at a time
    assert run_cli(*_classify(inp, out, "--batch-max-requests", "10")) == 0
    assert sum(cli_env.batches()["jobs_created"].values()) == 3
    assert cli_env.stats()["by_status"].get("429", 0) >= 1
    rows = read_jsonl(out)
    assert len(rows) == 30 and all(r["status"] == "ok" for r in rows)


def test_batch_on_vertex_is_refused_before_anything_is_sent(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_API_KEY", "not-a-real-key")
    inp = write_csv(tmp_path / "in.csv", reviews(3))
    assert run_cli(*_classify(inp, tmp_path / "out.jsonl")) == 2
    assert "Gemini Developer API" in capsys.readouterr().err


def _files(base_url: str) -> list[str]:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="dummy", http_options=types.HttpOptions(base_url=base_url))
    return [str(f.name) for f in client.files.list()]


def test_batch_session_closes_and_a_collected_jobs_files_are_deleted(cli_env: Any, tmp_path: Path) -> None:
    """File-mode jobs (3 here) left their input and result files on the server (issue 20: 6 files
    for 3 jobs) and a clean batch run left its session 'running'."""
    inp = write_csv(tmp_path / "in.csv", reviews(50))
    out = tmp_path / "out.jsonl"
    before = set(_files(cli_env.base_url))
    assert run_cli(*_classify(inp, out, "--batch-inline-max-bytes", "2000", "--batch-max-requests", "20")) == 0
    assert sum(cli_env.batches()["jobs_created"].values()) == 3
    assert set(_files(cli_env.base_url)) == before
    store = RunStore(Path(f"{out}.flashlane.db"), create=False)
    try:
        assert [o for (o,) in store.db.execute("SELECT outcome FROM sessions")] == ["done"]
    finally:
        store.close()


def test_interrupted_batch_run_says_its_jobs_go_on_and_how_to_cancel_them(tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(20))
    out = tmp_path / "out.jsonl"
    db = Path(f"{out}.flashlane.db")
    emu = EmulatorProcess("--batch-turnaround", "60")
    try:
        cmd = [sys.executable, "-m", "flashlane", *_classify(inp, out)]
        proc = subprocess.Popen(cmd, env=subprocess_env(emu.base_url), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        wait_for(lambda: _named_jobs(db) == 1 or proc.poll() is not None, timeout=60)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        emu.stop()
    assert proc.returncode == 130, err
    assert "1 batch job(s) keep running on the server and will be billed (batches/" in err
    assert f"flashlane batch cancel {out}" in err
    store = RunStore(db, create=False)
    try:
        assert [o for (o,) in store.db.execute("SELECT outcome FROM sessions")] == ["interrupted"]
    finally:
        store.close()
