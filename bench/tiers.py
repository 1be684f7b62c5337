"""Service tiers: 2,000 reviews through standard, flex and batch, packed and one per request.

    python bench/tiers.py [--items 2000] [--latency-scale 0.05] [--turnaround 3]

An emulator process answers with scaled time (``--latency-scale``: model latency x scale;
flex answers slower by the emulator's flex factor; batch jobs finish ``--turnaround`` seconds
after creation). Each arm runs the real CLI (``flashlane run classify ... --service-tier T``) as a
subprocess with limits off, and reads the run's own report (``flashlane report --json``):
cost per 1,000 items, requests, tokens per item, wall time, and the rows in the output.

Goal (issue 12): batch with packing costs <= 0.5x standard with packing and <= 0.35x standard
one-per-item; 0 rows lost in every arm. Wall times are the emulator's scaled time, not a
forecast of the live API (batch there targets 24 h, flex 1-15 min).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from _emu import emulator_process, table  # noqa: E402
from make_reviews import review  # noqa: E402

LABELS = "positive,negative,neutral"
SEED = 20261126


def make_input(path: Path, n: int) -> None:
    rng = random.Random(SEED)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "product", "rating", "text"])
        for i in range(n):
            product, rating, text = review(rng)
            w.writerow([f"R{i + 1:05d}", product, rating, text])


def run_arm(src: Path, out: Path, env: dict[str, str], tier: str, pack: str | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "flashlane", "run", "classify", str(src), "--column", "text", "--id-column", "id",
           "--labels", LABELS, "-o", str(out), "--no-cache", "--quiet", "--concurrency", "16", "--service-tier", tier]
    if pack:
        cmd += ["--pack", pack]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{tier} {pack}: exit {done.returncode}\n{done.stderr[-2000:]}")
    rep = json.loads(subprocess.run([sys.executable, "-m", "flashlane", "report", "--json", f"{out}.flashlane.db"],
                                    env=env, capture_output=True, text=True, check=True).stdout)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    ok = {r["id"] for r in rows if r["status"] == "ok"}
    tok = rep["tokens"]
    done_items = rep["items"]["ok"]
    return {"cost": rep["cost_usd"], "per_1k": rep["cost_usd"] / done_items * 1000, "requests": rep["requests"],
            "tokens_per_item": (tok["input"] + tok["output"] + tok["thinking"]) / done_items, "wall": wall,
            "ok": len(ok), "rows": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--latency-scale", type=float, default=0.05)
    ap.add_argument("--turnaround", type=float, default=3.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, emulator_process(
            "--latency-scale", str(args.latency_scale), "--batch-turnaround", str(args.turnaround)) as url:
        d = Path(tmp)
        src = d / "reviews.csv"
        make_input(src, args.items)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASHLANE_", "GEMINI_", "GOOGLE_"))}
        env.update({"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "bench", "FLASHLANE_LIMITS": "off",
                    "FLASHLANE_STATE_DIR": str(d / "state")})
        results: dict[tuple[str, str], dict[str, Any]] = {}
        for tier in ("standard", "flex", "batch"):
            for pack in ("auto", None):
                name = (tier, "pack auto" if pack else "1 per request")
                results[name] = run_arm(src, d / f"{tier}-{pack or 1}.jsonl", env, tier, pack)
                r = results[name]
                print(f"{tier:<8} {name[1]:<14} done: {r['ok']}/{args.items} ok in {r['wall']:.1f} s", flush=True)
    base_pack = results[("standard", "pack auto")]["per_1k"]
    base_one = results[("standard", "1 per request")]["per_1k"]
    rows = []
    for (tier, mode), r in results.items():
        rows.append([tier, mode, f"${r['per_1k']:.4f}", f"{r['per_1k'] / base_pack:.2f}x", f"{r['per_1k'] / base_one:.2f}x",
                     r["requests"], f"{r['tokens_per_item']:.1f}", f"{r['wall']:.1f}", args.items - r["ok"]])
    print()
    print(table(["tier", "requests", "cost/1k items", "vs std+pack", "vs std 1/req", "API requests",
                 "tokens/item", "wall s", "rows lost"], rows))
    bp = results[("batch", "pack auto")]["per_1k"]
    lost = sum(args.items - r["ok"] for r in results.values())
    goal = bp <= 0.5 * base_pack and bp <= 0.35 * base_one and lost == 0
    print(f"\nbatch+pack = {bp / base_pack:.2f}x standard+pack (goal <= 0.5), {bp / base_one:.2f}x standard "
          f"1/request (goal <= 0.35); rows lost: {lost} -> {'goal met' if goal else 'GOAL MISSED'}")


if __name__ == "__main__":
    main()
