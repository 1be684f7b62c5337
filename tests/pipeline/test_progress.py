"""Progress: rich on a terminal, plain periodic lines otherwise, nothing when quiet."""

from __future__ import annotations

import contextlib
import io
from typing import Any

from flashlane.models import Usage
from flashlane.pipeline.progress import Progress, describe
from flashlane.pipeline.scheduler import Snapshot


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _snap(done: int) -> Snapshot:
    return Snapshot(total=100, ok=done - 1, failed=1, requests=done,
                    usage=Usage(prompt_tokens=10 * done, output_tokens=5 * done), cost_usd=0.001 * done)


def test_plain_lines_are_periodic() -> None:
    buf = io.StringIO()
    with Progress(stream=buf, plain_interval_s=3600) as p:
        for n in range(1, 51):
            p.update(_snap(n))
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2  # the first update, then the final line
    assert "50/100 done (1 failed)" in lines[-1] and "items/min" in lines[-1] and "ETA" in lines[-1]
    assert "$0.0500" in lines[-1] and "750 tokens" in lines[-1]


def test_quiet_prints_nothing() -> None:
    buf = io.StringIO()
    with Progress(stream=buf, quiet=True) as p:
        p.update(_snap(5))
    assert buf.getvalue() == ""


def test_rich_on_a_tty() -> None:
    buf = _Tty()
    with Progress(stream=buf) as p:
        p.update(_snap(10))
    assert "10/100" in buf.getvalue()


def test_describe_eta() -> None:
    assert "ETA 1m30s" in describe(Snapshot(total=100, ok=40), elapsed=60.0)


def test_waiting_replaces_a_stale_eta() -> None:
    line = describe(Snapshot(total=100, ok=40, waiting="quota"), elapsed=60.0)
    assert "waiting for quota" in line and "ETA" not in line
    assert "waiting for answers" in describe(Snapshot(total=100, ok=40, waiting="answers"), elapsed=60.0)


def test_engine_reports_waiting_for_quota_while_the_limiter_holds_requests(emu: Any) -> None:
    """A limiter wait keeps the display moving (ticks) and names the wait instead of an ETA."""
    import asyncio
    import json

    from flashlane import Lane
    from flashlane.pipeline.items import ItemBuilder
    from flashlane.pipeline.job import Job
    from flashlane.pipeline.scheduler import Engine
    from flashlane.store.run import RunStore
    from flashlane.tasks import get_task
    from tests.conftest import ManualClock

    task = get_task("classify")
    builder = ItemBuilder(task, column="text")
    rows = [{"text": f"review {i}"} for i in range(3)]
    seen: list[str | None] = []
    # One request per 8 s window: the first goes at once, the next wait in the limiter.
    clock = ManualClock()  # ticks and limiter waits happen in virtual time, moved by the test
    with Lane(base_url=emu.base_url, limits="rpm=1,window=8", clock=clock) as lane:
        store = RunStore(":memory:")
        try:
            store.items.insert(((i, it.id, it.hash, json.dumps(r)) for i, (r, it) in
                                enumerate((r, builder.build(i, r)) for i, r in enumerate(rows))), builder.duplicate)
            store.sessions.start()
            job = Job.create(lane._client, task, {"labels": ["a", "b"]})
            engine = Engine(job, store, builder, concurrency=3, on_progress=lambda s: seen.append(s.waiting))

            async def run_a_while() -> None:
                task_ = asyncio.create_task(engine.run())
                for _ in range(7):  # seven 1 s ticks, all inside the first 8 s window
                    before = len(seen)
                    clock.advance(1.0)
                    for _ in range(500):  # the tick's refresh arrives (wall time bounded, not measured)
                        if len(seen) > before:
                            break
                        await asyncio.sleep(0.01)
                task_.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task_

            asyncio.run(run_a_while())
        finally:
            store.close()
    assert len(seen) >= 5  # ticks while nothing finished
    assert "quota" in seen
