"""Deadlines (issue 26): 10,000 reviews with --finish-by under three scripted batch behaviours and two
deadlines, against all-standard and batch-only.

    python bench/deadline.py [--items 10000] [--pack 10] [--rpm 600]

An in-process emulator scripts each batch job (fast: done in 5 minutes; slow: 60 minutes; stuck: PENDING
until it expires). The client's clock is the emulator's (``FollowingClock``): polling a job, waiting for the
limiter or for a cut-off moves emulator time instead of waiting, so a 4-hour deadline runs in seconds. Live
requests are paced by the limiter (``--rpm``, requests a minute; concurrency auto, flex 256 in flight); the emulator answers them with
no model latency, so a live step's time here is the quota's pace alone (flex's minutes of latency are in the
plan, not in the measured finish time). Each arm is the real pipeline (``run_file``) through the SDK over HTTP,
and reads the run's own report: cost per 1,000 rows, rows per tier, finish time after the start, deadline met.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from _emu import table  # noqa: E402
from make_reviews import review  # noqa: E402

from flashlane.call.client import Client  # noqa: E402
from flashlane.emulator.clock import FollowingClock  # noqa: E402
from flashlane.emulator.config import EmulatorConfig  # noqa: E402
from flashlane.emulator.server import Emulator  # noqa: E402
from flashlane.pipeline.batch import BatchOptions  # noqa: E402
from flashlane.pipeline.runfile import RunConfig, run_file  # noqa: E402
from flashlane.tasks import get_task  # noqa: E402

LABELS = ["positive", "negative", "neutral"]
SEED = 20261207
BEHAVIOURS = {  # scenario rule actions on batchGenerateContent
    "fast": {"turnaround": 5 * 60},
    "slow": {"turnaround": 60 * 60},
    "stuck": {"batch_state": "pending"},
}
DEADLINES = {"30m": 30 * 60, "4h": 4 * 3600}


def make_input(path: Path, n: int) -> None:
    rng = random.Random(SEED)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(n):
            w.writerow([f"R{i + 1:05d}", review(rng)[2]])


def arm(emu: Emulator, src: Path, out: Path, args: argparse.Namespace, behaviour: str, *, finish_by: str | None,
        tier: str | None = None) -> dict[str, Any]:
    emu.reset()
    emu.load_scenario([{"match": {"method": "batchGenerateContent"}, "action": BEHAVIOURS[behaviour]}])
    clock = FollowingClock(emu)
    start = clock.time()
    with Client(base_url=emu.base_url, limits=f"rpm={args.rpm},tpm=0", clock=clock,
                **({"service_tier": tier} if tier else {})) as lane:
        summary = run_file(lane, get_task("classify"), RunConfig(
            input=str(src), output=str(out), column="text", id_column="id", pack=args.pack, cache=False,
            quiet=True, fresh=True, finish_by=finish_by, task_options={"labels": LABELS},
            batch=BatchOptions(max_resubmits=0)))
    rep = summary.report
    ok = rep["items"]["ok"]
    d = rep.get("deadline") or {}
    return {"ok": ok, "per_1k": rep["cost_usd"] / ok * 1000 if ok else None, "finish_s": clock.time() - start,
            "tiers": d.get("rows_by_tier") or {tier or "standard": ok},
            "cutoffs": len(d.get("cutoffs") or []), "met": d.get("met")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--pack", type=int, default=10)
    ap.add_argument("--rpm", type=int, default=600)
    args = ap.parse_args()
    rows: list[list[object]] = []
    emu = Emulator(EmulatorConfig(latency_scale=0.0)).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            src = d / "reviews.csv"
            make_input(src, args.items)
            base = arm(emu, src, d / "std.jsonl", args, "fast", finish_by=None, tier="standard")
            std_1k = base["per_1k"]

            def line(name: str, deadline: str, r: dict[str, Any], met: Any) -> None:
                tiers = ", ".join(f"{t} {n:,}" for t, n in sorted(r["tiers"].items()))
                per = "-" if r["per_1k"] is None else f"${r['per_1k']:.4f} ({r['per_1k'] / std_1k:.2f}x)"
                rows.append([name, deadline, f"{r['ok']:,}", per, f"{r['finish_s'] / 60:.1f} min", tiers,
                             r["cutoffs"], met])

            line("all-standard", "-", base, "-")
            for behaviour in BEHAVIOURS:
                for label in DEADLINES:
                    r = arm(emu, src, d / f"{behaviour}-{label}.jsonl", args, behaviour, finish_by=label)
                    line(f"--finish-by ({behaviour} batch)", label, r, "yes" if r["met"] else "NO")
                b = arm(emu, src, d / f"{behaviour}-batch.jsonl", args, behaviour, finish_by=None, tier="batch")
                line(f"batch-only ({behaviour})", "-", b,
                     " / ".join(f"{k}: {'yes' if b['ok'] == args.items and b['finish_s'] <= s else 'NO'}"
                                for k, s in DEADLINES.items()))
    finally:
        emu.stop()
    print(f"{args.items:,} rows, {args.pack} per request, limiter {args.rpm} requests/min, emulator time")
    print(table(["arm", "deadline", "rows ok", "cost / 1,000 rows", "finish", "rows by tier", "cut-offs",
                 "deadline met"], rows))


if __name__ == "__main__":
    main()
