"""Memory flat in file sizes (issue 22): the engine holds a request with inline files back while the
inline bytes in flight would pass its cap (scheduler.MEDIA_INFLIGHT_BYTES), and a request over the
cap by itself still goes, alone. Real SDK over real HTTP against the emulator, whose answers hang
so what is in flight stays there while the test looks; what was sent is read from the ledger (a
request's line is written just before it leaves) and the engine's own count of calls."""

from __future__ import annotations

import asyncio
import io
import json
import os
from typing import Any

import pytest
from PIL import Image

import flashlane as fl
from flashlane.call.media import as_text
from flashlane.pipeline.items import ItemBuilder
from flashlane.pipeline.job import Job
from flashlane.pipeline.scheduler import MEDIA_INFLIGHT_BYTES, Engine
from flashlane.store.run import RunStore
from flashlane.tasks import get_task
from tests.conftest import scenario
from tests.pipeline.test_media import Invoice

pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

FILES = 6


def _scan(side: int) -> fl.File:
    buf = io.BytesIO()  # noise does not compress: a file of about side * side * 3 bytes
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, "PNG")
    return fl.File(buf.getvalue())


def _sent(store: RunStore) -> int:
    return int(store.db.execute("SELECT COUNT(*) FROM requests").fetchone()[0])


def _in_flight(emu: Any, lane: fl.Lane, files: list[fl.File], cap: int) -> tuple[int, int, int]:
    """Requests in the ledger and handed to the Lane, and the engine's inline bytes in flight, once
    the engine has sent all it will while every answer hangs."""
    scenario(emu.base_url, {"action": {"hang": True}})
    task = get_task("extract")
    builder = ItemBuilder(task)
    rows = [{"text": as_text(f)} for f in files]
    store = RunStore(":memory:")
    store.items.insert(((i, it.id, it.hash, json.dumps(r)) for i, (r, it) in
                        enumerate((r, builder.build(i, r)) for i, r in enumerate(rows))), builder.duplicate)
    store.sessions.start()
    engine = Engine(Job.create(lane._client, task, {"schema": Invoice}), store, builder, concurrency=FILES,
                    media_inflight_bytes=cap)

    async def look() -> tuple[int, int, int]:
        run = asyncio.create_task(engine.run())
        for _ in range(500):  # until the first request is out
            if _sent(store):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # every worker free to send has sent by now; the rest wait on the cap
        seen = (_sent(store), engine._calls, engine._inflight_media)
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        return seen

    return asyncio.run(look())


def test_inline_bytes_in_flight_stay_under_the_cap(emu: Any, lane: fl.Lane) -> None:
    files = [_scan(60 + 4 * i) for i in range(FILES)]
    cap = files[0].size + files[1].size + files[2].size // 2  # room for two, not three
    sent, handed, inflight = _in_flight(emu, lane, files, cap)
    assert (sent, handed) == (2, 2)
    assert inflight == files[0].size + files[1].size <= cap


def test_a_request_over_the_cap_goes_alone(emu: Any, lane: fl.Lane) -> None:
    files = [_scan(60 + 4 * i) for i in range(FILES)]
    sent, handed, inflight = _in_flight(emu, lane, files, cap=files[0].size // 2)
    assert (sent, handed, inflight) == (1, 1, files[0].size)


def test_under_the_default_cap_small_files_all_go_at_once(emu: Any, lane: fl.Lane) -> None:
    files = [_scan(60 + 4 * i) for i in range(FILES)]
    sent, handed, inflight = _in_flight(emu, lane, files, cap=MEDIA_INFLIGHT_BYTES)
    assert (sent, handed) == (FILES, FILES)
    assert inflight == sum(f.size for f in files)
