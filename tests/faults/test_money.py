"""Money under interrupts (issue 20): the first Ctrl-C drains the requests in flight on the engine's
clock; what is sent is in the ledger before it leaves and stays there through reruns; the report's
requests and cost equal what the emulator served, and name what a kill made us pay twice."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flashlane import Lane
from flashlane.models import Usage, cost_of
from flashlane.pipeline.items import ItemBuilder
from flashlane.pipeline.job import Job
from flashlane.pipeline.report import build_report, format_report
from flashlane.pipeline.scheduler import DRAIN_S, Engine
from flashlane.store.run import RunStore
from flashlane.tasks import get_task
from tests.conftest import ManualClock, control, scenario
from tests.pipeline.conftest import (
    LABELS,
    EmulatorProcess,
    read_jsonl,
    reviews,
    subprocess_env,
    wait_for,
    write_csv,
)

pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

ROWS = 10
CONCURRENCY = 4  # rows 0-3 go out at once; 4-9 must never be sent after the interrupt
HANGS = "review 3"  # the one request that never answers: the drain must give up on it


def _store(builder: ItemBuilder, rows: list[dict[str, Any]]) -> RunStore:
    store = RunStore(":memory:")
    store.items.insert(((i, it.id, it.hash, json.dumps(r)) for i, (r, it) in
                        enumerate((r, builder.build(i, r)) for i, r in enumerate(rows))), builder.duplicate)
    store.sessions.start()
    return store


def _generates(base_url: str) -> int:
    return int(control(base_url, "/_emulator/stats")["by_method"].get("generateContent", 0))


def test_interrupt_records_answers_in_flight_and_gives_up_after_the_drain_time(gemini_emulator: Any) -> None:
    base = gemini_emulator.base_url
    # Three answers are on their way (a short real delay) when the interrupt comes; one hangs.
    scenario(base, {"match": {"prompt_contains": HANGS}, "action": {"hang": True}},
             {"match": {"prompt_contains": "review"}, "action": {"delay": 0.3}})
    before = _generates(base)
    task = get_task("classify")
    builder = ItemBuilder(task, column="text")
    clock = ManualClock()  # the drain waits on the engine's clock: the test moves it
    with Lane(base_url=base, limits="off", clock=clock, cache=False) as lane:
        store = _store(builder, [{"text": f"review {i}"} for i in range(ROWS)])
        try:
            job = Job.create(lane._client, task, {"labels": ["a", "b"]})
            engine = Engine(job, store, builder, concurrency=CONCURRENCY)
            lines: list[str] = []

            async def interrupt_while_in_flight() -> Any:
                run = asyncio.create_task(engine.run())
                while store.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0] < CONCURRENCY:
                    await asyncio.sleep(0.01)
                lines.append(engine.interrupt("SIGINT"))
                # The three delayed answers arrive and are recorded; the hung one holds the run.
                while store.items.counts()["ok"] < CONCURRENCY - 1:
                    await asyncio.sleep(0.01)
                clock.advance(DRAIN_S - 1)
                await asyncio.sleep(0.2)
                assert not run.done(), "the drain ended before its time"
                clock.advance(1)
                return await asyncio.wait_for(run, 10)

            outcome = asyncio.run(interrupt_while_in_flight())
            store.sessions.end(outcome.status)
            report = build_report(store)
        finally:
            store.close()
    assert outcome.status == "interrupted"
    assert f"waiting up to {DRAIN_S:g} s for {CONCURRENCY} request(s) in flight" in lines[0]
    assert "Ctrl-C again stops at once" in lines[0]
    # Nothing sent after the interrupt: the server saw exactly the requests in flight.
    assert _generates(base) - before == CONCURRENCY
    assert report["items"]["ok"] == CONCURRENCY - 1 and report["items"]["pending"] == ROWS - CONCURRENCY + 1
    # The hung request went out and was never answered: it counts, at most its full cost.
    assert report["requests"] == CONCURRENCY and report["unanswered_requests"] == 1
    assert report["lost_answers"]["requests"] == 1 and report["lost_answers"]["max_usd"] > 0
    assert report["paid_twice"]["requests"] == 0
    assert "lost      1 requests sent whose answers were never recorded" in format_report(report)


def test_a_reset_keeps_the_ledger(tmp_path: Path) -> None:
    """A run that finished no row is replaced by a corrected command; the requests it sent stay."""
    store = RunStore(tmp_path / "r.db")
    try:
        store.items.insert([(0, "a", "h", "{}")], lambda *a: ValueError())
        store.metadata.set(fingerprint="x")
        store.sessions.start()
        store.requests.sent(started=1.0, item_ids=["a"], max_cost_usd=0.001)
        store.sessions.end("killed")
        assert not store.items.has_work()
        store.reset()
        assert store.is_new() and store.items.counts() == {"pending": 0, "ok": 0, "failed": 0}
        led = store.totals.ledger()
        assert led["requests"] == 1 and led["unanswered"] == 1 and led["sessions"] == 1
        assert store.totals.lost()["max_usd"] == pytest.approx(0.001)
    finally:
        store.close()


# ---------------------------------------------------------------------------- as processes

PACK = 3
PROC_ROWS = 60  # 20 packs of 3
WORKERS = 4


def _cmd(src: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "flashlane", "run", "classify", str(src), "--column", "text", "--labels", LABELS,
            "-o", str(out), "--no-cache", "--quiet", "--concurrency", str(WORKERS), "--pack", str(PACK)]


def _slow_packs(base_url: str, first_pack: int, delay_s: float) -> None:
    """Packs ``first_pack`` .. +WORKERS answer after ``delay_s``, once each (a rerun's copy answers at once);
    every other request answers at once. When all of them have arrived every worker waits on one:
    nothing is between its ledger line and the wire, so a kill then is exact to count."""
    scenario(base_url, *({"match": {"prompt_contains": f"row-{(first_pack + k) * PACK:04d}"}, "times": 1,
                          "action": {"delay": delay_s}} for k in range(WORKERS)))


def _slow_packs_arrived(base_url: str) -> bool:
    return all(r["fired"] for r in control(base_url, "/_emulator/scenario")["rules"])


def _served(base_url: str) -> tuple[int, float]:
    """Generate requests the emulator received, and what their tokens cost."""
    stats = control(base_url, "/_emulator/stats")
    n = int(stats["by_method"].get("generateContent", 0))
    (pm,) = stats["by_project_model"].values()
    tok = pm["tokens"]
    cost = cost_of(pm["model"], Usage(prompt_tokens=tok["prompt"], output_tokens=tok["candidates"] + tok["thoughts"]))
    return n, float(cost or 0.0)


def _report(db: Path) -> dict[str, Any]:
    store = RunStore(db, create=False)
    try:
        return build_report(store)
    finally:
        store.close()


@pytest.fixture
def emu_proc() -> Any:
    emu = EmulatorProcess("--latency-scale", "0")  # only the scenario's delays: the kill moments are exact
    yield emu
    emu.stop()


def _first_run(src: Path, out: Path, emu: Any, sig: int) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(_cmd(src, out), env=subprocess_env(emu.base_url), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: _slow_packs_arrived(emu.base_url) or proc.poll() is not None, timeout=60)
    assert proc.poll() is None, "the run ended before its requests were in flight"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


def _rerun(src: Path, out: Path, emu: Any) -> None:
    again = subprocess.run(_cmd(src, out), env=subprocess_env(emu.base_url), capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stderr
    rows = read_jsonl(out)
    assert len(rows) == PROC_ROWS and all(r["status"] == "ok" for r in rows)


def test_sigint_drains_the_packs_in_flight_so_the_rerun_pays_for_none_again(tmp_path: Path, emu_proc: Any) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(PROC_ROWS))
    out = tmp_path / "o.jsonl"
    _slow_packs(emu_proc.base_url, first_pack=10, delay_s=2.0)  # in flight when Ctrl-C comes
    first = _first_run(src, out, emu_proc, signal.SIGINT)
    assert first.returncode == 130, first.stderr
    assert f"sending stopped; waiting up to {DRAIN_S:g} s for {WORKERS} request(s) in flight" in first.stderr
    done = sum(r["status"] == "ok" for r in read_jsonl(out))
    assert done == 14 * PACK  # the 4 packs in flight were answered and kept
    _rerun(src, out, emu_proc)
    served, cost = _served(emu_proc.base_url)
    packs = PROC_ROWS // PACK
    assert served == packs  # nothing paid twice
    report = _report(Path(f"{out}.flashlane.db"))
    assert report["requests"] == packs and report["unanswered_requests"] == 0
    assert report["paid_twice"]["requests"] == 0
    assert report["cost_usd"] == pytest.approx(cost, rel=1e-9)


def test_sigkill_report_equals_what_the_server_served_and_names_what_was_paid_twice(tmp_path: Path,
                                                                                    emu_proc: Any) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(PROC_ROWS))
    out = tmp_path / "o.jsonl"
    db = Path(f"{out}.flashlane.db")
    _slow_packs(emu_proc.base_url, first_pack=10, delay_s=1.0)
    first = _first_run(src, out, emu_proc, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    _rerun(src, out, emu_proc)
    packs = PROC_ROWS // PACK
    # The 4 answers the kill lost were still served: wait for the emulator to finish them.
    wait_for(lambda: _served(emu_proc.base_url)[0] >= packs + WORKERS, timeout=30)
    served, cost = _served(emu_proc.base_url)
    report = _report(db)
    assert served == packs + WORKERS
    assert report["requests"] == served and report["unanswered_requests"] == WORKERS
    assert report["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert report["paid_twice"] == {"requests": WORKERS, "items": WORKERS * PACK,
                                    "usd": pytest.approx(report["lost_answers"]["estimated_usd"])}
    assert report["api_calls"] >= report["requests"]
    assert report["sessions"] == 2 and report["killed_sessions"] == 1
    assert f"twice     {WORKERS} requests ({WORKERS * PACK} items) paid twice because of a kill" in format_report(report)


def test_kill_before_the_first_row_finishes_keeps_every_request_and_session(tmp_path: Path, emu_proc: Any) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(PROC_ROWS))
    out = tmp_path / "o.jsonl"
    _slow_packs(emu_proc.base_url, first_pack=0, delay_s=1.0)  # the first requests: nothing finishes before the kill
    first = _first_run(src, out, emu_proc, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    assert not RunStore(Path(f"{out}.flashlane.db"), create=False).items.has_work()  # a run that finished nothing
    _rerun(src, out, emu_proc)
    packs = PROC_ROWS // PACK
    wait_for(lambda: _served(emu_proc.base_url)[0] >= packs + WORKERS, timeout=30)
    served, cost = _served(emu_proc.base_url)
    report = _report(Path(f"{out}.flashlane.db"))
    assert served == packs + WORKERS and report["requests"] == served
    assert report["sessions"] == 2 and report["killed_sessions"] == 1
    assert report["cost_usd"] == pytest.approx(cost, rel=1e-9)
    assert report["paid_twice"]["requests"] == WORKERS
