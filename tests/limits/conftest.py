"""Backends for the limiter suite: every test taking ``backend`` runs on memory, SQLite and Redis.

Redis: our own ``redis-server`` on a free port for the session. Without the binary the Redis
cases skip, unless ``FLASHLANE_REQUIRE_REDIS=1`` (CI), where a missing server is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flashlane.clock import TestClock
from flashlane.limits import Limiter, Limits, Store, make_store

REDIS_STARTUP_S = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                              else None)
    if binary is None:
        if os.environ.get("FLASHLANE_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not installed and FLASHLANE_REQUIRE_REDIS=1")
        pytest.skip("redis-server is not installed")
    import redis

    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + REDIS_STARTUP_S
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


StoreFactory = Callable[[], Store]


@pytest.fixture
def new_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Make stores that share one backend (the same memory store, the same file, the same Redis),
    like several processes would."""
    made: list[Store] = []
    shared: dict[str, Any] = {}
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        import redis

        redis.Redis.from_url(url).flushdb()
        shared["url"] = url

    def factory() -> Store:
        if backend == "memory":
            if not made:
                made.append(make_store("memory"))
            return made[0]
        store = make_store(backend, path=tmp_path / "limits.sqlite3", redis_url=shared.get("url"))
        made.append(store)
        return store

    yield factory
    for s in made:
        s.close()


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
def make(new_store: StoreFactory, clock: TestClock) -> Callable[..., Limiter]:
    def build(limits: Limits | str, *, clock_: TestClock | None = None) -> Limiter:
        return Limiter(new_store(), Limits.parse(limits), clock=clock_ or clock)

    return build
