"""Per-call overhead of Lane.generate over a bare google-genai generate_content call.

Same emulator process (latency 0), same request shape (minimal thinking, an output cap),
sequential calls, the two clients interleaved in rounds so drift hits both equally.
Goal: Lane / bare <= 1.10.

    python bench/overhead.py [--calls 400]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _emu import emulator_process, table
from google import genai
from google.genai import types

import flashlane as fl

PROMPT = "Classify the sentiment of: Fast shipping, great quality."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    with emulator_process("--latency-scale", "0") as url:
        bare = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=url, timeout=30_000))
        cfg = types.GenerateContentConfig(max_output_tokens=2048,
                                          thinking_config=types.ThinkingConfig(thinking_level="MINIMAL"))  # type: ignore[arg-type]
        lane = fl.Lane(base_url=url, api_key="bench", cache=False)

        def run_bare() -> None:
            bare.models.generate_content(model="gemini-3.1-flash-lite", contents=PROMPT, config=cfg)

        def run_lane() -> None:
            lane.generate(PROMPT)

        for _ in range(20):  # warm both connection pools
            run_bare()
            run_lane()
        per = args.calls // args.rounds
        t_bare: list[float] = []
        t_lane: list[float] = []
        for r in range(args.rounds):
            pair = ((run_bare, t_bare), (run_lane, t_lane))
            for fn, sink in (pair if r % 2 else pair[::-1]):  # alternate who goes first
                t0 = time.perf_counter()
                for _ in range(per):
                    fn()
                sink.append((time.perf_counter() - t0) / per)
        lane.close()
    b, lane_t = statistics.median(t_bare), statistics.median(t_lane)
    print(table(["client", "calls", "median ms/call", "ratio vs bare"], [
        ["google-genai generate_content (baseline)", per * args.rounds, f"{b * 1000:.3f}", "1.00"],
        ["flashlane Lane.generate", per * args.rounds, f"{lane_t * 1000:.3f}", f"{lane_t / b:.3f}"],
    ]))
    print(f"\nLane adds {(lane_t - b) * 1000:.3f} ms per call (goal: ratio <= 1.10)")


if __name__ == "__main__":
    main()
