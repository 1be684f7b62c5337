"""A run's explicit cache of its shared prefix: decided, made or adopted, recorded, deleted.

The decision (``context_cache.decide``) needs what only the pipeline knows: how many requests
the run still has to send (pending items over the pack size) and how long it will take (the
limiter's request rate, or concurrency over the model's latency); storage is assumed for that
long plus one TTL (a killed run's cache lives until its TTL lapses). The run database records
each cache (``context_caches``), so a resumed run reuses one that is still alive and the session
that finishes the run deletes it. Batch runs do not use explicit caches: whether the Batch API
accepts ``cachedContent`` is unsettled (docs/caching.md, "Context caching").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from ..caching.context_cache import CacheDecision, ContextCache, decide
from ..errors import FlashlaneError
from ..models import lookup
from ..store.run import RunStore
from .job import Job
from .packing import TYPICAL_ANSWER_TOKENS, auto_concurrency, quota_from_limits

__all__ = ["RunContextCache", "expected_hours", "open_context_cache"]

UNKNOWN_LATENCY_S = 2.0  # a model the catalog has no speed for
# An estimated prefix within this share of the model's caching minimum is counted by the API
# (countTokens) before the decision: ~4 characters a token is only an average.
COUNT_BAND = 0.75


def _counted(job: Job) -> int | None:
    """The prefix's size by the API's countTokens (system text and turns as one text; the Gemini
    API's countTokens takes no system instruction), or None if it cannot be counted."""
    assert job.prefix is not None
    text = "\n\n".join([job.prefix.system, *(t for _, t in job.prefix.turns)])
    try:
        return job.lane.count_tokens(text, model=job.model)
    except FlashlaneError:
        return None


def expected_hours(job: Job, requests: int, concurrency: int | None, ttl_s: float) -> float:
    """Hours a cache would be stored: the run's expected length plus one TTL."""
    settings = job.lane.settings
    info = lookup(job.model)
    latency = (info.ttft_s + TYPICAL_ANSWER_TOKENS / info.output_tokens_per_s) if info else UNKNOWN_LATENCY_S
    inflight = concurrency or auto_concurrency(settings.limits, job.model)
    per_s = inflight / latency
    quota = quota_from_limits(settings.limits, job.model)
    if quota is not None and quota.rpm > 0:
        per_s = min(per_s, quota.rpm / 60)
    return (requests / per_s + ttl_s) / 3600


@dataclass
class RunContextCache:
    """The decision for one run and, when it caches, the cache in use."""

    decision: CacheDecision
    cache: ContextCache | None = None
    store: RunStore | None = None

    def close(self) -> None:
        """Delete the cache (the run ended or stopped in an orderly way)."""
        if self.cache is not None:
            if self.cache.disabled and self.store is not None:
                self.store.metadata.set(cache_decision=self.as_dict())
            self.cache.delete()

    def as_dict(self) -> dict[str, Any]:
        out = self.decision.as_dict()
        if self.cache is not None and self.cache.disabled:
            out["fallback"] = self.cache.disabled
        return out


def _hook(store: RunStore, job: Job) -> Any:
    info = lookup(job.model)
    prices = info.prices if info else None
    digest = job.prefix.digest() if job.prefix else ""

    def on_change(event: str, name: str, tokens: int, at: float, expires: float) -> None:
        store.context_caches.event(event, name, tokens, at, expires, model=job.model, prefix=digest,
                          input_per_m=prices.input if prices else None,
                          storage_per_m_hour=prices.cache_storage_per_hour if prices else None)

    return on_change


def open_context_cache(store: RunStore, job: Job, *, pending_items: int, pack_size: int,
                   concurrency: int | None, mode: str | None = None, batch: bool = False) -> RunContextCache:
    """Decide for this session of a run; make (or adopt) the cache when it pays, and attach it
    to ``job`` so every request names it. Caches of earlier sessions that no longer fit (another
    prefix, or the run no longer caches) are deleted."""
    settings = job.lane.settings
    mode = mode or settings.cache_prefix
    ttl = settings.context_cache_ttl_s
    requests = math.ceil(pending_items / max(1, pack_size))
    hours = expected_hours(job, requests, concurrency, ttl)
    decision = decide(job.model, job.prefix_tokens, requests, hours, mode, service_tier=job.request_tier)
    info = lookup(job.model)
    if (not decision.use and job.prefix is not None and info is not None and requests and mode != "off"
            and COUNT_BAND * info.min_cache_tokens <= job.prefix_tokens < info.min_cache_tokens):
        # The local estimate is near the minimum: ask the API's countTokens (free) before giving up.
        counted = _counted(job)
        if counted is not None and counted != job.prefix_tokens:
            decision = decide(job.model, counted, requests, hours, mode, service_tier=job.request_tier)
    if batch and decision.use:
        decision = replace(decision, use=False, reason="batch runs do not use explicit caches (the Batch API's "
                                                        "support for cachedContent is unsettled; see docs/caching.md)")
    if job.task.tools and decision.use:
        # A request naming a cache may not declare tools ("CachedContent can not be used with
        # GenerateContent request setting system_instruction, tools or tool_config"); the tools
        # would have to live in the cache too. Not done yet: such runs send the prefix inline.
        decision = replace(decision, use=False, reason="the task declares tools, which a request naming a cache "
                                                        "cannot carry; the prefix is sent inline")
    if requests == 0 and decision.use:
        decision = replace(decision, use=False, reason="no requests left to send")
    hook = _hook(store, job)
    digest = job.prefix.digest() if job.prefix else ""
    adopted: ContextCache | None = None
    for name, model, prefix, tokens, _expires in store.context_caches.live():
        cc = ContextCache(job.lane, job.prefix, model, ttl_s=ttl, on_change=hook) if job.prefix else None
        if cc is None:
            continue
        if decision.use and adopted is None and model == job.model and prefix == digest:
            if cc.adopt(name, tokens):
                adopted = cc
                continue
            store.context_caches.event("ended", name, tokens, job.lane.clock.time(), 0.0)
            continue
        cc.name, cc.tokens = name, tokens  # no longer wanted: delete it now
        cc.delete()
    if not decision.use or job.prefix is None:
        if requests or store.metadata.get("cache_decision") is None:  # a rerun of a finished run keeps its story
            store.metadata.set(cache_decision=decision.as_dict())
        return RunContextCache(decision)
    cache = adopted
    if cache is None:
        cache = ContextCache(job.lane, job.prefix, job.model, ttl_s=ttl, on_change=hook)
        try:
            cache.create()
        except FlashlaneError as e:  # too small by the API's own count, no quota on the free tier, ...
            decision = replace(decision, use=False, reason=f"the API refused the cache: {e.message}")
            store.metadata.set(cache_decision=decision.as_dict())
            return RunContextCache(decision)
    else:
        decision = replace(decision, reason=decision.reason + f"; reusing {cache.name} from an earlier session")
    job.context_cache = cache
    store.metadata.set(cache_decision=decision.as_dict())
    return RunContextCache(decision, cache, store)
