"""Building and running a gateway: from settings to a uvicorn server on a bound socket.

``Gateway`` runs in a background thread (tests, embedding) or under ``flashlane gateway``; the
server loop, the upstream client and the limiter all live on that thread's event loop.

    with Gateway.from_settings(load_settings(emulator=True), pass_keys=True).running() as gw:
        client = genai.Client(api_key="any", http_options={"base_url": gw.base_url})
"""

from __future__ import annotations

import asyncio
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
from ..telemetry import traced_asgi
from .app import GatewayApp, GatewayConfig
from .ledger import Ledger, Owners
from .tokens import TokenBook, load_tokens
from .upstream import Upstream

__all__ = ["DEFAULT_HOST", "DEFAULT_LEDGER_FILENAME", "DEFAULT_PORT", "Gateway", "default_ledger_path"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8790
DEFAULT_LEDGER_FILENAME = "gateway-ledger.sqlite3"
STARTUP_TIMEOUT_S = 15.0
GRACEFUL_SHUTDOWN_S = 2  # streams in flight get this long to finish on SIGTERM
KEEP_ALIVE_S = 75  # longer than common client pools' idle timeouts, so clients close first
# A request's head (request line and headers) is bounded before anyone is authenticated, so an
# unauthenticated connection costs at most this much memory and time:
# - 32 KiB, nginx's default for a request's head (large_client_header_buffers 4 8k,
#   https://nginx.org/en/docs/http/ngx_http_core_module.html#large_client_header_buffers);
#   an SDK request's head is under 1 KiB;
# - 100 fields, Apache's default (https://httpd.apache.org/docs/2.4/mod/core.html#limitrequestfields);
# - GatewayConfig.head_timeout_s to send it.
MAX_HEAD_BYTES = 32 * 1024
MAX_HEADERS = 100
_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
              b"content-length: 36\r\nconnection: close\r\n\r\nrequest header fields too large (431)")


def default_ledger_path() -> Path:
    """Next to the SQLite limiter's file: ``$FLASHLANE_STATE_DIR`` or the user state dir."""
    return default_path().parent / DEFAULT_LEDGER_FILENAME


def _uvicorn_config(app: GatewayApp, host: str, port: int) -> Any:
    """No proxy-headers middleware (the gateway reads no X-Forwarded-* header); uvicorn's access
    log stays off (``--access-log`` writes a safe one); request heads bounded."""
    # Each request a SERVER span continuing the caller's traceparent, when telemetry is on (telemetry.py).
    config = uvicorn_config(traced_asgi(app), host, port, graceful_s=GRACEFUL_SHUTDOWN_S, keep_alive_s=KEEP_ALIVE_S,
                            proxy_headers=False, server_header=False)
    config.http = bounded_protocol(app.config.head_timeout_s)  # uvicorn takes a protocol class for a name
    return config


def bounded_protocol(head_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with the head bounded (``MAX_HEAD_BYTES``, ``MAX_HEADERS``,
    ``head_timeout_s``): uvicorn itself has no such limits and keeps reading a head that never
    ends. A head too large is answered 431 and the connection closed; a head not finished in
    time, closed. The timeout is the socket's, on the event loop's own timer like every network
    timeout of the gateway's: it measures the client's pace, not a wait of the gateway's policy."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        _head_bytes = 0
        _fields = 0
        _in_head = True  # waiting for (the rest of) a request's head
        _refused = False
        _timer: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._timer = self.loop.call_later(head_timeout_s, self._too_slow)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            if self._in_head and not self._refused:  # all of this chunk was head: the parser kept it
                self._head_bytes += len(data)
                if self._head_bytes > MAX_HEAD_BYTES:
                    self._refuse()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes, self._fields = True, 0, 0
            if self._timer is None:
                self._timer = self.loop.call_later(head_timeout_s, self._too_slow)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._fields += 1
            self._head_bytes += len(name) + len(value)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._stop_timer()
            if self._fields > MAX_HEADERS or self._head_bytes > MAX_HEAD_BYTES:
                self._refuse()
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._refused:
                super().on_message_complete()

        def _stop_timer(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if self._in_head and not self.transport.is_closing():
                self.transport.close()

        def _refuse(self) -> None:
            self._refused = True
            if not self.transport.is_closing():
                self.transport.write(_TOO_LARGE)
                self.transport.close()

    return BoundedHttpToolsProtocol


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
        owners = Owners(ledger) if ledger is not None and not pass_keys else None
        app = GatewayApp(upstream, tokens, store, config=cfg, ledger=the_ledger, log=log, clock=clock, owners=owners)
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
