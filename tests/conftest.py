"""Every test runs with a clean environment: no real keys, temp HOME/config/state, no Google endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from flashlane.clock import TestClock

_SCRUB_PREFIXES = ("FLASHLANE_", "GEMINI_", "GOOGLE_")
_KEEP = {"FLASHLANE_REQUIRE_REDIS", "FLASHLANE_REQUIRE_NODE"}


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(_SCRUB_PREFIXES) and name not in _KEEP:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("FLASHLANE_STATE_DIR", str(home / ".state" / "flashlane"))
    monkeypatch.chdir(home)


def run_cli(*args: str) -> int:
    """``flashlane ARGS`` in this process; returns the exit code."""
    from flashlane.cli.main import main

    try:
        main(list(args))
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``flashlane ARGS`` in this process: (exit code, stdout, stderr) of this command alone."""
    capsys.readouterr()
    code = run_cli(*args)
    out, err = capsys.readouterr()
    return code, out, err


class ManualClock(TestClock):
    """Virtual time that moves only when the test calls ``advance``: a sleep (sync or async, on any
    thread or event loop) returns once the clock has reached its end. A test sees what a component
    does *while* it waits (a gateway holding a request for quota, an engine ticking "waiting for
    quota") and then lets it go on, without sleeping on the wall clock."""

    __test__ = False

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        super().__init__(start)
        self._moved = threading.Condition(self._lock)
        self._waiters: list[tuple[float, Callable[[], None]]] = []

    @property
    def sleepers(self) -> int:
        """How many async sleeps are waiting for the clock to move."""
        with self._lock:
            return len(self._waiters)

    def advance(self, seconds: float) -> None:
        with self._moved:
            self._t += max(seconds, 0.0)
            due = [w for w in self._waiters if w[0] <= self._t]
            self._waiters = [w for w in self._waiters if w[0] > self._t]
            self._moved.notify_all()
        for _, wake in due:
            wake()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        with self._moved:
            end = self._t + max(seconds, 0.0)
            self._moved.wait_for(lambda: self._t >= end)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(lambda: woken.done() or woken.set_result(None))
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

        entry = (self._t + max(seconds, 0.0), wake)
        with self._lock:
            if entry[0] > self._t:
                self._waiters.append(entry)
            else:
                woken.set_result(None)
        try:
            await woken
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.02) -> None:
    """Poll ``predicate`` until it is true; AssertionError after ``timeout`` wall seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def control(base_url: str, path: str, body: Any = None, method: str | None = None) -> Any:
    """Call the emulator's control API (/_emulator/...)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def scenario(base_url: str, *rules: dict[str, Any]) -> None:
    control(base_url, "/_emulator/scenario", {"rules": list(rules), "replace": True})


def text_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with a text layer (fpdf2): each page's lines, for tests that read values out of it."""
    from fpdf import FPDF

    doc = FPDF()
    doc.set_font("Helvetica", size=12)
    for lines in pages:
        doc.add_page()
        for line in lines:
            doc.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())
