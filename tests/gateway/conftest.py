"""Fixtures for the gateway tests: a real emulator upstream, a gateway in front of it (in this
process, or as a ``flashlane gateway`` subprocess), real SDK clients and a tokens file.

The emulator is strict about keys: it knows only the upstream keys, so a request that reaches
it with a gateway token instead of the mapped key fails, and every test proves the mapping.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flashlane.clock import Clock
from flashlane.config import load_settings
from flashlane.emulator import Emulator, EmulatorConfig, ProjectConfig
from flashlane.gateway import Gateway, GatewayConfig
from tests.limits.conftest import redis_url  # noqa: F401 - the session's redis-server, shared

UPSTREAM_KEY = "AIzaSy-gateway-upstream-secret-0123456789"  # the real key, kept on the gateway
OTHER_KEY = "AIzaSy-gateway-other-secret-9876543210"
TOKEN = "gw-token-alice-5f3c9a"  # what clients send
TOKEN_B = "gw-token-bob-77e1d0"
MODEL = "gemini-3.1-flash-lite"
GATEWAY_STARTUP_S = 30.0


def emulator_config(**kw: Any) -> EmulatorConfig:
    cfg = EmulatorConfig(latency_scale=0.0, strict_keys=True, **kw)
    cfg.projects = {"team-a": ProjectConfig("team-a", keys=[UPSTREAM_KEY]),
                    "team-b": ProjectConfig("team-b", keys=[OTHER_KEY])}
    cfg._index()
    return cfg


@pytest.fixture
def tokens_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TEAM_A_KEY", UPSTREAM_KEY)
    p = tmp_path / "tokens.toml"
    p.write_text(f"""
[tokens.alice]
token = "{TOKEN}"
project = "team-a"
api_key_env = "TEAM_A_KEY"

[tokens.bob]
token = "{TOKEN_B}"
project = "team-b"
api_key = "{OTHER_KEY}"
""")
    return p


@pytest.fixture
def upstream() -> Iterator[Emulator]:
    with Emulator(emulator_config()).running() as emu:
        yield emu


def start_gateway(emu: Emulator, tokens: Path | None, *, limits: str = "adaptive", ledger: Path | None = None,
                  redis: str | None = None, clock: Clock | None = None, **config: Any) -> Gateway:
    settings = load_settings(env={"GOOGLE_GEMINI_BASE_URL": emu.base_url}, limits=limits,
                             limiter="redis" if redis else None, redis_url=redis)
    cfg = GatewayConfig(limits=limits, **config)
    return Gateway.from_settings(settings, tokens_file=tokens, pass_keys=tokens is None, ledger=ledger,
                                 config=cfg, clock=clock).start()


@pytest.fixture
def gateway(upstream: Emulator, tokens_file: Path, tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(upstream, tokens_file, ledger=tmp_path / "ledger.sqlite3")
    try:
        yield gw
    finally:
        gw.stop()


class GatewayProcess:
    """``flashlane gateway`` (or ``command``: ``emulator``) as a subprocess, on a free port; stderr goes
    to a file the test can read."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, command: str = "gateway") -> None:
        self.log = log
        self._err = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "flashlane", command, "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=self._err, env=env, text=True)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + GATEWAY_STARTUP_S
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http") or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError(f"{command} did not start: {line!r} {log.read_text()[-500:]}")
        self.base_url = line

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()
        return self.log.read_text()


def gateway_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "FLASHLANE_"))}
    env.update({"FLASHLANE_STATE_DIR": str(tmp_path / "state"), **extra})
    for keep in ("FLASHLANE_REQUIRE_REDIS", "FLASHLANE_REQUIRE_NODE"):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    return env
