"""The same N items against one emulator quota, three ways, in one run:

  (a) the tutorial loop: sequential, 3 tries, waits 1/2/4 s on an error;
  (b) google-genai's own retries: HttpRetryOptions() defaults, asyncio.gather under a semaphore;
  (c) flashlane: Lane.agenerate under the same semaphore, limiter set to the quota (and adaptive,
      which starts with no limits and learns from 429s);
  (d) flashlane adaptive after a burst: ten scripted 429s that state no quota (retryDelay 3 s,
      scaled) hit the first requests, then the real quota applies. The limiter must not learn a
      collapsed rate from requests that were never answered (goal: within 1.25x of the bound).

The window is scaled (default 6 s instead of 60 s) and so are every baseline's waits, so all
sides see the same quota shape. The bound is the quota's own limit: with RPM requests per
window, the last of N requests cannot be admitted before (ceil(N / RPM) - 1) windows have passed.

    python bench/quota.py [--items 150] [--rpm 30] [--window 6]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _emu import control, emulator_process, table
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

import flashlane as fl

MODEL = "gemini-3.1-flash-lite"
CONCURRENCY = 16
PROMPT = "Classify the sentiment of review #{i}: the delivery was quick and the product works well."


def tutorial_loop(url: str, n: int, scale: float) -> int:
    client = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=url, timeout=30_000))
    failed = 0
    for i in range(n):
        for attempt in range(3):
            try:
                client.models.generate_content(model=MODEL, contents=PROMPT.format(i=i))
                break
            except genai_errors.APIError:
                if attempt == 2:
                    failed += 1
                else:
                    time.sleep((2 ** attempt) * scale)
    return failed


async def sdk_retries(url: str, n: int, scale: float) -> int:
    retry = types.HttpRetryOptions(initial_delay=1.0 * scale, max_delay=60.0 * scale)  # defaults, scaled
    client = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=url, timeout=30_000,
                                                                          retry_options=retry))
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> bool:
        async with sem:
            try:
                await client.aio.models.generate_content(model=MODEL, contents=PROMPT.format(i=i))
                return True
            except genai_errors.APIError:
                return False

    results = await asyncio.gather(*(one(i) for i in range(n)))
    await client.aio.aclose()
    return results.count(False)


async def flashlane_run(url: str, n: int, limits: str) -> int:
    lane = fl.Lane(base_url=url, api_key="bench", limits=limits, cache=False)
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> bool:
        async with sem:
            try:
                await lane.agenerate(PROMPT.format(i=i), max_output_tokens=256)
                return True
            except fl.FlashlaneError:
                return False

    results = await asyncio.gather(*(one(i) for i in range(n)))
    await lane.__aexit__(None, None, None)
    return results.count(False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=300)
    ap.add_argument("--rpm", type=int, default=60)
    ap.add_argument("--tpm", type=int, default=250_000)
    ap.add_argument("--window", type=float, default=6.0)
    ap.add_argument("--latency-scale", type=float, default=0.05)
    args = ap.parse_args()
    n, rpm, w = args.items, args.rpm, args.window
    scale = w / 60.0
    bound = (math.ceil(n / rpm) - 1) * w
    rows: list[list[object]] = []
    with emulator_process("--rpm", str(rpm), "--tpm", str(args.tpm), "--window-seconds", str(w),
                          "--latency-scale", str(args.latency_scale)) as url:
        runs = [
            ("(a) tutorial loop, 3 tries, 1/2/4 s", lambda: tutorial_loop(url, n, scale)),
            ("(b) google-genai HttpRetryOptions() + gather", lambda: asyncio.run(sdk_retries(url, n, scale))),
            ("(c) flashlane, limits = the quota", lambda: asyncio.run(
                flashlane_run(url, n, f"rpm={rpm},tpm={args.tpm},window={w}"))),
            ("(c) flashlane, adaptive (no quota tier set)", lambda: asyncio.run(
                flashlane_run(url, n, f"adaptive,window={w}"))),
            ("(d) flashlane, adaptive after 10 unstated 429s", lambda: asyncio.run(
                flashlane_run(url, n, f"adaptive,window={w}"))),
        ]
        burst = {"rules": [{"times": 10, "action": {"error": 429, "retry_delay": 3.0 * scale}}], "replace": True}
        for name, fn in runs:
            control(url, "/_emulator/reset", {})
            time.sleep(w + 0.5)  # let the previous run's window drain
            control(url, "/_emulator/reset", {})
            if name.startswith("(d)"):
                control(url, "/_emulator/scenario", burst)
            t0 = time.perf_counter()
            failed = fn()
            makespan = time.perf_counter() - t0
            stats = control(url, "/_emulator/stats")
            sent = stats["by_method"].get("generateContent", 0)
            r429 = stats["by_status"].get("429", 0)
            done = n - failed
            # Efficiency of the items that succeeded: giving up early is not speed.
            bound_done = max(math.ceil(done / rpm) - 1, 0) * w
            eff = bound_done / makespan if makespan else 0.0
            rows.append([name, f"{makespan:.1f}", f"{eff * 100:.0f}%", sent, r429,
                         f"{(r429 / sent * 100) if sent else 0:.1f}%", failed])
    print(f"{n} items, quota {rpm} RPM / {args.tpm} TPM per {w:g} s window (scaled minute); "
          f"bound = {bound:.1f} s\n")
    print(table(["strategy", "makespan s", "efficiency vs bound", "requests", "429s", "429 rate", "items failed"],
                rows))


if __name__ == "__main__":
    main()
