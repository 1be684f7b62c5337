"""Context caching: the ``cachedContents`` resource, its use by requests, and implicit cache hits.

What a client sees is in docs/emulator.md (Context caching); here are the sources and choices.
Shapes follow the live API (gemini-api-wire.md §1.4, [ws 13]): contents are input-only and never
echoed, DELETE answers ``{}``, PATCH changes only ``ttl`` / ``expireTime``, and ``promptTokenCount``
*includes* the cached tokens (3520 prompt ⊇ 3512 cached [ws 13]; python-genai#795).

Error wordings, as users report them from the live API: too small (zyddnys/manga-image-translator#929,
BerriAI/litellm#17696; the floor per model is ``ModelInfo.min_cache_tokens``); not found: expiry
deletes the object, so a lapsed TTL looks like a bogus name (client code verified against
gemini-3.6-flash in public repositories says so; no full recorded body found, so no ``details``);
the conflict and other-model 400s are quoted in public client code as live answers. Free tier:
context caching is "Not available" (pricing page, model-facts §1.1), and the 429 naming
``TotalCachedContentStorageTokensPerModelFreeTier`` ("limit=0, requested=N") is quoted in several
public clients; no complete recorded body found, so the emulator's is the usual 429 shape with that
quotaId and quotaValue 0, after the size check (a too-small cache gets the 400 first, as reported).
The emulator's global default tier only names quota ids and does not refuse caches.

Implicit caching (on by default for 2.5 and newer, "not guaranteed", model-facts §2.4): a hit is
chosen deterministically from the request, for a share ``implicit_rate`` of requests repeating a
prefix seen in the last ``IMPLICIT_WINDOW_S``. ``DEFAULT_IMPLICIT_RATE`` is high on purpose so cost
ledgers see cached tokens; the live API hits far less often at volume (1 in 138 reported,
model-facts addendum).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from ..models import ModelInfo, lookup
from .errors import ApiError, api_error, invalid_argument, model_not_found, quota_exhausted
from .tools import declaration_tokens
from .wire import camel_keys, content_texts, count_prompt_tokens, new_id

DEFAULT_TTL_S = 3600.0  # "If not set, the TTL defaults to 1 hour" (caching docs, model-facts §2.4)
DEFAULT_PAGE_SIZE = 100  # REST reference: unspecified -> "some default (under maximum)"
MAX_PAGE_SIZE = 1000  # REST reference: "values above 1000 will be coerced to 1000"
DEFAULT_IMPLICIT_RATE = 0.5
IMPLICIT_WINDOW_S = 300.0  # how long a seen prefix stays hittable; no official figure found
IMPLICIT_SLOTS = 20_000  # remembered prefixes, oldest forgotten first (memory stays flat)
NAME_PREFIX = "cachedContents/"
_ID_LENGTH = 12

NOT_FOUND_MESSAGE = "CachedContent not found (or permission denied)"
CONFLICT_MESSAGE = (
    "CachedContent can not be used with GenerateContent request setting system_instruction, tools or "
    "tool_config.\n\nProposed fix: move those values to CachedContent from GenerateContent request."
)
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d{1,9})?)s\s*$")
_FRACTION = re.compile(r"\.(\d+)")


def format_time(ts: float) -> str:
    """RFC 3339 UTC with microseconds, the way the API writes timestamps."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_duration(value: Any, path: str) -> float:
    m = _DURATION.match(str(value)) if isinstance(value, (str, int, float)) else None
    if m is None:
        raise invalid_argument(
            f"Invalid value at '{path}' (type.googleapis.com/google.protobuf.Duration), {value!r}"
        )
    return float(m.group(1))


def parse_time(value: Any, path: str) -> float:
    text = str(value).strip() if isinstance(value, str) else ""
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid_argument(
            f"Invalid value at '{path}' (type.googleapis.com/google.protobuf.Timestamp), {value!r}"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def cache_not_found() -> ApiError:
    return api_error(403, NOT_FOUND_MESSAGE)


FREE_TIER_QUOTA_ID = "TotalCachedContentStorageTokensPerModelFreeTier"
FREE_TIER_RETRY_S = 60.0  # the RetryInfo a limit-0 quota still carries; waiting never helps


def free_tier_refusal(model: str, requested: int) -> ApiError:
    violation = {"quotaId": FREE_TIER_QUOTA_ID, "quotaDimensions": {"location": "global", "model": model},
                 "quotaValue": "0"}
    message = f"{FREE_TIER_QUOTA_ID} limit exceeded for cached content: limit=0, requested={requested}"
    return quota_exhausted([violation], FREE_TIER_RETRY_S, message)


def too_small(total: int, minimum: int) -> ApiError:
    return invalid_argument(
        f"Cached content is too small. total_token_count={total}, min_total_token_count={minimum}"
    )


@dataclass
class CachedEntry:
    name: str
    project: str
    model: str  # catalog id
    display_name: str
    create_time: float
    update_time: float
    expire_time: float
    tokens: int
    system: Any = None
    contents: list[Any] = field(default_factory=list)
    tools: Any = None
    tool_config: Any = None

    def resource(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": f"models/{self.model}",
            "displayName": self.display_name,
            "createTime": format_time(self.create_time),
            "updateTime": format_time(self.update_time),
            "expireTime": format_time(self.expire_time),
            "usageMetadata": {"totalTokenCount": self.tokens},
        }


@dataclass
class CacheUse:
    """What a generate / countTokens request gets from the cache it names."""

    entry: CachedEntry
    body: dict[str, Any]  # the request with the cache's prefix written in


class CacheBook:
    """Every explicit cache of every project, the implicit-prefix memory, and their counters."""

    def __init__(self, implicit_rate: float = DEFAULT_IMPLICIT_RATE):
        self.implicit_rate = implicit_rate
        self.reset()

    def reset(self) -> None:
        self.entries: dict[str, CachedEntry] = {}
        self.created = 0
        self.deleted = 0
        self.expired = 0
        # per cache name (kept after deletion): requests that named it, tokens served from it
        self.references: dict[str, int] = {}
        self.cached_tokens: dict[str, int] = {}
        self.models: dict[str, str] = {}
        self._prefixes: OrderedDict[bytes, tuple[float, int]] = OrderedDict()
        self.implicit_hits = 0
        self.implicit_tokens = 0
        self.uncached_requests = 0  # answered generate calls that named no cache

    # ------------------------------------------------------------------ lifecycle on the clock
    def _live(self, name: str, project: str, now: float) -> CachedEntry:
        entry = self.entries.get(name)
        if entry is not None and entry.expire_time <= now:
            del self.entries[name]
            self.expired += 1
            entry = None
        if entry is None or entry.project != project:
            raise cache_not_found()
        return entry

    def sweep(self, now: float) -> None:
        for name in [n for n, e in self.entries.items() if e.expire_time <= now]:
            del self.entries[name]
            self.expired += 1

    @staticmethod
    def canonical(name: str) -> str:
        name = str(name).strip().strip("/")
        if "/cachedContents/" in name:  # Vertex-style projects/p/locations/l/cachedContents/x
            name = NAME_PREFIX + name.rsplit("/cachedContents/", 1)[1]
        return name if name.startswith(NAME_PREFIX) else NAME_PREFIX + name

    @staticmethod
    def _expiry(body: dict[str, Any], now: float, default: float | None) -> float | None:
        ttl, expire = body.get("ttl"), body.get("expireTime")
        if ttl is not None and expire is not None:
            raise invalid_argument(
                "* CachedContent: only one of ttl and expire_time can be set (expiration is a oneof).\n"
            )
        if ttl is not None:
            seconds = parse_duration(ttl, "cached_content.ttl")
            if seconds <= 0:
                raise invalid_argument("* CachedContent.ttl: ttl must be positive.\n")
            return now + seconds
        if expire is not None:
            return parse_time(expire, "cached_content.expire_time")
        return None if default is None else now + default

    # ------------------------------------------------------------------ REST operations
    def create(
        self, project: str, body: dict[str, Any], now: float, version: str, free_tier: bool = False
    ) -> dict[str, Any]:
        body = camel_keys(body)
        model = body.get("model")
        if not model or not isinstance(model, str):
            raise invalid_argument("* CreateCachedContentRequest.cached_content.model: model is required\n")
        # Vertex sends "projects/{p}/locations/{l}/publishers/google/models/{m}" (express mode even with
        # "projects/None/locations/None/..."); the model id is what follows the last "models/".
        model = "models/" + model.rsplit("models/", 1)[1] if "models/" in model else model
        info = lookup(model)
        if info is None or info.retired:
            raise model_not_found(model.removeprefix("models/"), version, "createCachedContent")
        contents = body.get("contents") or []
        texts = content_texts(contents, "cached_content.contents") if contents else []
        system = body.get("systemInstruction")
        if isinstance(system, str):
            system = {"parts": [{"text": system}]}
        system_texts = content_texts(system, "cached_content.system_instruction") if system else []
        expire = self._expiry(body, now, DEFAULT_TTL_S)
        assert expire is not None
        tokens = (count_prompt_tokens(texts) + count_prompt_tokens(system_texts)
                  + declaration_tokens(body.get("tools")))
        if tokens < info.min_cache_tokens:
            raise too_small(tokens, info.min_cache_tokens)
        if free_tier:
            raise free_tier_refusal(info.id, tokens)
        name = NAME_PREFIX + new_id(_ID_LENGTH)
        entry = CachedEntry(
            name=name,
            project=project,
            model=info.id,
            display_name=str(body.get("displayName") or ""),
            create_time=now,
            update_time=now,
            expire_time=expire,
            tokens=tokens,
            system=system,
            contents=list(contents) if isinstance(contents, list) else [contents],
            tools=body.get("tools"),
            tool_config=body.get("toolConfig"),
        )
        self.entries[name] = entry
        self.created += 1
        self.references[name] = 0
        self.cached_tokens[name] = 0
        self.models[name] = info.id
        return entry.resource()

    def get(self, project: str, name: str, now: float) -> dict[str, Any]:
        return self._live(self.canonical(name), project, now).resource()

    def list_page(self, project: str, query: str, now: float) -> dict[str, Any]:
        self.sweep(now)
        q = parse_qs(query)
        try:
            size = int(q.get("pageSize", q.get("page_size", ["0"]))[0] or 0) or DEFAULT_PAGE_SIZE
            token = q.get("pageToken", q.get("page_token", [""]))[0]
            start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        except (ValueError, UnicodeDecodeError):
            raise invalid_argument("Invalid page token or page size.") from None
        if size < 0:
            raise invalid_argument("Invalid page token or page size.")
        size = min(size, MAX_PAGE_SIZE)
        mine = [e for e in self.entries.values() if e.project == project]
        out: dict[str, Any] = {}
        page = mine[start : start + size]
        if page:
            out["cachedContents"] = [e.resource() for e in page]
        if start + size < len(mine):
            out["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return out

    def patch(self, project: str, name: str, body: dict[str, Any], now: float) -> dict[str, Any]:
        entry = self._live(self.canonical(name), project, now)
        expire = self._expiry(camel_keys(body), now, None)
        if expire is not None:
            entry.expire_time = expire
        entry.update_time = now
        return entry.resource()

    def delete(self, project: str, name: str, now: float) -> dict[str, Any]:
        entry = self._live(self.canonical(name), project, now)
        del self.entries[entry.name]
        self.deleted += 1
        return {}

    # ------------------------------------------------------------------ use by requests
    def use(self, project: str, info: ModelInfo, body: dict[str, Any], now: float) -> CacheUse | None:
        """The request with its named cache written in (None when it names no cache)."""
        body = camel_keys(body)
        name = body.get("cachedContent")
        if not name:
            return None
        entry = self._live(self.canonical(name), project, now)
        if any(body.get(k) not in (None, [], {}) for k in ("systemInstruction", "tools", "toolConfig")):
            raise invalid_argument(CONFLICT_MESSAGE)
        if entry.model != info.id:
            raise invalid_argument(
                f"Model used by GenerateContent request (models/{info.id}) and CachedContent "
                f"(models/{entry.model}) has to be the same."
            )
        merged = {k: v for k, v in body.items() if k != "cachedContent"}
        own = merged.get("contents") or []
        merged["contents"] = entry.contents + (own if isinstance(own, list) else [own])
        for key, value in (("systemInstruction", entry.system), ("tools", entry.tools),
                           ("toolConfig", entry.tool_config)):
            if value is not None:
                merged[key] = value
        return CacheUse(entry, merged)

    def referenced(self, use: CacheUse) -> None:
        """Count one answered request against the cache it named."""
        name = use.entry.name
        self.references[name] = self.references.get(name, 0) + 1
        self.cached_tokens[name] = self.cached_tokens.get(name, 0) + use.entry.tokens

    # ------------------------------------------------------------------ implicit hits
    def implicit(
        self, project: str, info: ModelInfo, parts: list[str], total: int, seed: int, now: float
    ) -> int:
        """Tokens of the longest recently seen prefix of ``parts`` (system first), if this request
        is one of the ``implicit_rate`` share that hits; remembers this request's prefixes."""
        floor = info.min_cache_tokens
        if total < floor or self.implicit_rate <= 0:
            return 0
        h = hashlib.blake2b(f"{project}\x00{info.id}".encode(), digest_size=16)
        running = 0
        boundaries: list[tuple[bytes, int]] = []
        for text in parts:
            h.update(b"\x1e" + text.encode("utf-8", "surrogatepass"))
            running += count_prompt_tokens([text])
            if running >= floor:
                boundaries.append((h.copy().digest(), running))
        best = 0
        for key, tokens in boundaries:
            seen = self._prefixes.get(key)
            if seen is not None and now - seen[0] <= IMPLICIT_WINDOW_S:
                best = max(best, tokens)
        for key, tokens in boundaries:
            self._prefixes[key] = (now, tokens)
            self._prefixes.move_to_end(key)
        while len(self._prefixes) > IMPLICIT_SLOTS:
            self._prefixes.popitem(last=False)
        if best and (seed % 10_000) < self.implicit_rate * 10_000:
            self.implicit_hits += 1
            self.implicit_tokens += best
            return best
        return 0

    # ------------------------------------------------------------------ control API
    def snapshot(self, now: float) -> dict[str, Any]:
        self.sweep(now)
        return {
            "created": self.created,
            "deleted": self.deleted,
            "expired": self.expired,
            "live": len(self.entries),
            "references": dict(self.references),
            "cached_tokens": dict(self.cached_tokens),
            "caches": [
                {**e.resource(), "project": e.project, "references": self.references.get(e.name, 0)}
                for e in self.entries.values()
            ],
            "uncached_requests": self.uncached_requests,
            "implicit_rate": self.implicit_rate,
            "implicit_hits": self.implicit_hits,
            "implicit_tokens": self.implicit_tokens,
        }
