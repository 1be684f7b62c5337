"""Service tiers on generateContent: ``serviceTier`` flex (slower, sheddable), standard, priority.

What a client sees is in docs/emulator.md (Flex); here are the sources. The field: python-genai
``types.ServiceTier`` (a case-insensitive enum), sent at the top level of the request, not in
``generationConfig`` (``google/genai/types.py`` and ``models.py``, read from the 3.6.1 wheel); the
REST docs spell it ``service_tier``, so both spellings are read. ``usageMetadata.serviceTier`` is
``"standard"`` in live answers (wire samples 09/13/17; python-genai 2.9.0 added it to
``UsageMetadata``). Flex is "Best-effort (Sheddable)", "Minutes (1-15 min target)"
(ai.google.dev/gemini-api/docs/optimization). No source was found for how the live API sheds a
flex request (searched the docs, python-genai and js-genai issues): 503 UNAVAILABLE is the status
Gemini uses when capacity is short (wire sample 26). Shedding is deterministic so tests can count on it.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import ApiError, api_error, invalid_argument

FLEX = "flex"
STANDARD = "standard"
PRIORITY = "priority"
_TIERS = {"unspecified": STANDARD, "service_tier_unspecified": STANDARD, "standard": STANDARD,
          "flex": FLEX, "priority": PRIORITY}
SHED_MESSAGE = (
    "The flex tier has no capacity for this request right now (request shed). Retry later with "
    "backoff, or send it without service_tier flex to use the standard tier."
)


def requested_tier(body: dict[str, Any]) -> str:
    """The tier a request asks for (standard when absent); 400 for a value the enum lacks."""
    value = body.get("serviceTier", body.get("service_tier"))
    if value is None:
        return STANDARD
    key = value.strip().lower() if isinstance(value, str) else ""
    tier = _TIERS.get(key) or _TIERS.get(key.removeprefix("service_tier_"))
    if tier is None:
        raise invalid_argument(
            "Invalid value at 'service_tier' "
            f"(type.googleapis.com/google.ai.generativelanguage.v1beta.ServiceTier), {json.dumps(value)}"
        )
    return tier


def shed_error() -> ApiError:
    return api_error(503, SHED_MESSAGE)


class Shedder:
    """Sheds ``rate`` of flex requests, evenly: request n is shed when floor(n * rate) grows."""

    def __init__(self) -> None:
        self.seen = 0

    def reset(self) -> None:
        self.seen = 0

    def shed(self, rate: float) -> bool:
        if rate <= 0:
            return False
        before = math.floor(self.seen * rate + 1e-9)
        self.seen += 1
        return math.floor(self.seen * rate + 1e-9) > before
