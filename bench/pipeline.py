"""Packing vs one request per item under a free-tier-shaped quota (15 RPM, 250K TPM).

    python bench/pipeline.py [--items 2000] [--baseline-items 150] [--window 2]

An emulator process enforces the quota with a scaled window (``--window-seconds W``: one
"minute" lasts W seconds) and the client limiter uses the same window
(``FLASHLANE_LIMITS=rpm=15,tpm=250000,window=W``), so a run that would take an hour takes
a minute, and every per-minute figure is scaled back to real minutes (x 60 / W).

Both arms run the real CLI (``flashlane run classify ... --no-cache``) as a subprocess and read
the run's own report (``flashlane report --json``). The one-per-item arm is request-bound at
15 items a minute, so it runs fewer items (``--baseline-items``) and its rate is extrapolated;
its requests, tokens and cost per item are per item, so they do not depend on the count.

The quota bound is the best any client could do: min(RPM x items per request, TPM / input
tokens per item), in items per real minute.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RPM, TPM = 15, 250_000
LABELS = "positive,negative,neutral"
PHRASES = ["works great", "broke after a week", "fast shipping", "too loud", "good value", "meh",
           "love the color", "battery died", "easy setup", "would not buy again", "solid build", "okay for the price"]


def make_input(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(n):
            w.writerow([f"R{i:05d}", f"{rng.choice(PHRASES).capitalize()}, {rng.choice(PHRASES)} (#{i})."])


def start_emulator(window: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "flashlane", "emulator", "--port", "0", "--latency-scale", "0.02",
                             "--rpm", str(RPM), "--tpm", str(TPM), "--window-seconds", str(window)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def run_arm(name: str, src: Path, out: Path, env: dict[str, str], *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "flashlane", "run", "classify", str(src), "--column", "text", "--id-column", "id",
           "--labels", LABELS, "-o", str(out), "--no-cache", "--quiet", "--concurrency", "16", *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr.strip()}")
    report = subprocess.run([sys.executable, "-m", "flashlane", "report", f"{out}.flashlane.db", "--json"],
                            env=env, capture_output=True, text=True, check=True)
    return json.loads(report.stdout)


def figures(r: dict[str, Any], window: float) -> dict[str, float]:
    items = r["items"]["ok"]
    minutes = r["wall_time_s"] / window  # scaled minutes
    per_request = items / max(1, r["requests"])
    tokens_in = r["tokens"]["input"] / items
    bound = min(RPM * per_request, TPM / tokens_in)
    return {
        "items": items,
        "items_per_min": items / minutes,
        "requests": r["requests"],
        "items_per_request": per_request,
        "tokens_per_item": (r["tokens"]["input"] + r["tokens"]["output"] + r["tokens"]["thinking"]) / items,
        "input_tokens_per_item": tokens_in,
        "cost_per_1000": r["cost_usd"] / items * 1000,
        "quota_bound": bound,
        "rate_limited": r["rate_limited"],
        "wall_s": r["wall_time_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--baseline-items", type=int, default=150)
    ap.add_argument("--window", type=float, default=2.0, help="seconds per scaled minute")
    args = ap.parse_args()
    emu, url = start_emulator(args.window)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASHLANE_", "GEMINI_", "GOOGLE_"))}
            env.update(GOOGLE_GEMINI_BASE_URL=url, GEMINI_API_KEY="dummy", FLASHLANE_STATE_DIR=str(d / "state"),
                       FLASHLANE_LIMITS=f"rpm={RPM},tpm={TPM},window={args.window:g}")
            make_input(d / "base.csv", args.baseline_items)
            make_input(d / "all.csv", args.items)
            single = figures(run_arm("one-per-item", d / "base.csv", d / "single.jsonl", env), args.window)
            time.sleep(args.window * 1.2)  # let the first arm's requests leave the server's window
            packed = figures(run_arm("pack auto", d / "all.csv", d / "packed.jsonl", env, "--pack", "auto"),
                             args.window)
    finally:
        emu.terminate()
        emu.wait(10)

    rows = [
        ("items run", "items", "{:.0f}"),
        ("items / real minute", "items_per_min", "{:.1f}"),
        ("quota bound (items/min)", "quota_bound", "{:.1f}"),
        ("requests", "requests", "{:.0f}"),
        ("items per request", "items_per_request", "{:.1f}"),
        ("tokens per item (in+out+think)", "tokens_per_item", "{:.1f}"),
        ("input tokens per item", "input_tokens_per_item", "{:.1f}"),
        ("cost per 1,000 items (USD)", "cost_per_1000", "{:.4f}"),
        ("429s from the server", "rate_limited", "{:.0f}"),
        ("wall time (s, scaled)", "wall_s", "{:.1f}"),
    ]
    print(f"\nflashlane run classify: {RPM} RPM / {TPM:,} TPM quota, window {args.window:g} s = 1 minute "
          f"(one-per-item arm: {args.baseline_items} items, rate extrapolated)\n")
    print(f"{'':32} {'one per item':>14} {'--pack auto':>14} {'ratio':>8}")
    for label, key, fmt in rows:
        a, b = single[key], packed[key]
        ratio = f"{b / a:.2f}x" if a else "-"
        print(f"{label:32} {fmt.format(a):>14} {fmt.format(b):>14} {ratio:>8}")
    print(f"\npacked throughput vs one-per-item: {packed['items_per_min'] / single['items_per_min']:.1f}x (goal >= 10x)")
    print(f"packed quota bound / measured:    {packed['quota_bound'] / packed['items_per_min']:.2f} (goal <= 1.25)")
    print(f"one-per-item bound / measured:    {single['quota_bound'] / single['items_per_min']:.2f}")


if __name__ == "__main__":
    main()
