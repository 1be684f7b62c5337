"""A local, wire-compatible emulator of the Gemini API, with quotas, latency and faults.

The real ``google-genai`` (Python) and ``@google/genai`` (Node) SDKs talk to it unchanged via
``base_url``. It imports only ``flashlane.models`` from flashlane, so it runs without the rest
of flashlane configured.

    from flashlane.emulator import Emulator, EmulatorConfig
    with Emulator(EmulatorConfig(rpm=10, latency_scale=0)).running() as emu:
        emu.base_url; emu.stats(); emu.reset(); emu.load_scenario([{"action": {"error": 503}}])

Modules: ``app`` (ASGI routing), ``wire`` (request parsing), ``answer`` (usage + response
shape), ``responder`` (schema -> instance, text), ``quota``, ``scenario``, ``errors``,
``latency``, ``stats``, ``clock``, ``config`` (projects file), ``caches`` (cachedContents and
implicit hits), ``tools`` (function calls, signatures, built-ins), ``files`` (Files API),
``batches`` (Batch API), ``flex`` (service tiers), ``keys`` (unknown-key checks for files and
control bodies), ``lazy`` (names loaded on first use), ``server``, ``cli``, ``pytest_plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_attributes as _lazy_attributes

__all__ = ["Emulator", "EmulatorApp", "EmulatorConfig", "ProjectConfig"]

# Loaded on first use (PEP 562), so the pytest plugin costs next to nothing in projects that
# never start an emulator.
_LAZY = {"Emulator": "server", "EmulatorApp": "app", "EmulatorConfig": "config", "ProjectConfig": "config"}

if TYPE_CHECKING:
    from .app import EmulatorApp
    from .config import EmulatorConfig, ProjectConfig
    from .server import Emulator

__getattr__ = _lazy_attributes(__name__, _LAZY, globals())
