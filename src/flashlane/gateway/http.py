"""A small pooled HTTP/1.1 client on asyncio and httptools, for the gateway's upstream hop.

Why not httpx (httpx2): measured through the gateway it cost ~1.5-3.5 ms of CPU per forwarded
request (anyio, h11 and per-request URL objects), more than the whole budget the gateway has
(bench/gateway.py). This client does only what a forwarding hop needs, with the C parser that
uvicorn already uses (httptools, llhttp): one ``transport.write`` per request, keep-alive
connections pooled per origin, response bodies (``Content-Length``, chunked, or until close)
handed over chunk by chunk as they arrive, reading paused while a consumer lags, TLS through
the standard ``ssl`` module.

Failures raise builtin exceptions that ``sdk.map_exception`` classifies like any SDK's:
``ConnectionError`` subclasses (refused, reset, closed mid-answer) and ``TimeoutError``. A
request that fails on a reused keep-alive connection before any answer byte arrived is sent
once more on a fresh connection (the server closed an idle socket; it saw nothing).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

__all__ = ["HttpClient", "HttpResponse"]

MAX_IDLE_PER_ORIGIN = 512
HIGH_WATER_BYTES = 1 << 20  # pause reading the upstream while this much is buffered for a slow client
_CHUNKED = b"chunked"


class _Conn(asyncio.Protocol):
    """One connection; one request at a time (no pipelining)."""

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.writable: asyncio.Future[None] | None = None  # set while the transport's buffer is full
        self.single_use = False  # a streamed request body may have been cut short: never reused
        self._reset(None)

    def _reset(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.got_bytes = False
        self.complete = False
        self.until_close = True
        self.error: BaseException | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.head_waiter: asyncio.Future[None] | None = loop.create_future() if loop else None
        self.body_waiter: asyncio.Future[None] | None = None

    # ---------------------------------------------------------------- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(ConnectionResetError(f"bad HTTP answer from upstream: {e}"))
            if self.transport is not None:
                self.transport.close()

    def pause_writing(self) -> None:
        self.writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.writable is not None and not self.writable.done():
            self.writable.set_result(None)
        self.writable = None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.resume_writing()
        if self.complete:
            return
        if self.status and self.until_close and exc is None:
            self.on_message_complete()  # a body delimited by the end of the connection
            return
        self._fail(exc if isinstance(exc, ConnectionError) else ConnectionResetError(
            "upstream closed the connection before the answer was complete"))

    # ---------------------------------------------------------------- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        low = name.lower()
        if low == b"content-length" or (low == b"transfer-encoding" and _CHUNKED in value.lower()):
            self.until_close = False

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.head_waiter is not None and not self.head_waiter.done():
            self.head_waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER_BYTES and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        if not self.until_close and not self.parser.should_keep_alive():
            self.until_close = True  # "Connection: close": don't reuse
        self._wake()

    # ---------------------------------------------------------------- helpers
    def _wake(self) -> None:
        w = self.body_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        for w in (self.head_waiter, self.body_waiter):
            if w is not None and not w.done():
                w.set_exception(exc)
                w.exception()  # mark retrieved: a waiter nobody awaits must not warn

    @property
    def reusable(self) -> bool:
        return self.complete and not self.closed and not self.until_close and self.error is None and not self.single_use


async def _within(fut: asyncio.Future[None], timeout: float | None, loop: asyncio.AbstractEventLoop,
                  message: str) -> None:
    """Await ``fut`` for at most ``timeout`` seconds. A timer on the future itself: unlike
    ``asyncio.wait_for`` it creates no task per wait (this runs several times per request)."""
    if timeout is None:
        await fut
        return
    timer = loop.call_later(timeout, _expire, fut, message)
    try:
        await fut
    finally:
        timer.cancel()


def _expire(fut: asyncio.Future[None], message: str) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError(message))


class HttpResponse:
    """Status and headers are in; the body follows through ``chunks()`` or ``read()``."""

    def __init__(self, client: HttpClient, conn: _Conn) -> None:
        self._client = client
        self._conn = conn
        self.status = conn.status
        self.headers = conn.headers
        self._done = False

    async def chunks(self, timeout: float | None = None) -> AsyncIterator[bytes]:
        c = self._conn
        loop = asyncio.get_running_loop()
        while True:
            while c.chunks:
                data = c.chunks.popleft()
                c.buffered -= len(data)
                if c.paused and c.buffered < HIGH_WATER_BYTES // 2 and c.transport is not None:
                    c.paused = False
                    c.transport.resume_reading()
                yield data
            if c.complete:
                return
            if c.error is not None:
                raise c.error
            c.body_waiter = loop.create_future()
            try:
                await _within(c.body_waiter, timeout, loop, "the upstream answer stalled")
            finally:
                c.body_waiter = None

    async def read(self, timeout: float | None = None) -> bytes:
        parts = [chunk async for chunk in self.chunks(timeout)]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def close(self) -> None:
        if not self._done:
            self._done = True
            self._client._release(self._conn)


class HttpClient:
    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}
        self._origins: dict[str, tuple[tuple[str, str, int], bytes]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def _connect(self, key: tuple[str, str, int], timeout: float) -> _Conn:
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            tls = self._ssl
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Conn(key), host, port, ssl=tls,
                                       server_hostname=host if tls else None), timeout)
        except TimeoutError:
            raise TimeoutError(f"connecting to {host}:{port} timed out") from None
        return conn

    def _release(self, conn: _Conn) -> None:
        if conn.reusable and not self._closed:
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < MAX_IDLE_PER_ORIGIN:
                idle.append(conn)
                return
        if conn.transport is not None and not conn.closed:
            conn.transport.close()

    async def request(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                      body: bytes | AsyncIterator[bytes], *, timeout: float, connect_timeout: float) -> HttpResponse:
        """Send; return when the status line and headers are in (within ``timeout``). A body given
        as an async iterator goes out chunked as it comes, on a fresh connection (it cannot be
        sent twice), written no faster than the upstream takes it."""
        cut = url.find("/", url.find("//") + 2)
        origin, target = (url, "/") if cut < 0 else (url[:cut], url[cut:])
        parsed = self._origins.get(origin)
        if parsed is None:  # parsed once per upstream origin, not per request
            u = urlsplit(origin)
            parsed = self._origins[origin] = (
                (u.scheme, u.hostname or "", u.port or (443 if u.scheme == "https" else 80)),
                u.netloc.rsplit("@", 1)[-1].encode("latin-1"))
        key, host = parsed
        head = [f"{method} {target} HTTP/1.1\r\nhost: ".encode("latin-1"), host, b"\r\n"]
        for k, v in headers:
            head += (k, b": ", v, b"\r\n")
        loop = asyncio.get_running_loop()
        if not isinstance(body, bytes):
            # The client's own length when it sent one (upload endpoints may want it), else chunked.
            chunked = not any(k == b"content-length" for k, _ in headers)
            if chunked:
                head.append(b"transfer-encoding: chunked\r\n")
            head.append(b"\r\n")
            return await self._stream(key, b"".join(head), body, chunked, loop, timeout, connect_timeout)
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(b"content-length: %d\r\n" % len(body))
        head.append(b"\r\n")
        data = b"".join(head) + body
        for _ in range(2):
            idle = self._idle.get(key)
            conn = None
            while idle:
                c = idle.pop()
                if not c.closed:
                    conn = c
                    break
            if conn is None:
                conn = await self._connect(key, min(connect_timeout, timeout))
            else:
                conn.reused = True
            conn._reset(loop)
            assert conn.transport is not None and conn.head_waiter is not None
            conn.transport.write(data)
            try:
                await _within(conn.head_waiter, timeout, loop, "the upstream did not answer in time")
            except TimeoutError:
                conn.transport.close()
                raise
            except ConnectionError:
                if conn.reused and not conn.got_bytes:
                    continue  # a keep-alive socket the server had already closed: once more, fresh
                raise
            return HttpResponse(self, conn)
        raise ConnectionResetError("the upstream closed the connection twice")

    async def _stream(self, key: tuple[str, str, int], head: bytes, body: AsyncIterator[bytes], chunked: bool,
                      loop: asyncio.AbstractEventLoop, timeout: float, connect_timeout: float) -> HttpResponse:
        conn = await self._connect(key, min(connect_timeout, timeout))
        conn.single_use = True
        conn._reset(loop)
        assert conn.transport is not None and conn.head_waiter is not None
        try:
            conn.transport.write(head)
            async for chunk in body:
                if conn.closed or conn.head_waiter.done():
                    break  # the upstream answered (or went away) before taking it all
                conn.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                if conn.writable is not None:
                    await conn.writable
            else:
                if chunked:
                    conn.transport.write(b"0\r\n\r\n")
            await _within(conn.head_waiter, timeout, loop, "the upstream did not answer in time")
        except BaseException:
            conn.transport.close()
            raise
        return HttpResponse(self, conn)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for c in idle:
                if c.transport is not None:
                    c.transport.close()
        self._idle.clear()


