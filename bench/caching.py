"""Explicit caching of a long shared prefix: caching off vs auto, one item per request and packed.

    python bench/caching.py [--items 2000] [--guide-tokens 6000] [--latency-scale 0.02]

A custom task whose reference text (a labelling guideline) is about 6,000 tokens, plus two worked
examples, classifies ``--items`` short rows. Four arms run the real CLI (``flashlane run TASK ...
--no-cache --cache-prefix off|auto [--pack auto]``) as subprocesses against one emulator process
(modelled latency scaled by ``--latency-scale``; no quota, so packing uses its default size) and
read each run's own report (``flashlane report --json``):

- input tokens billed at the full price (prompt tokens minus cached ones), cached tokens,
  the cache's creation and storage cost, and the total cost per 1,000 items;
- ratios of auto to off for each packing mode.

Implicit cache hits are on at the rate reported for the live API at volume (1 in 138 requests,
model-facts addendum, docs.rs rig-core ``caching.rs``), so the "off" arm is priced as it would be
billed. Storage is charged for the cache's real lifetime here, i.e. in scaled time; the decision
line shows the storage the run planned for at the modelled (unscaled) pace.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _emu import emulator_process, table  # noqa: E402

LIVE_IMPLICIT_RATE = 1 / 138  # model-facts addendum: 1 hit in 138 requests on 3.8-flash at volume
WORDS = ["refund", "invoice", "crash", "login", "password", "slow", "charge", "card", "error", "timeout", "screen", "account", "billing", "update", "shipping", "parcel", "late", "broken", "warranty", "courier", "voucher"]
PHRASES = ["works great", "broke after a week", "fast shipping", "too loud", "good value", "meh",
           "love the color", "battery died", "easy setup", "would not buy again", "solid build"]


def guideline(tokens: int) -> str:
    out: list[str] = []
    n = 0
    while len("\n".join(out)) < tokens * 4:  # ~4 characters a token (models.estimate_tokens)
        words = " ".join(WORDS[(n * 7 + k) % len(WORDS)] for k in range(20))
        out.append(f"Rule {n}: a review that mentions {words} is judged on what the buyer got, not on delivery.")
        n += 1
    return "\n".join(out)


TASK = """
name = "review-sentiment"
system = "You label product reviews."
instructions = "Label the review's sentiment and say why in a few words."
template = "Review: {text}"
reference_files = ["guideline.md"]
answer_tokens = 48
[output]
type = "object"
required = ["sentiment", "why"]
properties = { sentiment = { type = "string", enum = ["positive", "negative", "neutral"] }, why = { type = "string" } }
[[examples]]
input = "Arrived broken and support never answered."
output = { sentiment = "negative", why = "broken on arrival" }
[[examples]]
input = "Does what it says, nothing more."
output = { sentiment = "neutral", why = "meets expectations" }
"""


def make_inputs(folder: Path, items: int, guide_tokens: int) -> tuple[Path, Path]:
    (folder / "guideline.md").write_text(guideline(guide_tokens), encoding="utf-8")
    task = folder / "task.toml"
    task.write_text(TASK, encoding="utf-8")
    src = folder / "reviews.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(items):
            w.writerow([f"R{i:05d}", f"{PHRASES[i % len(PHRASES)].capitalize()}, {PHRASES[(i * 5) % len(PHRASES)]}"
                                     f" (order {i})."])
    return task, src


def run_arm(task: Path, src: Path, out: Path, env: dict[str, str], *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "flashlane", "run", str(task), str(src), "--column", "text", "--id-column", "id",
           "-o", str(out), "--no-cache", "--quiet", "--concurrency", "16", *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"arm {extra} failed ({done.returncode}): {done.stderr[-2000:]}")
    rep = subprocess.run([sys.executable, "-m", "flashlane", "report", f"{out}.flashlane.db", "--json"], env=env,
                         capture_output=True, text=True, check=True)
    report: dict[str, Any] = json.loads(rep.stdout)
    report["bench_wall_s"] = wall
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--guide-tokens", type=int, default=6000)
    ap.add_argument("--latency-scale", type=float, default=0.02)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, emulator_process(
            "--latency-scale", str(args.latency_scale), "--rpm", "0", "--tpm", "0",
            "--implicit-cache-rate", f"{LIVE_IMPLICIT_RATE:.6f}") as url:
        folder = Path(tmp)
        task, src = make_inputs(folder, args.items, args.guide_tokens)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASHLANE_", "GEMINI_", "GOOGLE_"))}
        env.update({"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "bench", "FLASHLANE_LIMITS": "off",
                    "FLASHLANE_STATE_DIR": str(folder / "state")})
        arms: dict[tuple[str, str], dict[str, Any]] = {}
        for pack in ("1", "auto"):
            for mode in ("off", "auto"):
                arms[(pack, mode)] = run_arm(task, src, folder / f"out-{pack}-{mode}.jsonl", env,
                                             "--cache-prefix", mode, "--pack", pack)
    rows = []
    for (pack, mode), r in arms.items():
        cc = r.get("context_cache") or {}
        tok = r["tokens"]
        items = r["items"]["ok"]
        rows.append([f"pack {pack}", mode, r["requests"], f"{tok['full_price_input']:,}", f"{tok['cached']:,}",
                     f"${cc.get('creation_usd', 0):.5f}", f"${cc.get('storage_usd', 0):.6f}",
                     f"${r['cost_usd']:.4f}", f"${r['cost_usd'] / items * 1000:.4f}", f"{r['bench_wall_s']:.0f} s"])
    print(f"{args.items:,} items, guideline ~{args.guide_tokens:,} tokens + 2 worked examples, "
          f"gemini-3.1-flash-lite prices; implicit hits at {LIVE_IMPLICIT_RATE:.2%} of requests; latency x"
          f"{args.latency_scale}")
    print(table(["packing", "cache", "requests", "input at full price", "cached tokens", "creation", "storage",
                 "total", "per 1,000 items", "wall"], rows))
    for pack in ("1", "auto"):
        off, auto = arms[(pack, "off")], arms[(pack, "auto")]
        ratio = auto["cost_usd"] / off["cost_usd"]
        saved = off["cost_usd"] - auto["cost_usd"]
        d = (auto.get("context_cache") or {}).get("decision") or {}
        print(f"pack {pack}: auto / off cost = {ratio:.3f} (saves ${saved:.4f}, {1 - ratio:.0%}); decision: "
              f"{'cached' if d.get('use') else 'not cached'}: {d.get('reason')}")


if __name__ == "__main__":
    main()
