"""Benchmark: what the gateway adds, direct vs through ``flashlane gateway``, emulator at latency 0.

Three processes: an emulator (``flashlane emulator --latency-scale 0``), a gateway in front of
it (``flashlane gateway --pass-keys``, default adaptive limiter in memory, ledger on), and the
load generator (a minimal asyncio HTTP/1.1 client, so the client costs little CPU).

- latency: one connection, requests one after another, alternating blocks direct / gateway;
  p50 and p99 of each, and the difference (what the gateway adds);
- throughput: 64 concurrent keep-alive connections for a fixed time, direct then gateway;
- CPU: the gateway's and the emulator's CPU seconds per request during the throughput run
  (from /proc), so the cost is visible even when the machine is shared.

Goals (issue 15): <= 1 ms added at p50, >= 0.5x the direct throughput, on this 2-core machine
where client, gateway and emulator share the cores.

    python bench/gateway.py [--requests 2000] [--seconds 8] [--conns 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).parent))
from _emu import table  # noqa: E402

BODY = json.dumps({
    "contents": [{"role": "user", "parts": [{"text": "Classify the sentiment: Fast shipping, great quality."}]}],
    "generationConfig": {"thinkingConfig": {"thinkingLevel": "MINIMAL"}, "maxOutputTokens": 256},
}).encode()
PATH = "/v1/models/gemini-3.1-flash-lite:generateContent"
BLOCK = 100  # latency requests per block; blocks alternate between direct and gateway


def _request(host: str, port: int) -> bytes:
    return (f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nx-goog-api-key: bench-key\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n").encode() + BODY


class Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.req = _request(host, port)

    async def open(self) -> Conn:
        self.r, self.w = await asyncio.open_connection(self.host, self.port)
        return self

    async def one(self) -> int:
        self.w.write(self.req)
        head = await self.r.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = -1
        chunked = False
        for line in head.split(b"\r\n"):
            low = line.lower()
            if low.startswith(b"content-length:"):
                length = int(line[15:])
            elif low.startswith(b"transfer-encoding:") and b"chunked" in low:
                chunked = True
        if length >= 0:
            await self.r.readexactly(length)
        elif chunked:
            while True:
                size = int((await self.r.readuntil(b"\r\n")).strip(), 16)
                await self.r.readexactly(size + 2)
                if size == 0:
                    break
        return status

    def close(self) -> None:
        self.w.close()


def _addr(url: str) -> tuple[str, int]:
    u = urlparse(url)
    return u.hostname or "127.0.0.1", u.port or 80


async def latency(direct: str, gateway: str, n: int) -> dict[str, list[float]]:
    conns = {"direct": await Conn(*_addr(direct)).open(), "gateway": await Conn(*_addr(gateway)).open()}
    out: dict[str, list[float]] = {"direct": [], "gateway": []}
    for c in conns.values():  # warm-up: connections, caches, the gateway's upstream pool
        for _ in range(50):
            await c.one()
    for block in range(2 * n // BLOCK):
        name = "direct" if block % 2 == 0 else "gateway"
        c = conns[name]
        for _ in range(BLOCK):
            t = time.perf_counter()
            status = await c.one()
            out[name].append(time.perf_counter() - t)
            assert status == 200, status
    for c in conns.values():
        c.close()
    return out


async def throughput(url: str, conns: int, seconds: float) -> tuple[int, int, float]:
    stop = time.perf_counter() + seconds
    done = [0, 0]

    async def run() -> None:
        c = await Conn(*_addr(url)).open()
        try:
            while time.perf_counter() < stop:
                done[0 if await c.one() == 200 else 1] += 1
        finally:
            c.close()

    t = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(conns)))
    return done[0], done[1], time.perf_counter() - t


def cpu_seconds(pid: int, part: str = "all") -> float:
    """CPU seconds of a process from /proc: user + system ("all"), or one of them."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    ticks = {"all": user + system, "user": user, "system": system}[part]
    return ticks / os.sysconf("SC_CLK_TCK")


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * q))] * 1000


def _serve(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "flashlane", *args, "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=env)


def _url(p: subprocess.Popen[str]) -> str:
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    if not line.startswith("http"):
        raise RuntimeError(f"server did not start: {line!r}")
    return line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000, help="sequential requests per target (latency)")
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each throughput run")
    ap.add_argument("--conns", type=int, default=64)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "FLASHLANE_"))}
        env["FLASHLANE_STATE_DIR"] = tmp
        emu_p = _serve(["emulator", "--latency-scale", "0"], env)
        gw = None
        try:
            emu = _url(emu_p)
            gw = _serve(["gateway", "--pass-keys"], {**env, "GOOGLE_GEMINI_BASE_URL": emu})
            gw_url = _url(gw)
            lat = asyncio.run(latency(emu, gw_url, a.requests))
            rows = {}
            for name, url in (("direct", emu), ("gateway", gw_url)):
                asyncio.run(throughput(url, a.conns, 1.0))  # warm-up
                cpu0 = (cpu_seconds(gw.pid), cpu_seconds(emu_p.pid), time.process_time(),
                        cpu_seconds(gw.pid, "system"))
                ok, bad, elapsed = asyncio.run(throughput(url, a.conns, a.seconds))
                cpu1 = (cpu_seconds(gw.pid), cpu_seconds(emu_p.pid), time.process_time(),
                        cpu_seconds(gw.pid, "system"))
                per = [(b - x) / max(ok, 1) * 1000 for x, b in zip(cpu0, cpu1, strict=True)]
                rows[name] = {"rps": ok / elapsed, "errors": bad, "n": ok, "gw_cpu_ms": per[0],
                              "emu_cpu_ms": per[1], "client_cpu_ms": per[2], "gw_sys_ms": per[3]}
        finally:
            for p in (gw, emu_p):
                if p is not None:
                    p.terminate()
                    p.wait(15)
    d, g = lat["direct"], lat["gateway"]
    added50, added99 = pct(g, 0.5) - pct(d, 0.5), pct(g, 0.99) - pct(d, 0.99)
    rd, rg = rows["direct"], rows["gateway"]
    print(f"gateway benchmark: {os.cpu_count()} CPUs shared by client, gateway and emulator; emulator latency 0; "
          f"{a.requests} sequential requests per target; {a.conns} connections x {a.seconds:.0f} s")
    print(table(["", "p50 ms", "p99 ms", f"req/s @{a.conns}", "errors", "CPU/req: client", "emulator", "gateway"], [
        ["direct", f"{pct(d, 0.5):.3f}", f"{pct(d, 0.99):.3f}", f"{rd['rps']:.0f}", rd["errors"],
         f"{rd['client_cpu_ms']:.3f} ms", f"{rd['emu_cpu_ms']:.3f} ms", "-"],
        ["through gateway", f"{pct(g, 0.5):.3f}", f"{pct(g, 0.99):.3f}", f"{rg['rps']:.0f}", rg["errors"],
         f"{rg['client_cpu_ms']:.3f} ms", f"{rg['emu_cpu_ms']:.3f} ms", f"{rg['gw_cpu_ms']:.3f} ms"],
        ["gateway adds / ratio", f"+{added50:.3f}", f"+{added99:.3f}", f"{rg['rps'] / rd['rps']:.2f}x", "", "", "",
         ""],
    ]))
    print(f"gateway CPU per request: {rg['gw_cpu_ms']:.3f} ms, of which {rg['gw_sys_ms']:.3f} ms in the kernel "
          f"(socket calls); CPU-bound throughput ratio, if the machine were ours alone: "
          f"{(rd['client_cpu_ms'] + rd['emu_cpu_ms']) / (rg['client_cpu_ms'] + rg['emu_cpu_ms'] + rg['gw_cpu_ms']):.2f}x")
    print(f"goals: added p50 <= 1 ms: {'met' if added50 <= 1.0 else 'MISSED'} ({added50:.3f} ms); "
          f"throughput >= 0.5x direct: {'met' if rg['rps'] >= 0.5 * rd['rps'] else 'MISSED'} "
          f"({rg['rps'] / rd['rps']:.2f}x)")


if __name__ == "__main__":
    main()
