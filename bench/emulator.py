"""Benchmark: emulator generateContent throughput vs the same server's trivial endpoint.

Starts one emulator process (``python -m flashlane emulator --port 0 --latency-scale 0``) and
drives it with 64 concurrent keep-alive HTTP/1.1 connections spread over client processes
(default 2 x 32; a minimal asyncio client so the load generator costs little CPU). Runs the
same load against ``GET /_emulator/health`` (the uvicorn + raw-ASGI ceiling on this machine)
and ``POST /v1/models/...:generateContent``; prints a table with the ratio.

    python bench/emulator.py [--seconds 10] [--procs 2] [--conns 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from urllib.parse import urlparse

BODY = json.dumps(
    {
        "contents": [
            {"role": "user", "parts": [{"text": "Classify the sentiment: Fast shipping, great quality."}]}
        ],
        "generationConfig": {"thinkingConfig": {"thinkingLevel": "MINIMAL"}, "maxOutputTokens": 256},
    }
).encode()


def _request(kind: str, host: str, port: int) -> bytes:
    if kind == "health":
        return f"GET /_emulator/health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    head = (
        f"POST /v1/models/gemini-3.1-flash-lite:generateContent HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"x-goog-api-key: bench-key\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


async def _conn(host: str, port: int, req: bytes, stop_at: float, lat: list[float], errs: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - t)
            if status != 200:
                errs[0] += 1
    except (ConnectionError, asyncio.IncompleteReadError):
        errs[0] += 1
    finally:
        writer.close()


def _worker(args: tuple[str, str, int, int, float]) -> tuple[list[float], int]:
    kind, host, port, conns, stop_at_wall = args
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    lat: list[float] = []
    errs = [0]

    async def main() -> None:
        stop_at = time.perf_counter() + (stop_at_wall - time.time())
        await asyncio.gather(
            *(_conn(host, port, _request(kind, host, port), stop_at, lat, errs) for _ in range(conns))
        )

    asyncio.run(main())
    return lat, errs[0]


def run_load(kind: str, host: str, port: int, seconds: float, procs: int, conns: int) -> dict[str, float]:
    stop_at = time.time() + seconds
    with mp.get_context("fork").Pool(procs) as pool:
        t = time.perf_counter()
        results = pool.map(_worker, [(kind, host, port, conns, stop_at)] * procs)
        elapsed = time.perf_counter() - t
    lat = sorted(x for r in results for x in r[0])
    errs = sum(r[1] for r in results)
    n = len(lat)
    return {
        "requests": n,
        "rps": n / elapsed,
        "p50_ms": lat[n // 2] * 1000 if n else 0,
        "p99_ms": lat[min(n - 1, int(n * 0.99))] * 1000 if n else 0,
        "errors": errs,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--conns", type=int, default=32)
    a = ap.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-m", "flashlane", "emulator", "--port", "0", "--latency-scale", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = urlparse(server.stdout.readline().strip())
        host, port = url.hostname or "127.0.0.1", url.port or 80
        run_load("generate", host, port, 1.0, a.procs, a.conns)  # warm-up
        rows = {
            "health (baseline)": run_load("health", host, port, a.seconds, a.procs, a.conns),
            "generateContent": run_load("generate", host, port, a.seconds, a.procs, a.conns),
        }
    finally:
        server.terminate()
        server.wait(10)
    base = rows["health (baseline)"]["rps"]
    print(
        f"emulator benchmark: {a.procs} client procs x {a.conns} connections, {a.seconds:.0f} s each, "
        f"{os.cpu_count()} CPUs, latency-scale 0"
    )
    print(
        f"{'endpoint':<20}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs baseline':>13}"
    )
    for name, r in rows.items():
        print(
            f"{name:<20}{r['requests']:>10d}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
            f"{r['errors']:>8d}{r['rps'] / base:>12.0%}"
        )


if __name__ == "__main__":
    main()
