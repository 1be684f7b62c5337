"""Pipeline test helpers: a Lane on the shared in-process emulator, CLI runs, input files."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flashlane import Lane
from tests.conftest import control, run_cli, scenario, wait_for  # noqa: F401 - re-exported for the pipeline tests

LABELS = "positive,negative,neutral"
# google-genai's async client subclasses aiohttp.ClientSession, which aiohttp 3.14 deprecates;
# the pipeline drives the async client, so every test here meets it.
AIOHTTP_SUBCLASS_WARNING = "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings(AIOHTTP_SUBCLASS_WARNING))


@pytest.fixture
def emu(gemini_emulator: Any) -> Any:
    return gemini_emulator


@pytest.fixture
def lane(emu: Any) -> Iterator[Lane]:
    # limits off: these tests are about the pipeline, not pacing; an emulator 429 is still retried
    with Lane(base_url=emu.base_url, limits="off") as ln:
        yield ln


@pytest.fixture
def cli_env(emu: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", emu.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "dummy")
    monkeypatch.setenv("FLASHLANE_LIMITS", "off")
    return emu


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def reviews(n: int, tag: str = "row") -> list[dict[str, Any]]:
    """Rows whose text carries a unique marker (``row-0007``) so request logs can be matched."""
    return [{"id": str(i), "text": f"{tag}-{i:04d} the blender {'works well' if i % 3 else 'broke fast'}"}
            for i in range(n)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class EmulatorProcess:
    """``python -m flashlane emulator`` as a child process (what a user would run)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "flashlane", "emulator", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        assert self.base_url.startswith("http://"), self.base_url

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def finished_items(db: Path) -> set[str]:
    """The items a run database has an answer for, read while its run may still be writing it."""
    if not db.exists():
        return set()
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return {r[0] for r in con.execute("SELECT item_id FROM results")}
        finally:
            con.close()
    except sqlite3.Error:
        return set()


def subprocess_env(base_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASHLANE_", "GEMINI_", "GOOGLE_"))}
    env.update({"GOOGLE_GEMINI_BASE_URL": base_url, "GEMINI_API_KEY": "dummy", "FLASHLANE_LIMITS": "off",
                "FLASHLANE_STATE_DIR": os.environ.get("FLASHLANE_STATE_DIR", ""), **extra})
    return env


def quiet_total(base_url: str, quiet_s: float = 2.0, timeout_s: float = 60.0) -> int:
    """The emulator's request count once it has not changed for ``quiet_s``. A request a killed
    run had sent is answered (and logged) whenever the emulator gets to it: on a loaded machine
    seconds after the kill. Counting from here leaves those out of a rerun's log. Real time: what is
    awaited is the emulator process catching up, not a clock the test controls."""
    last, since, start = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - start < timeout_s:
        total = int(control(base_url, "/_emulator/stats")["requests_total"])
        if total != last:
            last, since = total, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return total
        time.sleep(0.1)
    raise AssertionError(f"the emulator kept answering for {timeout_s} s after the run was killed")
