"""One ``flashlane run`` process vs ``flashlane.ray.map`` on 1, 2, 4 actors (issue 23).

Same emulator process, same rows (``classify``, one row per request: ``--pack 1``), latency scale
0.2. For every arm: rows/s, and CPU seconds per 1,000 rows of the processes doing flashlane's
work (the ``flashlane run`` process; the Ray actors, sampled while they live), plus the Ray
cluster's own CPU (raylet, GCS, driver, Ray Data's tasks) beside it. Then the same against a
quota (every arm must stay at its bound, no 429), and the engine's CPU per request against a
bare ``client.models.generate_content`` loop on the same emulator (latency 0): both as whole
processes, at N and 3N requests, so the per-request figure is the marginal one and start-up
(interpreter, imports, output) is shown apart.

    python bench/cluster.py [--rows 20000] [--quota-rows 3000] [--sdk-calls 1000] [--repeat 3]
    python bench/cluster.py --engine-only [--sdk-calls 1000]   # only the per-request CPU

Tier 3 RPM for Gemini 3.1 Flash-Lite: 30,000 (/work/shared/docs/model-facts.md section 2.2,
"Tier 3 | 30,000 | 30,000,000 | unlimited"; models.py carries the same row).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))

import psutil
from _emu import control, emulator_process, table

TIER3_RPM = 30_000  # model-facts.md 2.2 (Flash-Lite, Tier 3)
LABELS = "positive,negative"
CLUSTER_CPUS = 2  # this machine
# Requests in flight in the one-process arm: at latency scale 0.2 the default (16) holds it to ~50 rows/s
# whatever its CPU; an actor runs several batches of 16 at once. 64 makes the process CPU-bound, as the arms compare.
RUN_CONCURRENCY = 64
ACTOR_BATCHES_IN_FLIGHT = 2  # batches Ray Data runs at once on one actor here (its progress shows "Tasks: 2"): the same 64 per actor
QUOTA_RPM, QUOTA_WINDOW_S = 150, 3  # 50 requests/s: under every arm's ceiling, so each must be held to it


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "text": f"review {i}: the blender {'works well' if i % 3 else 'broke fast'}"}
            for i in range(n)]


def one_process(url: str, src: Path, out: Path, limits: str, concurrency: int | None = RUN_CONCURRENCY) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one ``flashlane run --pack 1`` process."""
    env = {**os.environ, "GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "bench", "FLASHLANE_LIMITS": limits}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "flashlane", "run", "classify", str(src), "-o", str(out),
                             "--labels", LABELS, "--pack", "1", "--no-cache", "--quiet", "--fresh",
                             *(["--concurrency", str(concurrency)] if concurrency else [])],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"flashlane run failed: {proc.stderr.read()[-2000:] if proc.stderr else b''!r}")
    return wall, usage.ru_utime + usage.ru_stime


class CpuSampler:
    """CPU seconds of processes while they live (Ray ends its actors when the dataset is done)."""

    def __init__(self, match: str) -> None:
        self.match, self.seen, self._stop = match, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in psutil.process_iter(["cmdline"]):
                if self.match in " ".join(p.info["cmdline"] or []):
                    try:
                        t = p.cpu_times()
                        self.seen[p.pid] = t.user + t.system
                    except psutil.Error:
                        pass
            self._stop.wait(0.2)

    def __enter__(self) -> CpuSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join()

    def total(self) -> float:
        return sum(self.seen.values())


def ray_cpu() -> float:
    """CPU seconds so far of this driver and every Ray process of the machine (not the actors')."""
    total = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    for p in psutil.process_iter(["cmdline"]):
        line = " ".join(p.info["cmdline"] or [])
        if ("ray" in line and "MapBatches(_LaneActor)" not in line and p.pid != os.getpid()
                and "flashlane emulator" not in line):
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


def ray_arm(url: str, data: list[dict[str, Any]], actors: int, limits: str) -> tuple[float, float, float]:
    """Wall seconds, actor CPU seconds and Ray's own CPU seconds of ``flashlane.ray.map``."""
    import ray
    import ray.data

    import flashlane.ray as flr

    settings = dict(base_url=url, api_key="bench", limits=limits, limiter="ray", cache=False)
    ds = ray.data.from_items(data)
    out = flr.map(ds, "classify", settings=settings, actors=actors, num_cpus=CLUSTER_CPUS / (actors + 1),
                  batch_size=500, pack=1, labels=LABELS.split(","),
                  concurrency=RUN_CONCURRENCY // ACTOR_BATCHES_IN_FLIGHT)
    before = ray_cpu()
    t0 = time.perf_counter()
    with CpuSampler("MapBatches(_LaneActor)") as cpu:
        n = out.count()  # consumes the dataset: every row through the actors
    wall = time.perf_counter() - t0
    assert n == len(data), n
    return wall, cpu.total(), ray_cpu() - before


def bare_sdk_loop(url: str, calls: int, request: str) -> None:
    """The reference the engine is held to: a bare google-genai ``generate_content`` loop, one
    request at a time. Runs as its own process (``--bare-sdk URL N REQUEST``), measured like the
    engine's. ``request``: ``plain`` (a short prompt, no schema: the issue's reference) or
    ``classify`` (the very request ``flashlane run classify`` sends: its system instruction and JSON
    schema, built by flashlane once before the loop), which shows what of the engine's CPU the SDK
    spends on the request the task needs rather than on the engine."""
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=url, timeout=30_000))
    cfg = types.GenerateContentConfig(max_output_tokens=256,
                                      thinking_config=types.ThinkingConfig(thinking_level="MINIMAL"))  # type: ignore[arg-type]
    prompt = "Classify as positive or negative: review {i}"
    if request == "classify":
        from flashlane.call.client import Client
        from flashlane.tasks import CLASSIFY
        from flashlane.tasks.runner import prepare

        built, _ = prepare(Client(base_url=url, api_key="bench", limits="off"), CLASSIFY,
                           {"text": "review {i}", "labels": LABELS.split(",")})
        cfg, prompt = built.config, str(built.text_prompt)
    for i in range(calls):
        client.models.generate_content(model="gemini-3.1-flash-lite", contents=prompt.replace("{i}", str(i)), config=cfg)


def bare_sdk_process(url: str, calls: int, request: str = "plain") -> float:
    """CPU seconds of one whole bare-SDK process making ``calls`` requests."""
    proc = subprocess.Popen([sys.executable, __file__, "--bare-sdk", url, str(calls), request], stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise RuntimeError(f"bare SDK loop failed: {proc.stderr.read()[-2000:] if proc.stderr else b''!r}")
    return usage.ru_utime + usage.ru_stime


def marginal(small: list[float], large: list[float], n: int) -> tuple[float, float, float]:
    """(CPU seconds per request, start-up CPU seconds, whole-process CPU per request at ``n``) from
    the CPU of whole processes run at ``n`` and at ``3n`` requests: the least of each kept (the run
    least disturbed by the machine's other work). The marginal cost ``(cpu(3n) - cpu(n)) / 2n`` does
    not spread interpreter start-up, imports and output writing, paid once per process, over the
    requests; start-up is what is left at ``n``."""
    per = (min(large) - min(small)) / (2 * n)
    return per, min(small) - n * per, min(small) / n


def engine_cpu(tmp: Path, calls: int, repeat: int) -> None:
    """The engine's CPU per request against the bare SDK's, latency 0 (``--engine-only``)."""
    with emulator_process("--latency-scale", "0") as url:
        def run(n: int) -> float:
            src = tmp / f"in-sdk-{n}.jsonl"
            if not src.exists():
                src.write_text("".join(json.dumps(r) + "\n" for r in rows(n)))
            # flashlane run's default concurrency: at latency 0 more in flight only adds event-loop work per request
            return one_process(url, src, tmp / "out-sdk.jsonl", "off", None)[1]

        measure = {"bare": lambda n: bare_sdk_process(url, n), "task": lambda n: bare_sdk_process(url, n, "classify"),
                   "engine": run}
        arms: dict[str, dict[int, list[float]]] = {a: {calls: [], 3 * calls: []} for a in measure}
        for _ in range(repeat):  # interleaved, so every arm sees the same load on the machine
            for n in (calls, 3 * calls):
                for a, cpu in measure.items():
                    arms[a][n].append(cpu(n))
        bare, task, engine = (marginal(arms[a][calls], arms[a][3 * calls], calls) for a in measure)
    print(f"\nCPU per request, emulator latency 0, marginal between {calls:,} and {3 * calls:,} requests "
          f"(least of {repeat} runs each):")
    print(table(["process", "ms CPU / request (marginal)", "start-up CPU s", f"whole process ms / request at {calls:,}"],
                [[name, f"{per * 1000:.3f}", f"{start:.2f}", f"{whole * 1000:.2f}"]
                 for name, (per, start, whole) in (("bare generate_content loop", bare),
                                                   ("bare loop, the classify request", task),
                                                   ("flashlane run --pack 1", engine))]))
    print(f"engine / bare SDK: {engine[0] / bare[0]:.2f}x per request (goal <= 1.5x); whole processes at "
          f"{calls:,} requests: {engine[2] / bare[2]:.2f}x; the SDK alone on the classify request (system "
          f"instruction, JSON schema): {task[0] / bare[0]:.2f}x; engine / that: {engine[0] / task[0]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--quota-rows", type=int, default=3_000)
    ap.add_argument("--sdk-calls", type=int, default=1_000)
    ap.add_argument("--actors", default="1,2,4")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each process for the per-request CPU")
    ap.add_argument("--engine-only", action="store_true", help="only the engine's CPU per request vs the bare SDK")
    ap.add_argument("--bare-sdk", nargs=3, metavar=("URL", "CALLS", "REQUEST"), help=argparse.SUPPRESS)  # the child
    args = ap.parse_args()
    if args.bare_sdk:
        bare_sdk_loop(args.bare_sdk[0], int(args.bare_sdk[1]), args.bare_sdk[2])
        return
    if args.engine_only:
        engine_cpu(Path(tempfile.mkdtemp(prefix="flashlane-cpu-bench-")), args.sdk_calls, args.repeat)
        return
    arms = [int(a) for a in args.actors.split(",")]

    import ray

    ray.init(num_cpus=CLUSTER_CPUS, include_dashboard=False, log_to_driver=False)
    tmp = Path(tempfile.mkdtemp(prefix="flashlane-cluster-bench-"))
    results: dict[str, Any] = {}
    for title, n, emu_args, limits in (
            ("no quota", args.rows, (), "off"),
            (f"quota {QUOTA_RPM} per {QUOTA_WINDOW_S}s", args.quota_rows,
             ("--rpm", str(QUOTA_RPM), "--window-seconds", str(QUOTA_WINDOW_S)),
             f"rpm={QUOTA_RPM},window={QUOTA_WINDOW_S}")):
        data = rows(n)
        src = tmp / f"in-{n}.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in data))
        table_rows = []
        with emulator_process("--latency-scale", "0.2", *emu_args) as url:
            wall, cpu = one_process(url, src, tmp / "out.jsonl", limits)
            stats = control(url, "/_emulator/stats")
            table_rows.append(["flashlane run (1 process)", f"{n / wall:,.0f}", f"{cpu / n * 1000:.2f}", "-",
                               stats["by_status"].get("429", 0)])
            results[f"{title}: run"] = n / wall
            for a in arms:
                control(url, "/_emulator/reset", {})
                from flashlane.limits.actor import DEFAULT_ACTOR_NAME, DEFAULT_NAMESPACE

                try:  # a fresh quota keeper per arm
                    ray.kill(ray.get_actor(DEFAULT_ACTOR_NAME, namespace=DEFAULT_NAMESPACE))
                except ValueError:
                    pass
                wall, actor_cpu, ray_own = ray_arm(url, data, a, limits)
                stats = control(url, "/_emulator/stats")
                table_rows.append([f"flashlane.ray.map, {a} actor(s)", f"{n / wall:,.0f}",
                                   f"{actor_cpu / n * 1000:.2f}", f"{ray_own / n * 1000:.2f}",
                                   stats["by_status"].get("429", 0)])
                results[f"{title}: {a}"] = n / wall
        bound = f"; the bound is {QUOTA_RPM / QUOTA_WINDOW_S:.0f} rows/s" if limits != "off" else ""
        print(f"\n{n:,} rows, classify, --pack 1, emulator latency scale 0.2, {title}{bound}")
        print(table(["arm", "rows/s", "CPU s / 1,000 rows (flashlane)", "CPU s / 1,000 rows (Ray's own)", "429s"],
                    table_rows))

    ceiling = results["no quota: 1"]
    print(f"\nper-actor ceiling on this machine: {ceiling:,.0f} rows/s (1 actor, no quota)")
    print(f"Tier 3 Flash-Lite ({TIER3_RPM:,} RPM = {TIER3_RPM / 60:,.0f} requests/s) needs "
          f"{TIER3_RPM / 60 / ceiling:,.1f} actors at that ceiling (one row per request; packing N rows a "
          f"request divides it by N)")

    engine_cpu(tmp, args.sdk_calls, args.repeat)
    ray.shutdown()


if __name__ == "__main__":
    main()
