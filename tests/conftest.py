"""Every test runs with a clean environment: no real keys, temp HOME/config/state, no Google endpoint."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import pytest

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
