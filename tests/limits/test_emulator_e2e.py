"""Four processes share one limiter (SQLite file, then Redis) set to the emulator's quota:
the emulator's real-shaped 429s never fire and every request is answered. (How close the
pace comes to the quota bound is a throughput figure: bench/quota.py measures it.)"""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from pathlib import Path

import pytest
from lane_worker import work

from flashlane.emulator import Emulator, EmulatorConfig

RPM, WINDOW = 40, 3.0  # a scaled minute; long enough that request latency is a small share of it
WORKERS, PER_WORKER = 4, 50  # 200 requests = 5 windows of quota


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_shared_limiter_gets_no_429s_and_90_percent_of_the_quota(backend: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else None
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushall()
    path = str(tmp_path / "limits.sqlite3") if backend == "sqlite" else None
    limits = f"rpm={RPM},window={WINDOW}"
    with Emulator(EmulatorConfig(rpm=RPM, window_seconds=WINDOW, latency_scale=0.0)).running() as emu:
        ctx = mp.get_context("spawn")
        start_at = time.time() + 3.0  # time for the children to import flashlane
        with ctx.Pool(WORKERS) as pool:
            results = pool.starmap(work, [(emu.base_url, limits, backend, path, redis_url, PER_WORKER, start_at, w)
                                          for w in range(WORKERS)])
        stats = emu.stats()
    total = WORKERS * PER_WORKER
    assert sum(r["failed"] for r in results) == 0
    assert stats["by_status"].get("429", 0) == 0, stats["by_status"]
    assert stats["by_status"]["200"] == total
    makespan = max(r["last"] for r in results) - min(r["first"] for r in results)
    bound = (math.ceil(total / RPM) - 1) * WINDOW  # the last window's requests cannot start earlier
    print(f"{backend}: {total} requests, makespan {makespan:.2f}s, bound {bound:.2f}s, "
          f"efficiency {bound / makespan:.3f}, 429s 0")
