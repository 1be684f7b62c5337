"""Running the emulator: in a background thread (tests, ``--emulator``) or as the CLI process.

``Emulator`` binds its socket itself (so ``port=0`` gives a known free port before the server
starts), then runs uvicorn on its own event loop in a daemon thread. Calls such as ``stats()``
or ``reset()`` are executed on that loop, so they never race with requests in flight.

    with Emulator(EmulatorConfig(rpm=10, latency_scale=0)).running() as emu:
        client = genai.Client(api_key="k", http_options={"base_url": emu.base_url})
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Self, TypeVar

from .app import EmulatorApp
from .config import CONTROL_SETTINGS, EmulatorConfig

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 5.0
GRACEFUL_SHUTDOWN_S = 1
KEEP_ALIVE_S = 30
BACKLOG = 2048
T = TypeVar("T")


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets whose proto says TCP
    # (base_events._set_nodelay); with proto 0 every response written in two parts (head,
    # body) waited ~40 ms for the peer's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, host: str, port: int, *, graceful_s: int = GRACEFUL_SHUTDOWN_S,
                   keep_alive_s: int = KEEP_ALIVE_S, **options: Any) -> Any:
    """uvicorn for the emulator and the gateway: uvloop when installed, the httptools parser, no
    lifespan, no access log; ``options`` are further ``uvicorn.Config`` arguments."""
    import uvicorn

    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - uvloop is optional at runtime
        loop = "asyncio"
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:  # pragma: no cover
        http = "h11"
    return uvicorn.Config(app, host=host, port=port, loop=loop, http=http, lifespan="off", log_level="warning",
                          access_log=False, timeout_graceful_shutdown=graceful_s, timeout_keep_alive=keep_alive_s,
                          backlog=BACKLOG, **options)


class ServerThread:
    """An ASGI app served by uvicorn on an already bound socket, on its own event loop in a daemon
    thread: the emulator and the gateway both run this way. ``after`` runs on that loop once the
    server has stopped (the gateway closes its upstream connections there)."""

    def __init__(self, config: Any, sock: socket.socket, name: str,
                 after: Callable[[], Awaitable[None]] | None = None) -> None:
        import uvicorn

        self.server = uvicorn.Server(config)
        self.sock = sock
        self.loop: asyncio.AbstractEventLoop | None = None
        self._after = after
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self, what: str, timeout_s: float) -> None:
        """Start the thread; return once the server listens (RuntimeError naming ``what`` if not)."""
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"{what} failed to start")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start in time")
            time.sleep(0.002)

    def _run(self) -> None:
        factory = self.server.config.get_loop_factory()
        runner = asyncio.Runner(loop_factory=factory) if factory else asyncio.Runner()
        with runner:
            self.loop = runner.get_loop()
            runner.run(self._serve())

    async def _serve(self) -> None:
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            if self._after is not None:
                await self._after()

    def stop(self) -> None:
        """Ask the server to exit; force it after ``SHUTDOWN_TIMEOUT_S``; close the socket."""
        self.server.should_exit = True
        self.thread.join(SHUTDOWN_TIMEOUT_S)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(SHUTDOWN_TIMEOUT_S)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.loop = None


class Served:
    """A server on ``host:port`` (the emulator, the gateway): ``start``/``stop``, or
    ``with x.running():`` (and ``with x:``)."""

    host: str
    port: int
    _served: ServerThread | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        raise NotImplementedError

    def _listen(self, port: int, config: Callable[[int], Any], name: str, what: str, timeout_s: float,
                after: Callable[[], Awaitable[None]] | None = None) -> ServerThread:
        """Bind ``host:port`` (0: a free port, then known as ``self.port``) and serve uvicorn
        ``config(port)`` on it in a thread named ``name-PORT``; return once it listens."""
        sock = bind_socket(self.host, port)
        self.port = sock.getsockname()[1]
        served = ServerThread(config(self.port), sock, f"{name}-{self.port}", after)
        served.start(what, timeout_s)
        return served

    def stop(self) -> None:
        if self._served is not None:
            self._served.stop()
            self._served = None

    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Emulator(Served):
    """A Gemini API emulator served by uvicorn in a background thread."""

    def __init__(self, config: EmulatorConfig | None = None):
        self.config = config or EmulatorConfig()
        self._initial = copy.deepcopy(self.config)
        self.app = EmulatorApp(self.config)
        self.host = self.config.host
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Emulator:
        if self._served is not None:
            return self
        self._served = self._listen(self.config.port, lambda port: uvicorn_config(self.app, self.host, port),
                                    "flashlane-emulator", "emulator", STARTUP_TIMEOUT_S)
        return self

    def wait(self) -> None:
        """Block until the server thread ends."""
        if self._served is not None:
            self._served.thread.join()

    # ------------------------------------------------------------------ control (thread-safe)
    def _call(self, fn: Callable[[], T]) -> T:
        loop = self._served.loop if self._served is not None else None
        if loop is None or not loop.is_running():
            return fn()

        async def _do() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(_do(), loop).result(SHUTDOWN_TIMEOUT_S)

    def _control(self, method: str, what: str, body: dict[str, Any] | None = None, query: str = "") -> Any:
        """The control API (``/_emulator/...``) on the server's loop."""
        return self._call(lambda: self.app.control(method, what, body or {}, query))

    def stats(self) -> dict[str, Any]:
        return self._control("GET", "stats")

    def batches(self, keys: bool = False) -> dict[str, Any]:
        """Batch counters: jobs created per project/model, requests answered, keys answered twice
        (``keys=True`` adds the count per key)."""
        return self._control("GET", "batches", query="keys=1" if keys else "")

    def requests(self, limit: int | None = None) -> list[dict[str, Any]]:
        return self._call(lambda: self.app.stats.recent(limit))

    def reset(self, config: bool = False) -> None:
        """Clear stats, quota windows, scenario, request log and clock; ``config=True`` also
        restores the quota settings this emulator was started with."""

        def _do() -> None:
            if config:
                fresh = copy.deepcopy(self._initial)
                # every setting the control API can change at runtime
                for name in (*CONTROL_SETTINGS, "implicit_cache_rate"):
                    setattr(self.config, name, getattr(fresh, name))
                self.config._index()
                self.app.quota.window = self.config.window_seconds
            self.app.reset()

        self._call(_do)

    def load_scenario(self, rules: list[dict[str, Any]] | dict[str, Any], replace: bool = True) -> None:
        from .scenario import rules_from_data

        parsed = rules_from_data(rules)
        self._call(lambda: self.app.load_scenario(parsed, replace=replace))

    def clear_scenario(self) -> None:
        self._call(self.app.scenario.clear)

    def advance_clock(self, seconds: float) -> None:
        self._call(lambda: self.app.clock.advance(seconds))

    def set_clock(self, epoch: float) -> None:
        self._call(lambda: self.app.clock.set(epoch))

    def caches(self, implicit_rate: float | None = None) -> dict[str, Any]:
        """Context-cache counters (created, deleted, expired, live, references per cache, implicit
        hits); ``implicit_rate`` changes the share of repeated prefixes reported as cached."""
        body = {} if implicit_rate is None else {"implicit_rate": implicit_rate}
        return self._control("POST" if body else "GET", "caches", body)

    def configure(self, **quotas: Any) -> dict[str, Any]:
        """Change settings at runtime (``POST /_emulator/quotas``): ``rpm``, ``tpm``, ``rpd``,
        ``window_seconds``, ``tier``, ``latency_scale``, ``batch_turnaround_s``,
        ``batch_enqueued_tokens``, ``flex_latency_factor``, ``flex_shed_rate``, ``file_max_bytes``,
        and the projects-file keys (``projects``, ``invalid_keys``, ``strict_keys``,
        ``default_project``). Unknown keys and bad values raise ValueError naming the key."""
        return self._control("POST", "quotas", quotas)
