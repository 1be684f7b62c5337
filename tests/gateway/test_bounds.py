"""Issue 21: requests are bounded before anyone is authenticated. Heads too large or too slow
close the connection, bodies past the API's 20 MB are refused unread, a body nested deeper than
the parser goes is the API's 400."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from flashlane.emulator import Emulator
from flashlane.gateway import Gateway
from flashlane.gateway.app import MAX_BODY_BYTES

from .conftest import MODEL, TOKEN, UPSTREAM_KEY, GatewayProcess, gateway_env, start_gateway
from .test_tenants import raw

ABUSERS = 40
HEAD_ABUSE_BYTES = 16 * 1024 * 1024
SLICE = 64 * 1024  # each connection's head goes out a slice at a time, in turn with the others
RSS_LIMIT_KB = 200 * 1024


def _addr(base_url: str) -> tuple[str, int]:
    host, port = base_url.removeprefix("http://").split(":")
    return host, int(port)


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_forty_endless_heads_are_cut_off_and_memory_stays_bounded(upstream: Emulator, tmp_path: Path) -> None:
    env = gateway_env(tmp_path, GOOGLE_GEMINI_BASE_URL=upstream.base_url)
    gw = GatewayProcess(["--pass-keys"], env, tmp_path / "gateway.log")
    socks = []
    try:
        for _ in range(ABUSERS):
            s = socket.create_connection(_addr(gw.base_url), timeout=10)
            s.sendall(f"POST /v1beta/models/{MODEL}:generateContent HTTP/1.1\r\nHost: x\r\n".encode())
            socks.append(s)
        sent = [0] * ABUSERS
        open_ = set(range(ABUSERS))
        line = b"x-pad: " + b"a" * (SLICE - 9) + b"\r\n"
        while open_:
            for i in sorted(open_):
                try:
                    socks[i].sendall(line)
                    sent[i] += len(line)
                except OSError:  # reset: the gateway closed it
                    open_.discard(i)
                    continue
                if sent[i] >= HEAD_ABUSE_BYTES:
                    open_.discard(i)
        # Every connection was closed long before its 16 MB were taken (socket buffers hold some).
        assert max(sent) < HEAD_ABUSE_BYTES // 4, sent
        for s in socks:
            s.settimeout(10)
            try:
                answer = s.recv(64)
            except OSError:
                answer = b""  # reset before the 431 could be read
            assert answer in (b"",) or answer.startswith(b"HTTP/1.1 431"), answer
        assert _peak_rss_kb(gw.proc.pid) < RSS_LIMIT_KB
        # And it still serves.
        s = socket.create_connection(_addr(gw.base_url), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(64).startswith(b"HTTP/1.1 200")
        s.close()
    finally:
        for s in socks:
            s.close()
        gw.stop()


def test_a_head_too_slow_or_never_sent_is_closed(upstream: Emulator, tokens_file: Path) -> None:
    gw = start_gateway(upstream, tokens_file, head_timeout_s=0.5)
    try:
        silent = socket.create_connection(_addr(gw.base_url), timeout=10)
        slow = socket.create_connection(_addr(gw.base_url), timeout=10)
        slow.sendall(f"POST /v1beta/models/{MODEL}:generateContent HTTP/1.1\r\nx-goog-api-key: {TOKEN}\r\n".encode())
        t0 = time.monotonic()
        assert silent.recv(64) == b"" and slow.recv(64) == b""  # closed by the gateway, not by our timeout
        assert time.monotonic() - t0 < 5
        silent.close()
        slow.close()
    finally:
        gw.stop()
    assert upstream.stats()["requests_total"] == 0


def test_too_many_header_fields_are_refused(gateway: Gateway, upstream: Emulator) -> None:
    s = socket.create_connection(_addr(gateway.base_url), timeout=10)
    fields = "".join(f"x-f{i}: v\r\n" for i in range(101))
    s.sendall(f"GET /v1beta/models HTTP/1.1\r\nx-goog-api-key: {TOKEN}\r\n{fields}\r\n".encode())
    assert s.recv(64).startswith(b"HTTP/1.1 431")
    s.close()
    assert upstream.stats()["requests_total"] == 0


def test_an_oversized_generate_body_is_refused_unread_and_a_deep_one_is_a_400(gateway: Gateway,
                                                                             upstream: Emulator) -> None:
    # 25 MB that the JSON parser would refuse for nesting: refused for its size, so never parsed.
    deep = b'{"contents": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    big = deep + b" " * (25 * 1024 * 1024 - len(deep))
    assert len(big) > MAX_BODY_BYTES
    path = f"/v1beta/models/{MODEL}:generateContent"
    code, answer = raw(gateway, "POST", path, big, **{"x-goog-api-key": TOKEN})
    assert code == 400 and "payload size exceeds the limit" in answer["error"]["message"]
    code, answer = raw(gateway, "POST", path, deep, **{"x-goog-api-key": TOKEN})
    assert code == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert "nesting too deep" in answer["error"]["message"]
    assert upstream.stats()["requests_total"] == 0
    assert UPSTREAM_KEY not in json.dumps(answer)
