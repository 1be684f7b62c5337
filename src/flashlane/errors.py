"""Every error flashlane raises. SDK exceptions become these in one place, ``sdk.boundary``;
``from_status`` here is the pure mapping of an HTTP error answer (status + JSON body), shared
by that boundary and the gateway.

::

    FlashlaneError                       exit 1 unless noted; .hint names the fix
    ├── ConfigError                      exit 2: missing credentials, bad settings
    │   └── InputError                   exit 2: a bad input file, column or schema
    ├── AuthError                        400 API_KEY_INVALID, 401, 403 variants
    ├── CacheNotFound                    403/404 naming a cachedContent that expired or was deleted
    ├── FileNotFound                     403/404 naming a Files API file that expired or was deleted; .file
    ├── ModelNotFound                    404 / retired or unknown model ID
    ├── BadRequest                       other 400 INVALID_ARGUMENT / FAILED_PRECONDITION
    ├── RateLimited                      429; .kind rpm | tpm | rpd | unknown; .retry_after; .reset_at
    ├── NoQuota                          429 whose every violation says limit 0: the quota tier has none
    │                                    for this model (never retried)
    ├── Timeout                          no answer within the timeout (client side, 408, 504)
    ├── ServiceUnavailable               500 / 502 / 503; .retry_after from Retry-After
    │   └── Outage                       the breaker is open: many calls in a row failed (not retried)
    ├── TransportError                   connection refused, reset, dropped mid-stream
    │   └── MalformedResponse            a 200 whose body or stream event could not be read
    ├── ContentError                     the call worked but gave no usable answer
    │   ├── SafetyBlocked                .stage prompt | answer; .reason; .ratings
    │   ├── EmptyAnswer                  STOP with no text
    │   ├── OutputTruncated              MAX_TOKENS; names the setting to raise
    │   ├── SchemaViolation              .raw_text; .validation_error
    │   └── ToolLoopExceeded             the model still called functions after max_tool_rounds; .calls
    └── BudgetExceeded                   a Lane's budget_usd would be passed by the next request

Messages never contain an API key: the server's bodies don't, and we never format one in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .models import closest_ids, lookup

PACIFIC = ZoneInfo("America/Los_Angeles")

AI_STUDIO_KEY_URL = "https://aistudio.google.com/apikey"

__all__ = [
    "AuthError",
    "BadRequest",
    "BudgetExceeded",
    "CacheNotFound",
    "ConfigError",
    "ContentError",
    "EmptyAnswer",
    "FileNotFound",
    "FlashlaneError",
    "InputError",
    "MalformedResponse",
    "ModelNotFound",
    "NoQuota",
    "OutputTruncated",
    "Outage",
    "RateLimited",
    "SafetyBlocked",
    "SchemaViolation",
    "ServiceUnavailable",
    "Timeout",
    "ToolLoopExceeded",
    "TransportError",
    "from_status",
    "next_pacific_midnight",
    "parse_duration",
]


class FlashlaneError(Exception):
    """Base class. ``str(e)`` is one line; ``hint`` is at most one more."""

    exit_code = 1
    retryable = False
    reason_code = "error"  # short stable name, recorded per row in pipeline failures

    def __init__(self, message: str, *, hint: str | None = None, status_code: int | None = None,
                 model: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status_code = status_code
        self.model = model


class ConfigError(FlashlaneError):
    exit_code = 2
    reason_code = "config"


class InputError(ConfigError):
    reason_code = "input"


def unreadable(path: Any, e: OSError, *, what: str = "file", hint_dir: str = "pass a file") -> InputError:
    """The one-line error for a file that cannot be opened (input files, media files)."""
    if isinstance(e, FileNotFoundError):
        return InputError(f"{what} {path} does not exist", hint="check the path")
    if isinstance(e, IsADirectoryError):
        return InputError(f"{path} is a directory, not {'an' if what[0] in 'aeiou' else 'a'} {what}", hint=hint_dir)
    return InputError(f"cannot read {path}: {e.strerror or e}", hint="check the path and its permissions")


class AuthError(FlashlaneError):
    reason_code = "auth"


class CacheNotFound(FlashlaneError):
    """The request named a cachedContent the API no longer has (its TTL lapsed, or it was
    deleted). Gemini API: 403 "CachedContent not found (or permission denied)"; Vertex AI: 404
    "Not found: cached content metadata for ..." (GoogleCloudPlatform/generative-ai#2122).
    Whoever made the cache makes it again; the request itself was fine."""

    reason_code = "cache_not_found"


class FileNotFound(FlashlaneError):
    """The request referenced a Files API file the API no longer has (its 48 h lapsed, or it was
    deleted). Gemini API: 403 "You do not have permission to access the File {id} or it may not
    exist." (the files.get answer; public clients match the same text on generateContent, e.g.
    code found with find_string "permission to access the File"). ``file``: its ``files/{id}``,
    when the message names it. Whoever uploaded it uploads it again; the request itself was fine."""

    reason_code = "file_not_found"

    def __init__(self, message: str, *, file: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.file = file


_FILE_GONE = re.compile(r"permission to access the File ([\w-]+) or it may not exist", re.IGNORECASE)


class ModelNotFound(FlashlaneError):
    reason_code = "model_not_found"

    def __init__(self, message: str, *, replacement: str | None = None, suggestions: list[str] | None = None,
                 **kw: Any) -> None:
        super().__init__(message, **kw)
        self.replacement = replacement
        self.suggestions = suggestions or []


class BadRequest(FlashlaneError):
    reason_code = "bad_request"


class RateLimited(FlashlaneError):
    """Over a quota. Per-minute kinds are retryable; per-day waits for midnight Pacific."""

    reason_code = "rate_limited"

    def __init__(self, message: str, *, kind: str = "unknown", retry_after: float | None = None,
                 reset_at: datetime | None = None, quota_id: str | None = None, quota_value: int | None = None,
                 **kw: Any) -> None:
        super().__init__(message, **kw)
        self.kind = kind
        self.quota_value = quota_value  # the limit itself, when the server states it (QuotaFailure.quotaValue)
        self.retry_after = retry_after
        self.reset_at = reset_at
        self.quota_id = quota_id

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.kind != "rpd"


class Timeout(FlashlaneError):
    retryable = True
    reason_code = "timeout"


class NoQuota(FlashlaneError):
    """The project's quota tier has no quota at all for this model (every QuotaFailure violation
    states ``quotaValue`` 0; python-genai #2044, langchain-google #1445): waiting never helps."""

    reason_code = "no_quota"

    def __init__(self, message: str, *, quota_id: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.quota_id = quota_id


class ServiceUnavailable(FlashlaneError):
    retryable = True
    reason_code = "unavailable"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class Outage(ServiceUnavailable):
    """The circuit breaker is open: calls fail without being sent until the service answers again."""

    retryable = False
    reason_code = "outage"


class Stopped(FlashlaneError):
    """The run is stopping (a first Ctrl-C): a call that has not left yet is not sent."""

    reason_code = "stopped"


class TransportError(FlashlaneError):
    retryable = True
    reason_code = "transport"


class MalformedResponse(TransportError):
    reason_code = "malformed"


class ContentError(FlashlaneError):
    """An answer that came back and was paid for, but is not one: ``usage`` and ``cost_usd`` are
    what every attempt of the call used and cost (the judge fills them in), ``attempts`` how many."""

    reason_code = "content"

    def __init__(self, message: str, *, finish_reason: str | None = None, raw_text: str | None = None,
                 usage: Any = None, cost_usd: float | None = None, attempts: int = 0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.finish_reason = finish_reason
        self.raw_text = raw_text
        self.usage = usage
        self.cost_usd = cost_usd
        self.attempts = attempts


@dataclass(frozen=True)
class SafetyRating:
    category: str
    probability: str
    blocked: bool = False


class SafetyBlocked(ContentError):
    """``stage`` is "prompt" (promptFeedback.blockReason) or "answer" (finishReason)."""

    reason_code = "safety"

    def __init__(self, message: str, *, stage: str, reason: str, ratings: list[SafetyRating] | None = None,
                 **kw: Any) -> None:
        super().__init__(message, **kw)
        self.stage = stage
        self.reason = reason
        self.ratings = ratings or []


class EmptyAnswer(ContentError):
    reason_code = "empty"


class OutputTruncated(ContentError):
    reason_code = "truncated"


class SchemaViolation(ContentError):
    reason_code = "schema"

    def __init__(self, message: str, *, validation_error: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.validation_error = validation_error


class ToolLoopExceeded(ContentError):
    """The tool loop ran ``rounds`` rounds of functions and the model still asked for more.
    ``calls`` holds every call so far (``tools.ToolCall``, each with the result sent back)."""

    reason_code = "tool_loop"

    def __init__(self, message: str, *, calls: list[Any] | None = None, rounds: int = 0, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.calls = calls or []
        self.rounds = rounds


class BudgetExceeded(FlashlaneError):
    reason_code = "budget"


# ---------------------------------------------------------------- helpers

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_RETRY_IN = re.compile(r"retry in (\d+(?:\.\d+)?)s", re.IGNORECASE)


def parse_duration(value: Any) -> float | None:
    """google.protobuf.Duration JSON ("47s", "47.174066935s") to seconds."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1))
    return None


def next_pacific_midnight(now: datetime) -> datetime:
    """When per-day quotas reset: the next midnight in America/Los_Angeles (aware datetime)."""
    local = now.astimezone(PACIFIC)
    tomorrow = (local + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=PACIFIC)


def describe_reset(reset_at: datetime) -> str:
    pacific = reset_at.astimezone(PACIFIC)
    local = reset_at.astimezone()
    return f"{pacific:%Y-%m-%d %H:%M} Pacific ({local:%Y-%m-%d %H:%M %Z} local)"


def quota_kind(quota_id: str) -> str:
    qid = quota_id.lower()
    if "perday" in qid:
        return "rpd"
    if "token" in qid:
        return "tpm"
    if "request" in qid:
        return "rpm"
    return "unknown"


def _detail(body: dict[str, Any], type_suffix: str) -> dict[str, Any] | None:
    for d in body.get("details") or []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith(type_suffix):
            return d
    return None


def _retry_after_header(headers: Any) -> float | None:
    if headers is None:
        return None
    try:
        value = headers.get("retry-after")
    except Exception:
        return None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def model_not_found(model: str, *, status_code: int | None = 404) -> ModelNotFound:
    """The error for a model ID the API (or the catalog) doesn't serve, naming what to use."""
    info = lookup(model)
    if info is not None and info.retired and info.replacement:
        shut = f" on {info.shutdown:%Y-%m-%d}" if info.shutdown else ""
        return ModelNotFound(
            f"model '{model}' was shut down{shut}; use '{info.replacement}' instead",
            hint=f"set FLASHLANE_MODEL={info.replacement} or pass --model {info.replacement}",
            replacement=info.replacement, status_code=status_code, model=model,
        )
    suggestions = closest_ids(model)
    did_you_mean = f"; did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    hint = "run 'flashlane models' to list known model IDs"
    if _deprecated_sdk_installed():
        hint += ("; note: the deprecated 'google-generativeai' package is installed, "
                 "and code written for it uses model names that no longer exist")
    return ModelNotFound(f"model '{model}' was not found{did_you_mean}", hint=hint,
                         suggestions=suggestions, status_code=status_code, model=model)


def _deprecated_sdk_installed() -> bool:
    from importlib.util import find_spec

    try:
        return find_spec("google.generativeai") is not None
    except (ImportError, ValueError):
        return False


def from_status(code: int, body: dict[str, Any], *, headers: Any = None, model: str | None = None,
                now: datetime | None = None) -> FlashlaneError:
    """The flashlane error for one HTTP error answer: its status code and the ``error`` object of
    its JSON body (``{"code", "message", "status", "details"}``). Pure: used by the SDK boundary
    and by the gateway, which sees the same bodies on the wire."""
    status = str(body.get("status") or "")
    message = str(body.get("message") or "").strip()
    info = _detail(body, "google.rpc.ErrorInfo") or {}
    reason = str(info.get("reason", ""))
    short = message.splitlines()[0] if message else status
    kw: dict[str, Any] = {"status_code": code, "model": model}

    if code == 429:
        return _rate_limited(body, message, headers, now=now, **kw)
    if reason == "API_KEY_INVALID" or (code == 400 and "api key not valid" in message.lower()):
        return AuthError("the API key was rejected (API_KEY_INVALID)",
                         hint=f"create a key at {AI_STUDIO_KEY_URL} and set GEMINI_API_KEY", **kw)
    if code in (403, 404) and ("cachedcontent not found" in message.lower()
                               or "cached content metadata" in message.lower()):
        return CacheNotFound(f"the context cache named by the request is gone: {short}",
                             hint="it expired or was deleted; create it again (flashlane runs do this themselves)",
                             **kw)
    if code in (403, 404) and (m := _FILE_GONE.search(message)) is not None:
        return FileNotFound(f"a file the request references is gone: {short}",
                            hint="it expired (48 h) or was deleted; upload it again (flashlane does this itself)",
                            file=f"files/{m.group(1)}", **kw)
    if code in (401, 403):
        why = reason or status or "PERMISSION_DENIED"
        hint = {
            "API_KEY_SERVICE_BLOCKED": "the key is restricted; allow the Generative Language API for it",
            "SERVICE_DISABLED": "enable the Generative Language API (or Vertex AI API) in the project",
            "CONSUMER_SUSPENDED": "the project is suspended; use another project or contact Google Cloud support",
        }.get(reason, f"check the key or credentials and that the project may call Gemini ({AI_STUDIO_KEY_URL})")
        return AuthError(f"permission denied ({why}): {short}", hint=hint, **kw)
    if code == 404:
        return model_not_found(model or _model_from_message(message) or "?", status_code=404)
    if code in (408, 504) or status == "DEADLINE_EXCEEDED":
        return Timeout(f"the server gave up on the request ({code} {status}): {short}",
                       hint="retried automatically; raise timeout_s for very long prompts", **kw)
    if code >= 500:
        return ServiceUnavailable(f"Gemini is unavailable ({code} {status}): {short}",
                                  hint="a temporary server-side problem; it is retried with backoff",
                                  retry_after=_retry_after_header(headers), **kw)
    if code == 400 and status == "FAILED_PRECONDITION":
        return BadRequest(f"request refused ({status}): {short}",
                          hint="the free tier is not available in every country; enable billing or use Vertex AI",
                          **kw)
    return BadRequest(f"the request was rejected ({code} {status or 'ERROR'}): {short}",
                      hint="this is a bug in the request; rerun with FLASHLANE_DEBUG=1 for details", **kw)


def _model_from_message(message: str) -> str | None:
    m = re.search(r"models/([\w.\-]+)", message)
    return m.group(1) if m else None


_LIMIT_IN = re.compile(r"limit:\s*(\d+)")


def _stated_limits(violations: list[Any], message: str) -> list[int]:
    """Every quota limit the body states: ``quotaValue`` of each violation, else the
    ``limit: N`` lines of the newer message text."""
    values = []
    for v in violations:
        try:
            values.append(int(v["quotaValue"]))
        except (KeyError, TypeError, ValueError):
            continue
    return values or [int(x) for x in _LIMIT_IN.findall(message)]


def _rate_limited(body: dict[str, Any], message: str, headers: Any, *, now: datetime | None,
                  **kw: Any) -> FlashlaneError:
    failure = _detail(body, "google.rpc.QuotaFailure") or {}
    violations = [v for v in failure.get("violations") or [] if isinstance(v, dict)]
    quota_id = str(violations[0].get("quotaId", "")) if violations else ""
    stated = _stated_limits(violations, message)
    model = kw.get("model")
    if stated and not any(stated):
        # Every violation says limit 0: the quota tier has no quota for this model at all (python-genai
        # #2044, langchain-google #1445). Not a rate: no wait ever admits the request.
        return NoQuota(
            f"the project has no quota for {model or 'this model'} on its current quota tier (limit 0"
            + (f", {quota_id}" if quota_id else "") + ")",
            hint="enable billing for the project (https://aistudio.google.com/usage), or use another model "
                 "(--model / FLASHLANE_MODEL)", quota_id=quota_id or None, **kw)
    quota_value = stated[0] if stated else None
    kind = quota_kind(quota_id) if quota_id else "unknown"
    retry = _detail(body, "google.rpc.RetryInfo") or {}
    retry_after = parse_duration(retry.get("retryDelay"))
    if retry_after is None:
        m = _RETRY_IN.search(message)
        retry_after = float(m.group(1)) if m else _retry_after_header(headers)
    if kind == "rpd":
        reset_at = next_pacific_midnight(now or datetime.now(PACIFIC))
        return RateLimited(
            f"the requests-per-day quota for {model or 'this model'} is used up ({quota_id}); "
            f"it resets at {describe_reset(reset_at)}",
            hint="rerun after the reset (finished work is kept), or move the project to a paid quota tier",
            kind="rpd", retry_after=retry_after, reset_at=reset_at, quota_id=quota_id, quota_value=quota_value, **kw)
    what = {"rpm": "the requests-per-minute quota", "tpm": "the input-tokens-per-minute quota"}.get(kind, "a rate quota")
    # No "retry in N s" here: the message is also what a user reads after the retries gave up.
    return RateLimited(
        f"over {what} for {model or 'this model'}" + (f" ({quota_id})" if quota_id else ""),
        hint="flashlane waits and retries; set --limits / FLASHLANE_LIMITS (a quota tier: free, tier1, ...; or rpm=N) "
             "so requests are paced below the quota",
        kind=kind, retry_after=retry_after, quota_id=quota_id or None, quota_value=quota_value, **kw)
