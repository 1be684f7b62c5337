"""Explicit context caching of a run's shared prefix: whether it pays (``decide``), and one
cache's life (``ContextCache``), both as docs/caching.md describes them ("When a cache pays",
"Its life"). Creation is billed at the input price (Vertex AI: "you're billed for the input
tokens used to create the cache at the standard input token price", context-cache overview;
the Gemini API pricing page states no separate write price, so the same is assumed). Cache
calls go through the transport, inside the error boundary (a 503 or a 429 with RetryInfo is
retried there); a cache that cannot be made again sends the prefix inline, never failing a row.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from google.genai import types

from .. import telemetry
from ..call.request import Call
from ..errors import CacheNotFound, FlashlaneError
from ..models import lookup
from .prefix import Prefix

if TYPE_CHECKING:
    from ..call.client import Client

__all__ = ["CacheDecision", "ContextCache", "decide", "storage_usd"]

MAX_RECREATES = 3  # per request: a cache that keeps vanishing is given up for inline prefixes
REFRESH_FRACTION = 0.5  # extend the TTL once less than this share of it is left
DISPLAY_NAME_PREFIX = "flashlane "


def storage_usd(tokens: int, rate_per_hour: float | None, seconds: float) -> float:
    """Storage cost of ``tokens`` cached for ``seconds`` at a USD / 1M tokens / hour rate."""
    if not rate_per_hour or seconds <= 0:
        return 0.0
    return tokens * rate_per_hour / 1e6 * seconds / 3600


@dataclass(frozen=True)
class CacheDecision:
    """Whether a run caches its prefix, and the arithmetic behind it (shown in the report)."""

    mode: str  # auto | on | off
    use: bool
    reason: str
    prefix_tokens: int = 0
    min_tokens: int = 0
    requests: int = 0
    hours: float = 0.0  # storage hours assumed: the run's expected length plus one TTL
    input_per_m: float | None = None
    cached_per_m: float | None = None
    storage_per_m_hour: float | None = None
    inline_usd: float | None = None  # the prefix sent inline on every request
    cached_usd: float | None = None  # created once, then read as cached tokens by every request
    storage_usd: float | None = None
    saving_usd: float | None = None  # inline - (cached + storage)
    break_even_requests: int | None = None  # fewest requests for which the cache pays

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, float):
                out[k] = round(v, 8)
        return out

    def describe(self) -> str:
        head = "cached" if self.use else "not cached"
        line = f"{head} ({self.mode}): {self.reason}"
        if self.inline_usd is not None and self.cached_usd is not None and self.storage_usd is not None:
            line += (f"; prefix {self.prefix_tokens:,} tokens x {self.requests:,} requests: inline "
                     f"${self.inline_usd:.6f} vs cached ${self.cached_usd:.6f} + storage ${self.storage_usd:.6f} "
                     f"({self.hours:.2f} h)")
            if self.break_even_requests is not None:
                line += f"; break-even at {self.break_even_requests:,} requests"
        return line


def decide(model: str, prefix_tokens: int, requests: int, hours: float, mode: str = "auto",
           service_tier: str = "standard") -> CacheDecision:
    """Should a run of ``requests`` requests sharing a ``prefix_tokens`` prefix cache it? Inline
    tokens are priced on the run's service tier (flex: half price); cached tokens at the cached
    rate, as ``Prices.cost`` bills them."""
    base: dict[str, Any] = {"mode": mode, "prefix_tokens": prefix_tokens, "requests": requests,
                            "hours": hours}
    if mode == "off":
        return CacheDecision(use=False, reason="turned off (--cache-prefix off)", **base)
    if prefix_tokens <= 0:
        return CacheDecision(use=False, reason="the task has no shared prefix (no system text, instructions, reference or examples)",
                             **base)
    info = lookup(model)
    floor = info.min_cache_tokens if info else 0
    base["min_tokens"] = floor
    if info is None or prefix_tokens < floor:
        why = (f"the prefix ({prefix_tokens:,} tokens) is below {model}'s minimum cacheable size of {floor:,} tokens"
               if info else f"{model} is not in the catalog, so its caching minimum and prices are unknown")
        return CacheDecision(use=False, reason=why, **base)
    p = info.prices
    if p is None or p.cached_input is None or p.cache_storage_per_hour is None:
        why = f"the cached-token or storage price of {model} is unknown"
        if mode == "on":
            return CacheDecision(use=True, reason=why + "; cached anyway (--cache-prefix on)", **base)
        return CacheDecision(use=False, reason=why, **base)
    in_rate = p.rates(service_tier)[0] or p.input
    per_request_saving = prefix_tokens * (in_rate - p.cached_input) / 1e6
    create = prefix_tokens * p.input / 1e6
    storage = storage_usd(prefix_tokens, p.cache_storage_per_hour, hours * 3600)
    inline = requests * prefix_tokens * in_rate / 1e6
    cached = create + requests * prefix_tokens * p.cached_input / 1e6
    saving = inline - cached - storage
    break_even = math.floor((create + storage) / per_request_saving) + 1 if per_request_saving > 0 else None
    figures: dict[str, Any] = dict(input_per_m=in_rate, cached_per_m=p.cached_input, storage_per_m_hour=p.cache_storage_per_hour,
                   inline_usd=inline, cached_usd=cached, storage_usd=storage, saving_usd=saving,
                   break_even_requests=break_even)
    if saving > 0:
        why = f"saves ${saving:.6f} ({saving / inline:.0%} of the prefix's cost)"
        return CacheDecision(use=True, reason=why, **base, **figures)
    why = f"{requests:,} request(s) would not pay for creating and storing the cache"
    if mode == "on":
        return CacheDecision(use=True, reason=why + "; cached anyway (--cache-prefix on)", **base, **figures)
    return CacheDecision(use=False, reason=why, **base, **figures)


# on_change(event, name, tokens, at, expires): "created" | "extended" | "ended"
ChangeHook = Callable[[str, str, int, float, float], None]


class ContextCache:
    """One explicit cache holding ``prefix`` for ``model``, kept alive while used."""

    def __init__(self, client: Client, prefix: Prefix, model: str, *, ttl_s: float,
                 on_change: ChangeHook | None = None) -> None:
        self.client = client
        self.prefix = prefix
        self.model = model
        self.ttl_s = ttl_s
        self.on_change = on_change
        self.name: str | None = None
        self.tokens = 0
        self.expires = 0.0  # by the client's clock
        self.created = 0  # caches this object made (a recreate adds one)
        self.disabled: str | None = None  # why requests went back to inline prefixes
        self._lock: asyncio.Lock | None = None

    # ------------------------------------------------------------------ SDK calls
    def _config(self) -> types.CreateCachedContentConfig:
        return types.CreateCachedContentConfig(
            system_instruction=self.prefix.system or None, contents=self.prefix.contents() or None,
            ttl=f"{int(math.ceil(self.ttl_s))}s", display_name=DISPLAY_NAME_PREFIX + self.prefix.digest())

    def _ttl(self) -> types.UpdateCachedContentConfig:
        return types.UpdateCachedContentConfig(ttl=f"{int(math.ceil(self.ttl_s))}s")

    def _now(self) -> float:
        return self.client.clock.time()

    def _made(self, cache: Any) -> str:
        meta = getattr(cache, "usage_metadata", None)
        self.name = str(cache.name)
        self.tokens = int(getattr(meta, "total_token_count", 0) or self.prefix.tokens)
        now = self._now()
        self.expires = now + self.ttl_s
        self.created += 1
        if self.on_change is not None:
            self.on_change("created", self.name, self.tokens, now, self.expires)
        return self.name

    def create(self) -> str:
        """Make the cache (raises the mapped error: too small, no quota, ...)."""
        with telemetry.span("flashlane.cache.create", self._span_attrs()) as sp:
            name = self._made(self.client.transport.create_cache(self.model, self._config()))
            sp.set({"flashlane.cache.tokens": self.tokens, "flashlane.cache.ttl_s": self.ttl_s})
            return name

    async def acreate(self) -> str:
        with telemetry.span("flashlane.cache.create", self._span_attrs()) as sp:
            name = self._made(await self.client.transport.acreate_cache(self.model, self._config()))
            sp.set({"flashlane.cache.tokens": self.tokens, "flashlane.cache.ttl_s": self.ttl_s})
            return name

    def _span_attrs(self) -> dict[str, Any]:
        return {"gen_ai.request.model": self.model, "gen_ai.provider.name": self.client.peer[0],
                "flashlane.cache.estimated_tokens": self.prefix.tokens}

    def adopt(self, name: str, tokens: int) -> bool:
        """Resume with a cache an earlier session made: True if it is still alive (its TTL is
        then extended), False if it is gone."""
        try:
            self.client.transport.update_cache(name, self._ttl())
        except CacheNotFound:
            return False
        self.name, self.tokens = name, tokens
        now = self._now()
        self.expires = now + self.ttl_s
        if self.on_change is not None:
            self.on_change("extended", name, tokens, now, self.expires)
        return True

    def delete(self) -> None:
        """Delete the cache now (one already gone is fine: it costs nothing any more)."""
        name = self.name
        if name is None:
            return
        self.name = None
        now = self._now()
        try:
            self.client.transport.delete_cache(name)
        except CacheNotFound:
            now = min(now, self.expires)  # it lapsed on its own, at the latest when its TTL ran out
        if self.on_change is not None:
            self.on_change("ended", name, self.tokens, now, now)

    async def _extend(self) -> None:
        name = self.name
        assert name is not None
        await self.client.transport.aupdate_cache(name, self._ttl())
        now = self._now()
        self.expires = now + self.ttl_s
        if self.on_change is not None:
            self.on_change("extended", name, self.tokens, now, self.expires)

    # ------------------------------------------------------------------ use by requests
    def _lock_(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _ensure(self) -> str | None:
        """The live cache's name (made or extended first when due), or None: send inline."""
        if self.disabled:
            return None
        if self.name is not None and self._now() < self.expires - self.ttl_s * REFRESH_FRACTION:
            return self.name
        async with self._lock_():
            if self.disabled:
                return None
            try:
                if self.name is None:
                    await self.acreate()
                elif self._now() >= self.expires - self.ttl_s * REFRESH_FRACTION:
                    await self._extend()
            except CacheNotFound:
                await self._replace(self.name)
            except FlashlaneError as e:
                self._give_up(e)
        return None if self.disabled else self.name

    def _give_up(self, error: FlashlaneError) -> None:
        self.disabled = f"the cache could not be made again ({error.message}); requests carry the prefix inline"
        self.name = None

    async def _replace(self, stale: str | None) -> None:
        """The cache ``stale`` is gone: record its end, make a new one (once, for every
        request that found it gone)."""
        if self.name != stale:
            return  # another request already replaced it
        if stale is not None and self.on_change is not None:
            at = min(self._now(), self.expires)
            self.on_change("ended", stale, self.tokens, at, at)
        self.name = None
        try:
            await self.acreate()
        except FlashlaneError as e:
            self._give_up(e)

    async def arun(self, call: Call) -> Any:
        """Run ``call`` (built with the prefix inline) through the cache; a cache found gone is
        made again and the request sent again."""
        for _ in range(MAX_RECREATES):
            name = await self._ensure()
            if name is None:
                break
            try:
                return await self.client.arun_call(self.prefix.cached(call, name))
            except CacheNotFound:
                async with self._lock_():
                    await self._replace(name)
        return await self.client.arun_call(call)
