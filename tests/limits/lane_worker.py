"""A worker process that runs Lane.generate against an emulator under a shared limiter
(importable by ``spawn`` children; see test_emulator_e2e.py)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

THREADS = 4


def work(base_url: str, limits: str, limiter: str, path: str | None, redis_url: str | None, n: int,
         start_at: float, worker: int) -> dict[str, Any]:
    import flashlane as fl

    lane = fl.Lane(base_url=base_url, api_key=f"worker-{worker}-key", limits=limits, limiter=limiter,
                   limiter_path=path, redis_url=redis_url, cache=False)
    while time.time() < start_at:  # start together, after every process has imported everything
        time.sleep(0.001)
    first = time.time()

    def one(i: int) -> bool:
        try:
            lane.generate(f"worker {worker} item {i}", max_output_tokens=64)
            return True
        except fl.FlashlaneError:
            return False

    # A few threads per process, as a real pipeline has requests in flight: the limiter, not
    # one slow request after another, must set the pace.
    with ThreadPoolExecutor(THREADS) as pool:
        ok = list(pool.map(one, range(n)))
    stats = lane.stats.snapshot()
    lane.close()
    return {"first": first, "last": time.time(), "failed": ok.count(False), "rate_limited": stats["rate_limited"]}
