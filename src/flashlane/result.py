"""What a call returns: the answer, its usage, its cost, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .models import lookup

__all__ = ["Result", "Usage", "usage_from_response", "cost_of"]


@dataclass(frozen=True)
class Usage:
    """Token counts. ``output_tokens`` excludes thinking; billed output is output + thoughts."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.output_tokens + other.output_tokens,
            self.thoughts_tokens + other.thoughts_tokens,
            self.cached_tokens + other.cached_tokens,
            self.total_tokens + other.total_tokens,
        )

    @property
    def billed_output_tokens(self) -> int:
        return self.output_tokens + self.thoughts_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "thoughts_tokens": self.thoughts_tokens,
            "cached_tokens": self.cached_tokens,
            "total_tokens": self.total_tokens,
        }


def usage_from_response(response: Any) -> Usage:
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return Usage()
    prompt = meta.prompt_token_count or 0
    out = meta.candidates_token_count or 0
    thoughts = meta.thoughts_token_count or 0
    cached = meta.cached_content_token_count or 0
    total = meta.total_token_count or (prompt + out + thoughts)
    return Usage(prompt, out, thoughts, cached, total)


def cost_of(model: str, usage: Usage, *, batch: bool = False, tier: str = "standard") -> float | None:
    """USD for the usage at the catalog's paid-tier prices, or None when the price is unknown
    (a model the catalog does not know, or one whose prices are not published): an unknown
    cost is reported as unknown, never as $0 or as another model's price."""
    info = lookup(model)
    if info is None or info.prices is None:
        return None
    return info.prices.cost(usage.prompt_tokens, usage.billed_output_tokens, usage.cached_tokens, batch=batch,
                            tier=tier)


@dataclass
class Result:
    text: str
    parsed: Any = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0  # None: the model's price is unknown (see cost_of)
    finish_reason: str | None = None
    model: str = ""
    model_version: str | None = None
    latency_s: float = 0.0
    response_id: str | None = None
    attempts: int = 1  # SDK calls this result took (re-asks and larger-cap retries included)
    truncated: bool = False  # MAX_TOKENS with a partial free-text answer
    raw: Any = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        parsed = self.parsed
        if hasattr(parsed, "model_dump"):
            parsed = parsed.model_dump(mode="json")
        return {
            "text": self.text,
            "parsed": parsed,
            "usage": self.usage.as_dict(),
            "cost_usd": round(self.cost_usd, 8) if self.cost_usd is not None else None,
            "finish_reason": self.finish_reason,
            "model": self.model,
            "model_version": self.model_version,
            "latency_s": round(self.latency_s, 4),
            "attempts": self.attempts,
            "truncated": self.truncated,
        }
