"""Building and running a gateway: from settings to a uvicorn server on a bound socket.

``Gateway`` runs in a background thread (tests, embedding) or under ``flashlane gateway``; the
server loop, the upstream client and the limiter all live on that thread's event loop.

    with Gateway.from_settings(load_settings(emulator=True), pass_keys=True).running() as gw:
        client = genai.Client(api_key="any", http_options={"base_url": gw.base_url})
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, TextIO

from ..clock import Clock
from ..config import Settings
from ..emulator.server import Served, uvicorn_config
from ..errors import ConfigError
from ..limits import make_store
from ..limits.sqlite import default_path
from ..models import DEFAULT_MODEL
from .app import GatewayApp, GatewayConfig
from .ledger import Ledger
from .tokens import TokenBook, load_tokens
from .upstream import Upstream

__all__ = ["DEFAULT_HOST", "DEFAULT_LEDGER_FILENAME", "DEFAULT_PORT", "Gateway", "default_ledger_path"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8790
DEFAULT_LEDGER_FILENAME = "gateway-ledger.sqlite3"
STARTUP_TIMEOUT_S = 15.0
GRACEFUL_SHUTDOWN_S = 2  # streams in flight get this long to finish on SIGTERM
KEEP_ALIVE_S = 75  # longer than common client pools' idle timeouts, so clients close first


def default_ledger_path() -> Path:
    """Next to the SQLite limiter's file: ``$FLASHLANE_STATE_DIR`` or the user state dir."""
    return default_path().parent / DEFAULT_LEDGER_FILENAME


def _uvicorn_config(app: GatewayApp, host: str, port: int) -> Any:
    """No proxy-headers middleware (the gateway reads no X-Forwarded-* header); uvicorn's access
    log stays off (``--access-log`` writes a safe one)."""
    return uvicorn_config(app, host, port, graceful_s=GRACEFUL_SHUTDOWN_S, keep_alive_s=KEEP_ALIVE_S,
                          proxy_headers=False, server_header=False)


class Gateway(Served):
    def __init__(self, app: GatewayApp, *, host: str = DEFAULT_HOST, port: int = 0, emulator: Any = None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._emulator = emulator  # an in-process emulator this gateway started (--emulator)

    @classmethod
    def from_settings(cls, settings: Settings, *, tokens_file: str | os.PathLike[str] | None = None,
                      pass_keys: bool = False, ledger: str | os.PathLike[str] | None = None, host: str = DEFAULT_HOST,
                      port: int = 0, config: GatewayConfig | None = None, log: TextIO | None = None,
                      clock: Clock | None = None) -> Gateway:
        if bool(tokens_file) == bool(pass_keys):
            raise ConfigError("the gateway needs exactly one of --tokens FILE or --pass-keys",
                              hint="--tokens maps gateway tokens to projects and keys; --pass-keys forwards "
                                   "each client's own key")
        tokens = TokenBook(pass_keys=True) if pass_keys else load_tokens(str(tokens_file))
        if not pass_keys and settings.backend == "gemini" and not settings.api_key and not settings.base_url:
            missing = [p for p in tokens.principals() if p.upstream_key is None]
            if missing:
                raise ConfigError(f"tokens entry {missing[0].label!r} has no upstream key and GEMINI_API_KEY is not set",
                                  hint="add api_key_env = \"VAR\" to the entry, or export GEMINI_API_KEY")
        emulator = None
        base_url = None
        if settings.backend == "emulator" and not settings.base_url:
            from ..emulator import Emulator, EmulatorConfig

            emulator = Emulator(EmulatorConfig(latency_scale=settings.emulator_latency_scale)).start()
            base_url = emulator.base_url
        upstream = Upstream(settings, base_url=base_url)
        cfg = config or GatewayConfig(limits=settings.limits)
        store = make_store(settings.limiter, path=settings.limiter_path, redis_url=settings.redis_url)
        the_ledger = Ledger(ledger) if ledger is not None else None
        app = GatewayApp(upstream, tokens, store, config=cfg, ledger=the_ledger, log=log, clock=clock)
        return cls(app, host=host, port=port, emulator=emulator)

    def start(self) -> Gateway:
        self._served = self._listen(self.port, lambda port: _uvicorn_config(self.app, self.host, port),
                                    "flashlane-gateway", "the gateway", STARTUP_TIMEOUT_S, after=self.app.upstream.aclose)
        return self

    def stop(self) -> None:
        super().stop()
        if self.app.ledger is not None:
            self.app.ledger.close()
            self.app.ledger = None
        self.app.close()
        with contextlib.suppress(Exception):
            self.app.store.close()
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None

    def describe(self) -> str:
        a = self.app
        who = "pass-keys (each client's own key; project = a hash of it)" if a.tokens.pass_keys else \
            f"{len(a.tokens)} token(s)"
        ledger = f"; ledger {a.ledger.path}" if a.ledger is not None else ""
        return (f"flashlane gateway: {self.base_url} -> {a.upstream.describe}; auth {who}; "
                f"limits {a.limiter(DEFAULT_MODEL).describe()}{ledger}")
