"""--finish-by: a plan across batch, flex, standard and priority, carried out with the one engine, on the
emulator's clock (a client clock that is the emulator's: sleeping moves emulator time, no waiting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flashlane import Lane
from flashlane.call.client import Client
from flashlane.emulator.clock import FollowingClock
from flashlane.models import cost_of
from flashlane.pipeline.runfile import RunConfig, run_file
from flashlane.store.run import RunStore
from flashlane.tasks import get_task
from tests.pipeline.conftest import LABELS, read_jsonl, reviews, run_cli, write_csv

MODEL = "gemini-3.1-flash-lite"
ROWS = 1000
PACK = 10  # 100 requests: the plan's default pace (60 requests a minute with limits off) leaves a batch window


def _batch_rule(**action: Any) -> dict[str, Any]:
    return {"match": {"method": "batchGenerateContent"}, "action": action}


def _run(emu: Any, tmp_path: Path, finish_by: str = "10m", rows: int = ROWS, **lane: Any) -> tuple[Any, Path]:
    inp = write_csv(tmp_path / "in.csv", reviews(rows))
    out = tmp_path / "out.jsonl"
    with Client(base_url=emu.base_url, limits="off", clock=FollowingClock(emu), **lane) as ln:
        summary = run_file(ln, get_task("classify"), RunConfig(
            input=str(inp), output=str(out), pack=PACK, cache=False, quiet=True, finish_by=finish_by,
            task_options={"labels": LABELS.split(",")}))
        now = ln.clock.time()
    # Every timestamp the run store writes is on the run's clock (here the emulator's, hours ahead of
    # the wall when a batch sat stuck): no request ends before it started, nothing ends in the future.
    store = RunStore(summary.run_db, create=False)
    try:
        for table in ("requests", "sessions", "batch_jobs"):
            start, end = ("created", "updated") if table == "batch_jobs" else ("started", "ended")
            bad = store.db.execute(f"SELECT COUNT(*) FROM {table} WHERE {end} < {start} OR {end} > ?",  # noqa: S608
                                   (now + 1,)).fetchone()[0]
            assert bad == 0, f"{bad} {table} rows off the run's clock"
    finally:
        store.close()
    return summary, out


def _attempts_per_row(db: Path) -> dict[str, list[tuple[int, str]]]:
    """Each row's requests: (request id, the tier that served it)."""
    store = RunStore(db, create=False)
    try:
        out: dict[str, list[tuple[int, str]]] = {}
        for iid, rid, tier in store.db.execute(
                "SELECT a.item_id, a.request_id, COALESCE(t.tier, 'standard') FROM attempts a "
                "LEFT JOIN request_tiers t ON t.request_id=a.request_id WHERE a.outcome='ok'"):
            out.setdefault(iid, []).append((rid, tier))
        return out
    finally:
        store.close()


def _live_answered(emu: Any) -> int:
    """generateContent requests the emulator answered (200)."""
    return sum(1 for e in emu.requests() if e.get("method") == "generateContent" and e.get("status") == 200)


def test_stuck_batch_is_cancelled_at_the_cut_off_and_the_rest_finishes_live_before_the_deadline(
        emu: Any, tmp_path: Path) -> None:
    emu.load_scenario([_batch_rule(batch_state="pending")])  # stuck in PENDING (python-genai #2974)
    start = emu.app.clock.now()
    summary, out = _run(emu, tmp_path)
    d = summary.report["deadline"]
    plan = d["plan"]
    assert plan["steps"][0]["tier"] == "batch" and plan["deadline"] == pytest.approx(start + 600, abs=5)
    # the job was cancelled at the cut-off (the batch loop wakes on it; the emulator clock also moves with
    # wall time, hence a second of slack), and read CANCELLED
    [cut] = d["cutoffs"]
    assert cut["step"] == "batch" and cut["at"] == pytest.approx(plan["steps"][0]["until"], abs=1.0)
    jobs = emu.batches(keys=True)
    assert [j["state"] for j in jobs["jobs"]] == ["CANCELLED"]
    # the rest finished live, before the deadline; every row once
    assert d["met"] is True and d["finished"] <= plan["deadline"]
    rows = read_jsonl(out)
    assert len(rows) == ROWS and all(r["status"] == "ok" for r in rows)
    per_row = _attempts_per_row(summary.run_db)
    assert len(per_row) == ROWS and all(len(v) == 1 for v in per_row.values())
    assert {t for v in per_row.values() for _, t in v} <= {"flex", "standard"}
    # the emulator's count of answered keys equals the rows: none by the cancelled job, none twice
    assert jobs["keys_answered"] == 0 and jobs["keys_answered_twice"] == {}
    assert _live_answered(emu) * PACK == ROWS
    assert d["rows_by_tier"] == {"standard": ROWS}


def test_fast_batch_carries_the_whole_run_at_half_the_standard_price(emu: Any, tmp_path: Path) -> None:
    emu.load_scenario([_batch_rule(turnaround=120)])
    summary, out = _run(emu, tmp_path)
    d = summary.report["deadline"]
    assert d["cutoffs"] == [] and d["met"] is True
    assert d["rows_by_tier"] == {"batch": ROWS}
    assert _live_answered(emu) == 0
    assert d["cost_usd"] == pytest.approx(0.5 * d["all_standard_usd"], rel=1e-9)
    assert len(read_jsonl(out)) == ROWS


def test_a_cancellation_slow_to_confirm_re_sends_no_key_before_it_is_confirmed(emu: Any, tmp_path: Path) -> None:
    emu.load_scenario([_batch_rule(batch_state="pending", cancel_delay=45)])
    summary, _ = _run(emu, tmp_path, rows=200)
    d = summary.report["deadline"]
    [cut] = d["cutoffs"]
    confirmed = cut["at"] + 45
    store = RunStore(summary.run_db, create=False)
    try:
        first_live = store.db.execute("SELECT MIN(started) FROM requests r LEFT JOIN request_tiers t ON "
                                      "t.request_id=r.id WHERE COALESCE(t.tier, '') != 'batch'").fetchone()[0]
    finally:
        store.close()
    assert first_live >= confirmed  # nothing live before the job read CANCELLED
    assert emu.batches()["jobs"][0]["state"] == "CANCELLED"
    assert d["met"] is True and summary.report["items"]["ok"] == 200


def test_a_job_that_fails_at_the_end_has_its_done_rows_kept_and_the_rest_sent_live(emu: Any, tmp_path: Path) -> None:
    emu.load_scenario([_batch_rule(batch_state="failed", done_fraction=0.4, turnaround=60)])
    summary, _ = _run(emu, tmp_path, rows=200)
    d = summary.report["deadline"]
    assert d["rows_by_tier"] == {"batch": 80, "standard": 120}
    per_row = _attempts_per_row(summary.run_db)
    assert len(per_row) == 200 and all(len(v) == 1 for v in per_row.values())


def test_a_long_deadline_moves_a_stuck_batch_to_flex_and_shed_flex_requests_to_standard(
        emu: Any, tmp_path: Path) -> None:
    emu.load_scenario([_batch_rule(batch_state="pending"),
                       {"match": {"every": 4}, "action": {"shed": True}}])  # a quarter of flex requests shed
    summary, _ = _run(emu, tmp_path, finish_by="3h", rows=200, max_attempts=1)
    d = summary.report["deadline"]
    assert [c["step"] for c in d["cutoffs"]][0] == "batch"
    tiers = d["rows_by_tier"]
    assert tiers.get("flex", 0) > 0 and tiers.get("standard", 0) > 0 and sum(tiers.values()) == 200
    per_row = _attempts_per_row(summary.run_db)
    assert len(per_row) == 200 and all(len(v) == 1 for v in per_row.values())
    assert d["met"] is True and d["cost_usd"] < d["all_standard_usd"]


def test_a_flex_answer_whose_body_says_standard_is_priced_as_standard(emu: Any) -> None:
    emu.load_scenario([{"action": {"served_tier": "standard"}}])
    with Lane(base_url=emu.base_url, limits="off", service_tier="flex") as ln:
        r = ln.generate("Say hi")
    assert r.service_tier == "standard"
    assert r.cost_usd == cost_of(MODEL, r.usage, service_tier="standard")
    assert r.cost_usd != cost_of(MODEL, r.usage, service_tier="flex")


def test_priority_is_a_named_tier_priced_from_the_catalog(cli_env: Any, tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(3))
    out = tmp_path / "out.jsonl"
    assert run_cli("run", "classify", str(inp), "--labels", LABELS, "-o", str(out), "--tier", "priority",
                   "--no-cache", "-q") == 0
    sent = [e for e in cli_env.requests() if e.get("method") == "generateContent"]
    assert len(sent) == 3
    store = RunStore(Path(f"{out}.flashlane.db"), create=False)
    try:
        tiers = [t for (t,) in store.db.execute("SELECT tier FROM request_tiers")]
    finally:
        store.close()
    assert tiers == ["priority"] * 3  # usageMetadata.serviceTier of each answer
    rows = read_jsonl(out)
    standard = sum(cost_of(MODEL, _usage(r)) or 0 for r in rows)
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(2 * standard, rel=1e-6)


def _usage(row: dict[str, Any]) -> Any:
    from flashlane.models import Usage

    u = row["usage"]
    return Usage(prompt_tokens=u["prompt_tokens"], output_tokens=u["output_tokens"] + u.get("thoughts_tokens", 0))


def test_dry_run_prints_the_plan_and_sends_nothing(cli_env: Any, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(50))
    out = tmp_path / "out.jsonl"
    assert run_cli("run", "classify", str(inp), "--labels", LABELS, "-o", str(out), "--finish-by", "2h",
                   "--dry-run", "--no-cache") == 0
    err = capsys.readouterr().err
    assert "plan      50 rows" in err and "expected $" in err and "all standard $" in err
    assert cli_env.requests() == [] and cli_env.batches()["jobs"] == []


def test_a_dry_run_leaves_the_runs_files_as_they_were_and_makes_no_cache(cli_env: Any, tmp_path: Path) -> None:
    from tests.pipeline.test_context_cache import write_task  # a 6,000-token guideline: worth a cache

    task = write_task(tmp_path)
    inp = write_csv(tmp_path / "in.csv", reviews(60))
    out = tmp_path / "out.jsonl"
    cmd = ["run", str(task), str(inp), "--column", "text", "-o", str(out), "--no-cache", "--cache-prefix", "on"]
    assert run_cli(*cmd, "--finish-by", "2h", "--dry-run") == 0
    assert not out.exists() and not Path(f"{out}.flashlane.db").exists()  # nothing ingested, nothing written
    assert cli_env.requests() == [] and cli_env.caches()["created"] == 0
    # after a run: the dry run reads its database (history, finished rows) and leaves every file byte for byte
    assert run_cli(*cmd) == 0
    kept = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert f"{out.name}.flashlane.db" in kept
    sent, made = len(cli_env.requests()), cli_env.caches()["created"]
    assert run_cli(*cmd, "--finish-by", "2h", "--dry-run") == 0
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == kept
    assert len(cli_env.requests()) == sent and cli_env.caches()["created"] == made


def test_bad_finish_by_is_one_line_exit_2(cli_env: Any, tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(2))
    assert run_cli("run", "classify", str(inp), "--labels", LABELS, "--finish-by", "soonish") == 2
    # --dry-run without --finish-by is the run's estimate (tests/pipeline/test_media_estimate.py): nothing sent.
    assert run_cli("run", "classify", str(inp), "--labels", LABELS, "--dry-run") == 0
    assert [r for r in cli_env.requests() if r["method"] == "generateContent"] == []


def test_a_cancellation_confirmed_after_the_deadline_finishes_late_never_twice(emu: Any, tmp_path: Path) -> None:
    emu.load_scenario([_batch_rule(batch_state="pending", cancel_delay=600)])
    summary, _ = _run(emu, tmp_path, rows=100)
    d = summary.report["deadline"]
    assert d["met"] is False and d["finished"] > d["deadline"]  # late, and the report says so
    assert summary.report["items"]["ok"] == 100
    first = min(e["ts"] for e in emu.requests() if e.get("method") == "generateContent")
    assert first >= d["cutoffs"][0]["at"] + 600  # nothing live before the job read CANCELLED
    assert all(len(v) == 1 for v in _attempts_per_row(summary.run_db).values())
    from flashlane.pipeline.report import format_report

    assert "deadline  missed" in format_report(summary.report)


def test_the_run_store_keeps_a_row_on_one_tier_at_a_time(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "k.db")
    try:
        store.items.insert(((i, f"r{i}", "h", "{}") for i in range(4)), lambda *a: ValueError(a))
        store.sessions.start()
        store.batch.intend(display_name="d1", mode="inline", model=MODEL, requests=[("k0", ["r0"])], reserved_usd=0)
        store.requests.sent(started=0.0, item_ids=["r1"], max_cost_usd=None)
        live = [iid for _, iid, _, _ in store.items.pending_after(-1, 10)]
        batch = [iid for _, iid, _, _ in store.batch.free_pending(-1, 10)]
    finally:
        store.close()
    assert "r0" not in live and "r1" in live  # in a batch job not collected: not handed to a live request
    assert "r1" not in batch and "r0" not in batch  # in a live request not answered: not put in a job
    assert {"r2", "r3"} <= set(live) & set(batch)


def test_lane_map_takes_finish_by(emu: Any) -> None:
    emu.load_scenario([_batch_rule(batch_state="pending")])
    with Lane(base_url=emu.base_url, limits="off", clock=FollowingClock(emu)) as ln:
        results = ln.map("classify", [f"review {i}" for i in range(30)], labels=["positive", "negative"],
                         finish_by="10m", cache=False)
    d = results.report["deadline"]
    assert all(r.ok for r in results) and d["met"] is True
    assert d["plan"]["steps"][0]["tier"] == "batch" and d["cutoffs"][0]["step"] == "batch"


def test_when_standard_alone_is_too_slow_priority_runs_beside_it_as_the_last_resort(emu: Any, tmp_path: Path) -> None:
    inp = write_csv(tmp_path / "in.csv", reviews(100))
    out = tmp_path / "out.jsonl"
    with Client(base_url=emu.base_url, limits="off", clock=FollowingClock(emu)) as ln:
        summary = run_file(ln, get_task("classify"), RunConfig(
            input=str(inp), output=str(out), cache=False, quiet=True, finish_by="90s",
            task_options={"labels": LABELS.split(",")}))
    d = summary.report["deadline"]
    assert [s["tier"] for s in d["plan"]["steps"]] == ["standard", "priority"]  # no room for batch or flex
    tiers = d["rows_by_tier"]
    assert tiers.get("priority", 0) > 0 and tiers.get("standard", 0) > 0 and sum(tiers.values()) == 100
    per_row = _attempts_per_row(summary.run_db)
    assert len(per_row) == 100 and all(len(v) == 1 for v in per_row.values())  # none asked on both tiers
    assert _live_answered(emu) == 100


def test_jobs_left_by_an_earlier_session_are_cut_off_first(emu: Any, tmp_path: Path) -> None:
    from flashlane.pipeline.batch import BatchOptions

    emu.load_scenario([_batch_rule(batch_state="pending")])
    inp = write_csv(tmp_path / "in.csv", reviews(50))
    out = tmp_path / "out.jsonl"
    cfg = RunConfig(input=str(inp), output=str(out), cache=False, quiet=True, task_options={"labels": LABELS.split(",")})
    with Client(base_url=emu.base_url, limits="off", clock=FollowingClock(emu), service_tier="batch") as ln:
        first = run_file(ln, get_task("classify"), RunConfig(**{**cfg.__dict__, "batch": BatchOptions(detach=True)}))
    assert first.outcome.status == "detached"
    with Client(base_url=emu.base_url, limits="off", clock=FollowingClock(emu)) as ln:
        summary = run_file(ln, get_task("classify"), RunConfig(**{**cfg.__dict__, "finish_by": "2m"}))
    d = summary.report["deadline"]
    assert d["plan"]["steps"][0]["tier"] == "standard"  # no room for a new job
    assert [c["step"] for c in d["cutoffs"]] == ["batch"]  # the old job, cancelled before anything live
    assert emu.batches()["jobs"][0]["state"] == "CANCELLED" and summary.report["items"]["ok"] == 50
    assert all(len(v) == 1 for v in _attempts_per_row(summary.run_db).values())
