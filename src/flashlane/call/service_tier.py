"""Service tiers: how a request is served and billed (standard, flex, batch, priority).

Flex (ai.google.dev/gemini-api/docs/optimization, model-facts.md §2.3 and its 2026-11-26
addendum): the same synchronous generateContent at 50 % of the price, "Minutes (1-15 min
target)", best effort and sheddable. It is asked for with ``service_tier`` on the request
config: python-genai ``types.GenerateContentConfig.service_tier`` (``types.ServiceTier.FLEX``),
which the SDK sends at the top level of the request as ``serviceTier``
(googleapis/python-genai ``google/genai/models.py`` ``_GenerateContentConfig_to_mldev``; read
from the installed 3.6.1 wheel). A shed request is answered 503 UNAVAILABLE ("Retry later with
backoff"; no recorded live body, see ``emulator/flex.py``), which the guard already retries
with backoff, honouring a ``Retry-After`` when the server sends one.

The tier that served an answer is ``usageMetadata.serviceTier``. The SDK (3.6.1) drops it:
``GenerateContentResponseUsageMetadata`` has no such field and ``_from_response`` removes
unknown keys. So a flex call asks the SDK for the raw HTTP response
(``GenerateContentConfig.should_return_http_response``, the SDK's own switch), reads the tier
from the body, and has the transport parse the body into a ``GenerateContentResponse`` with the
SDK's own parser (``GenerateContentResponse._from_response``), exactly as ``generate_content`` does.

Batch (``tiers.batch``): 50 % of the price, jobs of many requests, target 24 h.

Priority (model-facts.md, addendum 2026-11-26, Tiers): "+75-100 %" of the price, seconds, its own
limits at 0.3x the standard rate limit. Asked for like flex (``types.ServiceTier.PRIORITY``), and its
answer is read raw the same way: what ``usageMetadata.serviceTier`` says served it is what is priced
(a priority or flex request the server served on standard is billed at standard).
"""

from __future__ import annotations

from typing import Any

from google.genai import types

from ..errors import ConfigError
from ..models import SERVICE_TIERS

__all__ = ["STANDARD", "FLEX", "BATCH", "PRIORITY", "SERVICE_TIERS", "LIVE_TIERS", "reads_served_tier", "FLEX_TIMEOUT_S", "FLEX_DEADLINE_S", "check_tier",
           "with_tier", "tier_of", "priced_tier", "flex_config", "raw_body", "served_tier"]

STANDARD, FLEX, BATCH, PRIORITY = "standard", "flex", "batch", "priority"
LIVE_TIERS = (FLEX, STANDARD, PRIORITY)  # tiers answered synchronously, cheapest first
_ASKED = {FLEX: types.ServiceTier.FLEX, PRIORITY: types.ServiceTier.PRIORITY}  # set on the request config
# Flex's latency target is "Minutes (1-15 min target)" (ai.google.dev/gemini-api/docs/optimization):
# an attempt may take the whole 15 minutes before it counts as hung.
FLEX_TIMEOUT_S = 15 * 60.0
# One flex call, shed retries included: two full attempts' worth.
FLEX_DEADLINE_S = 2 * FLEX_TIMEOUT_S


def check_tier(tier: str | None) -> str:
    value = (tier or STANDARD).strip().lower()
    if value not in SERVICE_TIERS:
        raise ConfigError(f"unknown service tier {tier!r}", hint=f"use one of {', '.join(SERVICE_TIERS)}")
    return value


def with_tier(config: types.GenerateContentConfig, tier: str) -> types.GenerateContentConfig:
    """The request config for ``tier``: flex and priority set ``service_tier``; standard and batch
    leave it unset (a batch's requests are billed at the batch price by the job, not by a field)."""
    if tier not in _ASKED:
        return config
    return config.model_copy(update={"service_tier": _ASKED[tier]})


def tier_of(config: types.GenerateContentConfig) -> str:
    st = getattr(config, "service_tier", None)
    value = str(getattr(st, "value", st)).lower() if st is not None else STANDARD
    return value if value in _ASKED else STANDARD


def reads_served_tier(config: types.GenerateContentConfig) -> bool:
    """Does the answer to this request need its raw body read for ``usageMetadata.serviceTier``? Those
    asking for a tier other than standard: the server may serve them on another (and bill that)."""
    return tier_of(config) != STANDARD


def priced_tier(config: types.GenerateContentConfig, served: str | None) -> str:
    """The tier an answer is priced at: the one that served it (``usageMetadata.serviceTier``), else
    the one the request asked for."""
    return served or tier_of(config)


def flex_config(config: types.GenerateContentConfig, timeout_s: float) -> types.GenerateContentConfig:
    """A flex attempt's config: the flex timeout (minutes) as its HTTP timeout."""
    return config.model_copy(update={"http_options": types.HttpOptions(timeout=int(timeout_s * 1000))})


def raw_body(config: types.GenerateContentConfig) -> types.GenerateContentConfig:
    """Ask the SDK for the raw HTTP response too (non-streaming calls), to read ``serviceTier``."""
    return config.model_copy(update={"should_return_http_response": True})


def served_tier(response_json: Any) -> str | None:
    """``usageMetadata.serviceTier`` of a response as JSON, lower case, or None."""
    meta = response_json.get("usageMetadata") if isinstance(response_json, dict) else None
    tier = meta.get("serviceTier") if isinstance(meta, dict) else None
    return str(tier).lower().removeprefix("service_tier_") if tier else None
