"""The SDK boundary: the one place where exceptions of google-genai and its transports
become flashlane errors.

Every SDK call in flashlane runs inside ``boundary(...)``: building the client, each
generate call, opening a stream and reading each of its chunks, count/list/get, caches,
batches and files. The mapping is an explicit table of exception types (``EXCEPTION_MAP``),
checked in order; anything not in it is a bug of ours and propagates unchanged. No other
module catches an SDK or transport exception type (``tests/test_layers.py`` checks it).

Malformed answers (a 200 whose body is cut-off JSON, HTML, or an SSE event that is not a
``GenerateContentResponse``) surface from the SDK as ``json.JSONDecodeError``,
``pydantic.ValidationError`` or, while reading a stream, ``TypeError``/``ValueError``; they
are transport faults of the answer, not of the request, so they map to the retryable
``MalformedResponse``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import google.auth.exceptions
import pydantic
from google.genai import errors as genai_errors

from ..errors import ConfigError, FlashlaneError, MalformedResponse, Timeout, TransportError, from_status

__all__ = ["EXCEPTION_MAP", "boundary", "map_exception"]


def _transport_modules() -> list[Any]:
    """The HTTP libraries the SDK may use (httpx2 by default, httpx or aiohttp when chosen)."""
    mods = []
    for name in ("httpx2", "httpx", "aiohttp"):
        try:
            mods.append(__import__(name))
        except ImportError:
            continue
    return mods


_MODS = _transport_modules()
_TIMEOUT_TYPES: tuple[type[BaseException], ...] = (
    asyncio.TimeoutError, TimeoutError,
    *(m.TimeoutException for m in _MODS if hasattr(m, "TimeoutException")),
    *(m.ServerTimeoutError for m in _MODS if hasattr(m, "ServerTimeoutError")),
)
_TRANSPORT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,
    *(m.TransportError for m in _MODS if hasattr(m, "TransportError")),
    *(m.DecodingError for m in _MODS if hasattr(m, "DecodingError")),
    *(m.ClientError for m in _MODS if m.__name__ == "aiohttp"),
)
_MALFORMED_TYPES: tuple[type[BaseException], ...] = (json.JSONDecodeError, pydantic.ValidationError)
# While a stream is read, these come only from parsing the server's events.
_MALFORMED_IN_STREAM: tuple[type[BaseException], ...] = (TypeError, ValueError, KeyError, AttributeError)


def _api_error(exc: Any, ctx: dict[str, Any]) -> FlashlaneError:
    details = getattr(exc, "details", None)
    body: dict[str, Any] = {}
    if isinstance(details, dict):
        inner = details.get("error", details)
        body = inner if isinstance(inner, dict) else {}
    elif isinstance(details, list) and details and isinstance(details[0], dict):
        body = details[0].get("error", {}) or {}
    if not body.get("status") and getattr(exc, "status", None):
        body = {**body, "status": exc.status}
    if not body.get("message") and getattr(exc, "message", None):
        body = {**body, "message": exc.message}
    headers = getattr(getattr(exc, "response", None), "headers", None)
    return from_status(int(getattr(exc, "code", 0) or 0), body, headers=headers, model=ctx.get("model"),
                       now=ctx.get("now"))


def _timeout(exc: BaseException, ctx: dict[str, Any]) -> FlashlaneError:
    limit = ctx.get("timeout_s")
    within = f" after {limit:g} s" if limit else ""
    return Timeout(f"the request to {ctx.get('model') or 'Gemini'} timed out{within} with no answer",
                   hint="raise the timeout (--timeout / FLASHLANE_TIMEOUT_S) if long answers are expected",
                   model=ctx.get("model"))


def _transport(exc: BaseException, ctx: dict[str, Any]) -> FlashlaneError:
    if ctx.get("streaming"):
        return TransportError("the stream was cut off before the answer ended",
                              hint="retried automatically while no text was shown", model=ctx.get("model"))
    return TransportError(f"connection to the Gemini endpoint failed: {type(exc).__name__}",
                          hint="check the network or the base URL; the call is retried automatically",
                          model=ctx.get("model"))


def _malformed(exc: BaseException, ctx: dict[str, Any]) -> FlashlaneError:
    return MalformedResponse(f"the server's answer could not be read ({type(exc).__name__})",
                             hint="a garbled or cut-off response body; retried automatically",
                             model=ctx.get("model"))


def _credentials(exc: BaseException, ctx: dict[str, Any]) -> FlashlaneError:
    return ConfigError(f"Google Cloud credentials are not usable: {type(exc).__name__}",
                       hint="run 'gcloud auth application-default login' or set GOOGLE_APPLICATION_CREDENTIALS")


Mapper = Callable[[Any, dict[str, Any]], FlashlaneError]

# Checked in order: timeouts before transport errors (httpx's TimeoutException is a TransportError).
EXCEPTION_MAP: tuple[tuple[tuple[type[BaseException], ...], Mapper], ...] = (
    ((genai_errors.APIError,), _api_error),
    ((google.auth.exceptions.GoogleAuthError,), _credentials),
    (_TIMEOUT_TYPES, _timeout),
    (_TRANSPORT_TYPES, _transport),
    (_MALFORMED_TYPES, _malformed),
)


def map_exception(exc: BaseException, *, model: str | None = None, timeout_s: float | None = None,
                  streaming: bool = False, now: datetime | None = None) -> FlashlaneError | None:
    """The flashlane error for ``exc``, or None when it is not an SDK or transport failure."""
    if isinstance(exc, FlashlaneError):
        return exc
    ctx = {"model": model, "timeout_s": timeout_s, "streaming": streaming, "now": now}
    for types_, mapper in EXCEPTION_MAP:
        if isinstance(exc, types_):
            return mapper(exc, ctx)
    if streaming and isinstance(exc, _MALFORMED_IN_STREAM):
        return _malformed(exc, ctx)
    return None


@contextlib.contextmanager
def boundary(*, model: str | None = None, timeout_s: float | None = None, streaming: bool = False,
             now: datetime | None = None) -> Iterator[None]:
    """Run SDK code; re-raise its failures as flashlane errors (the original chained as cause).

    ``streaming``: the block reads a server stream, so parse errors mean a garbled event."""
    try:
        yield
    except FlashlaneError:
        raise
    except Exception as exc:
        mapped = map_exception(exc, model=model, timeout_s=timeout_s, streaming=streaming, now=now)
        if mapped is None:
            raise
        raise mapped from exc
