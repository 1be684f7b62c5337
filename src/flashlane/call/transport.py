"""``Transport``: the one object that holds the ``google.genai.Client``; every call flashlane
makes to Gemini is a method here, and each runs inside ``boundary`` (SDK and transport
exceptions become flashlane errors; flashlane's own errors propagate as what they are).

Two kinds of call:

- **data plane** (generate, stream, count): sent by ``Client`` under the guard (breaker,
  limiter, retries, one deadline). A stream's chunks are read one ``next`` at a time inside
  the boundary, so only the SDK's parsing of an event can become ``MalformedResponse``; the
  code that reads a chunk's answer runs outside it.
- **control plane** (caches, files, batches, models): retried here (``control``) on 5xx,
  timeouts, transport faults and garbled bodies, and on a 429 that says when to come back
  (RetryInfo): a 503 while polling a batch job that may run for 24 hours must not stop the run.
  A 429 without RetryInfo (the Batch API's enqueued-token quota) is not a pause but a full
  quota, and goes back to the caller.

``open_transport`` is the factory: it starts the in-process emulator when the settings ask for
one without a base URL, so the client never imports the emulator.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

from google import genai
from google.genai import _common, types
from google.genai import batches as sdk_batches

from ..clock import Clock
from ..config import CONNECT_CHECK_S, EMULATOR_API_KEY, Settings
from ..errors import ConfigError, FlashlaneError, RateLimited
from .boundary import boundary
from .retry import RetryPolicy

__all__ = ["Transport", "open_transport", "CONTROL_ATTEMPTS", "CONTROL_DEADLINE_S"]

T = TypeVar("T")
_END = object()

# Control-plane calls: the SDK's own defaults for a retried call (google-api-core: 1 s initial,
# x2, 60 s cap) with more patience than a generate call, since nothing waits on a user for them.
CONTROL_ATTEMPTS = 8
CONTROL_DEADLINE_S = 300.0
CONTROL_POLICY = RetryPolicy(max_attempts=CONTROL_ATTEMPTS, deadline_s=CONTROL_DEADLINE_S)


def _control_retryable(error: FlashlaneError) -> bool:
    """A 429 is worth waiting for only when the server says how long (RetryInfo); 5xx,
    timeouts and transport faults are retryable by their own ``retryable``."""
    if isinstance(error, RateLimited):
        return error.retryable and error.retry_after is not None
    return bool(error.retryable)


class _Retrying:
    """One control-plane call's retries: the wait before the next attempt, or the error raised."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.start = clock.monotonic()
        self.attempts = 0

    def wait_after(self, error: FlashlaneError) -> float:
        self.attempts += 1
        delay = None
        if _control_retryable(error):
            delay = CONTROL_POLICY.delay_for(error, self.attempts, self.clock.monotonic() - self.start)
        if delay is None:
            raise error
        return delay


class Transport:
    """Every SDK call flashlane makes, inside the error boundary."""

    def __init__(self, sdk: genai.Client, *, clock: Clock, timeout_s: float, emulator_url: str | None = None,
                 stack: contextlib.ExitStack | None = None) -> None:
        self._sdk = sdk
        self.clock = clock
        self.timeout_s = timeout_s
        self.emulator_url = emulator_url
        self._stack = stack or contextlib.ExitStack()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._sdk.close()
        self._stack.close()

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self._sdk.aio.aclose()
        self.close()

    # ------------------------------------------------------------------ data plane (guarded by Client)

    def generate(self, model: str, contents: Any, config: types.GenerateContentConfig, timeout_s: float) -> Any:
        with boundary(model=model, timeout_s=timeout_s):
            return self._sdk.models.generate_content(model=model, contents=contents, config=config)

    async def agenerate(self, model: str, contents: Any, config: types.GenerateContentConfig,
                        timeout_s: float) -> Any:
        with boundary(model=model, timeout_s=timeout_s):
            return await self._sdk.aio.models.generate_content(model=model, contents=contents, config=config)

    def stream(self, model: str, contents: Any, config: types.GenerateContentConfig,
               timeout_s: float) -> Iterator[Any]:
        """The stream's chunks; each read is inside the boundary, nothing else is."""
        with boundary(model=model, timeout_s=timeout_s, streaming=True):
            it = iter(self._sdk.models.generate_content_stream(model=model, contents=contents, config=config))
        while True:
            with boundary(model=model, timeout_s=timeout_s, streaming=True):
                chunk = next(it, _END)
            if chunk is _END:
                return
            yield chunk

    async def astream(self, model: str, contents: Any, config: types.GenerateContentConfig,
                      timeout_s: float) -> AsyncIterator[Any]:
        with boundary(model=model, timeout_s=timeout_s, streaming=True):
            it = await self._sdk.aio.models.generate_content_stream(model=model, contents=contents, config=config)
        while True:
            with boundary(model=model, timeout_s=timeout_s, streaming=True):
                chunk = await anext(it, _END)
            if chunk is _END:
                return
            yield chunk

    def parse_response(self, body: dict[str, Any], *, model: str | None = None) -> types.GenerateContentResponse:
        """A GenerateContentResponse from its JSON, by the SDK's own parser (raw flex bodies,
        batch results)."""
        with boundary(model=model):
            return types.GenerateContentResponse._from_response(response=dict(body), kwargs={})

    # ------------------------------------------------------------------ control plane (retried here)

    def control(self, fn: Callable[[], T], *, model: str | None = None,
                recover: Callable[[], T | None] | None = None) -> T:
        """``fn()`` inside the boundary, retried on transient failures with the server's wait
        honoured. ``recover``: before a retry, look for what a failed attempt may have made
        anyway (a job created before its answer was lost), and return that instead."""
        retry = _Retrying(self.clock)
        while True:
            try:
                with boundary(model=model, timeout_s=self.timeout_s):
                    return fn()
            except FlashlaneError as e:
                self.clock.sleep(retry.wait_after(e))
            if recover is not None and (found := self.control(recover, model=model)) is not None:
                return found

    async def acontrol(self, fn: Callable[[], Awaitable[T]], *, model: str | None = None) -> T:
        retry = _Retrying(self.clock)
        while True:
            try:
                with boundary(model=model, timeout_s=self.timeout_s):
                    return await fn()
            except FlashlaneError as e:
                await self.clock.asleep(retry.wait_after(e))

    # models
    def count_tokens(self, model: str, contents: Any) -> int:
        resp = self.control(lambda: self._sdk.models.count_tokens(model=model, contents=contents), model=model)
        return int(resp.total_tokens or 0)

    def list_models(self) -> list[str]:
        return self.control(lambda: [str(m.name).removeprefix("models/") for m in self._sdk.models.list()])

    def get_model(self, model: str) -> Any:
        return self.control(lambda: self._sdk.models.get(model=model), model=model)

    # context caches
    async def acreate_cache(self, model: str, config: types.CreateCachedContentConfig) -> Any:
        return await self.acontrol(lambda: self._sdk.aio.caches.create(model=model, config=config), model=model)

    def create_cache(self, model: str, config: types.CreateCachedContentConfig) -> Any:
        return self.control(lambda: self._sdk.caches.create(model=model, config=config), model=model)

    def update_cache(self, name: str, config: types.UpdateCachedContentConfig) -> Any:
        return self.control(lambda: self._sdk.caches.update(name=name, config=config))

    async def aupdate_cache(self, name: str, config: types.UpdateCachedContentConfig) -> Any:
        return await self.acontrol(lambda: self._sdk.aio.caches.update(name=name, config=config))

    def delete_cache(self, name: str) -> None:
        self.control(lambda: self._sdk.caches.delete(name=name))

    # files
    def upload_file(self, source: str | bytes, config: types.UploadFileConfig) -> Any:
        """``source``: a path (the SDK streams it in 8 MiB chunks) or bytes (a fresh reader per attempt)."""
        return self.control(lambda: self._sdk.files.upload(file=_reader(source), config=config))

    async def aupload_file(self, source: str | bytes, config: types.UploadFileConfig) -> Any:
        return await self.acontrol(lambda: self._sdk.aio.files.upload(file=_reader(source), config=config))

    def get_file(self, name: str) -> Any:
        return self.control(lambda: self._sdk.files.get(name=name))

    async def aget_file(self, name: str) -> Any:
        return await self.acontrol(lambda: self._sdk.aio.files.get(name=name))

    def delete_file(self, name: str) -> None:
        self.control(lambda: self._sdk.files.delete(name=name))

    async def adelete_file(self, name: str) -> None:
        await self.acontrol(lambda: self._sdk.aio.files.delete(name=name))

    def download_file(self, name: str) -> bytes:
        return self.control(lambda: self._sdk.files.download(file=name))

    # batches
    def create_batch(self, model: str, src: Any, display_name: str) -> Any:
        """Create a job; a retry first looks the job up by its display name, so a create whose
        answer was lost never makes a second job."""
        return self.control(
            lambda: self._sdk.batches.create(model=model, src=src,
                                             config=types.CreateBatchJobConfig(display_name=display_name)),
            model=model, recover=lambda: self._find_batch(display_name))

    def find_batch(self, display_name: str) -> Any:
        """The job with this display name, or None."""
        return self.control(lambda: self._find_batch(display_name))

    def _find_batch(self, display_name: str) -> Any:
        for bj in self._sdk.batches.list(config=types.ListBatchJobsConfig(page_size=100)):
            if bj.display_name == display_name:
                return bj
        return None

    def get_batch_operation(self, name: str) -> dict[str, Any]:
        """The job's Operation as the server sent it.

        The SDK's ``BatchJob`` drops ``metadata.batchStats`` (python-genai #1323) and, in 3.6.1,
        neither ``batches.get`` nor its config offers the raw response (no ``sdk_http_response``
        on ``BatchJob``, no ``should_return_http_response`` on ``GetBatchJobConfig``). So the GET
        goes through the SDK's own API client (``Client._api_client.request``), the very call
        ``batches.get`` makes: same auth, base URL and timeout, body kept."""
        def get() -> dict[str, Any]:
            body = self._sdk._api_client.request("get", name, {}, None).body
            return dict(json.loads(body)) if body else {}
        return self.control(get)

    def cancel_batch(self, name: str) -> None:
        self.control(lambda: self._sdk.batches.cancel(name=name))

    def batch_request(self, call_model: str, contents: Any, config: types.GenerateContentConfig) -> dict[str, Any]:
        """One request as a batch file line carries it, converted by the SDK's own inline-request
        converter, so a file job's requests are byte for byte what an inline job would send."""
        req = types.InlinedRequest(model=call_model, contents=contents, config=config)
        with boundary(model=call_model):
            wire = _common.convert_to_dict(sdk_batches._InlinedRequest_to_mldev(self._sdk._api_client, req))
            # Inline media are bytes here; the SDK base64-encodes them (URL-safe) when it sends a
            # request, with this same function: a JSONL line carries them the same way.
            wire = _common.encode_unserializable_types(wire)
        return dict(wire["request"])  # type: ignore[call-overload]


def _reader(source: str | bytes) -> Any:
    return io.BytesIO(source) if isinstance(source, bytes) else source


def check_reachable(url: str, source: str | None) -> None:
    """Refuse a base URL whose server refuses connections (or whose host does not resolve), in
    one line naming the URL and where it was set; a slow connect is left to the requests."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname or "localhost", port), timeout=CONNECT_CHECK_S).close()
    except TimeoutError:
        return
    except OSError as e:
        where = f" (set by {source})" if source else ""
        raise ConfigError(f"cannot connect to {url}{where}: {e.strerror or e}",
                          hint=f"start the server at {url}, or fix or unset {source or 'the base URL'}") from None


def open_transport(settings: Settings, clock: Clock) -> Transport:
    """The transport for these settings: Gemini API, Vertex AI, a base URL, or the emulator
    (started in-process when no base URL is given)."""
    s = settings
    if s.base_url:
        check_reachable(s.base_url, s.base_url_from)
    http = types.HttpOptions(timeout=int(s.timeout_s * 1000))  # the SDK takes milliseconds
    stack = contextlib.ExitStack()
    emulator_url = None
    with boundary():
        if s.backend == "emulator":
            if not s.base_url:
                from ..emulator import (  # a leaf: the emulator imports only the catalog
                    Emulator,
                    EmulatorConfig,
                )

                emu = stack.enter_context(Emulator(EmulatorConfig(latency_scale=s.emulator_latency_scale)).running())
                emulator_url = emu.base_url
            else:
                emulator_url = s.base_url
            http.base_url = emulator_url
            sdk = genai.Client(api_key=s.api_key or EMULATOR_API_KEY, http_options=http)
        else:
            if s.base_url:
                http.base_url = s.base_url
            if s.backend == "vertex":
                if s.api_key and not s.vertex_project:
                    sdk = genai.Client(vertexai=True, api_key=s.api_key, http_options=http)
                else:
                    sdk = genai.Client(vertexai=True, project=s.vertex_project, location=s.vertex_location,
                                       http_options=http)
            else:
                sdk = genai.Client(api_key=s.api_key, http_options=http)
    return Transport(sdk, clock=clock, timeout_s=s.timeout_s, emulator_url=emulator_url, stack=stack)
