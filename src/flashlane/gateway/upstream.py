"""Where the gateway forwards: Gemini, Vertex AI or an emulator, through one pooled async client.

This is the one place flashlane talks to Gemini without the google-genai SDK: a gateway must
forward requests it does not understand byte for byte, which the SDK cannot. The client is
``http.HttpClient``: pooled keep-alive HTTP/1.1 on asyncio with the httptools parser (why not
httpx: see that module). The upstream is chosen as docs/gateway.md says (the settings every
command uses); Vertex serves only the model calls: the Gemini API's batches, files and caches
have no Vertex equivalent at the same paths.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from ..config import DEFAULT_VERTEX_LOCATION, EMULATOR_API_KEY, Settings
from ..telemetry import client_span
from .http import HttpClient, HttpResponse
from .wire import Route

__all__ = ["GEMINI_BASE_URL", "Upstream", "UpstreamResponse"]

GEMINI_BASE_URL = "https://generativelanguage.googleapis.com"
VERTEX_API_VERSION = "v1beta1"  # what google-genai uses for Vertex (see gemini-api-wire.md §1.5)
CONNECT_TIMEOUT_S = 10.0
VERTEX_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
TOKEN_REFRESH_MARGIN_S = 300.0
# Hop-by-hop (RFC 9110 §7.6.1) plus what the gateway sets itself: the credential (any
# ``Authorization`` scheme: the gateway's own replaces it), the length of a body it may
# re-serialise, and accept-encoding (answers come back identity-encoded so the gateway can read
# usageMetadata; the SDKs decode either). And what a client must not choose for the gateway's
# credential: ``x-goog-user-project`` names the project billed and whose quota is used
# (https://cloud.google.com/apis/docs/system-parameters), cookies and proxy credentials are
# the client's own, never the upstream's.
DROP_REQUEST_HEADERS = frozenset({
    b"host", b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding",
    b"upgrade", b"content-length", b"x-goog-api-key", b"authorization", b"accept-encoding",
    b"x-goog-user-project", b"cookie", b"proxy-authorization",
})
DROP_RESPONSE_HEADERS = frozenset({
    b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"date", b"server",
})


def vertex_base_url(location: str) -> str:
    """google-genai's Vertex hosts: ``global`` → aiplatform.googleapis.com, else regional."""
    if location == "global":
        return "https://aiplatform.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


UpstreamResponse = HttpResponse


class Upstream:
    def __init__(self, settings: Settings, base_url: str | None = None) -> None:
        self.settings = settings
        self.vertex = settings.backend == "vertex"
        self.express = self.vertex and bool(settings.api_key) and not settings.vertex_project
        if base_url is None:
            base_url = settings.base_url or (
                vertex_base_url(settings.vertex_location or DEFAULT_VERTEX_LOCATION) if self.vertex
                else GEMINI_BASE_URL)
        self.base_url = base_url.rstrip("/")
        self.default_key = settings.api_key or (EMULATOR_API_KEY if settings.backend == "emulator" else None)
        self._creds: Any = None
        self._creds_lock = asyncio.Lock()
        self.client = HttpClient()

    @property
    def describe(self) -> str:
        what = {"gemini": "Gemini API", "vertex": "Vertex AI", "emulator": "emulator"}[self.settings.backend]
        if self.express:
            what += " (express, API key)"
        return f"{what} at {self.base_url}"

    # ------------------------------------------------------------------ addressing

    def target(self, route: Route, query: bytes) -> str | None:
        """The upstream URL for a request (its path re-built from the parsed route, never the
        client's spelling), or None when this backend has no such call."""
        q = ("?" + query.decode("latin-1")) if query else ""
        if not self.vertex:
            return self.base_url + route.path + q
        v = VERTEX_API_VERSION
        if route.kind == "models":
            return f"{self.base_url}/{v}/publishers/google/models{q}"
        if route.kind == "model":
            return f"{self.base_url}/{v}/publishers/google/models/{route.model}{q}"
        if route.kind == "op":
            scope = "" if self.express else (
                f"projects/{self.settings.vertex_project}/locations/{self.settings.vertex_location}/")
            return f"{self.base_url}/{v}/{scope}publishers/google/models/{route.model}:{route.op}{q}"
        return None

    async def auth_headers(self, key: str | None) -> list[tuple[bytes, bytes]]:
        """The credential for one request: the principal's key, else the gateway's own."""
        key = key or self.default_key
        if key:
            return [(b"x-goog-api-key", key.encode())]
        if self.vertex:
            return [(b"authorization", b"Bearer " + (await self._adc_token()).encode())]
        return []

    async def _adc_token(self) -> str:
        """An OAuth token from Application Default Credentials, refreshed before it expires."""
        async with self._creds_lock:
            if self._creds is None:
                import google.auth

                self._creds, _ = await asyncio.to_thread(google.auth.default, scopes=[VERTEX_SCOPE])
            c = self._creds
            expiry = getattr(c, "expiry", None)
            stale = not c.valid or (expiry is not None and expiry.timestamp() - time.time() < TOKEN_REFRESH_MARGIN_S)
            if stale:
                from google.auth.transport.requests import Request

                await asyncio.to_thread(c.refresh, Request())
            return str(c.token)

    # ------------------------------------------------------------------ sending

    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: bytes | AsyncIterator[bytes], timeout: float) -> UpstreamResponse:
        """Send and return once the status line and headers are in; the body streams after.
        Transport failures raise ``ConnectionError`` / ``TimeoutError`` (the gateway
        maps them to flashlane errors). With telemetry on, a CLIENT span up to the headers, a child
        of the request's server span."""
        with client_span(method, url) as sp:
            resp = await self.client.request(method, url, headers, body, timeout=timeout or CONNECT_TIMEOUT_S,
                                             connect_timeout=CONNECT_TIMEOUT_S)
            sp.set({"http.response.status_code": resp.status})
            return resp

    async def aclose(self) -> None:
        await self.client.aclose()
