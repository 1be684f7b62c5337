"""What a call returns: the answer, its usage, its cost, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models import Usage, cost_of

if TYPE_CHECKING:
    from .tools import Citation, CodeRun, Source, ToolCall, UrlStatus

__all__ = ["Result", "Usage", "usage_from_response", "cost_of"]  # Usage, cost_of: from models (the price catalog)


def usage_from_response(response: Any) -> Usage:
    meta = getattr(response, "usage_metadata", None)
    if meta is None:
        return Usage()
    prompt = meta.prompt_token_count or 0
    out = meta.candidates_token_count or 0
    thoughts = meta.thoughts_token_count or 0
    cached = meta.cached_content_token_count or 0
    total = meta.total_token_count or (prompt + out + thoughts)
    queries = _search_queries(response)
    audio = sum(d.token_count or 0 for d in meta.prompt_tokens_details or [] if _modality(d) == "AUDIO")
    return Usage(prompt, out, thoughts, cached, total, queries, 1 if queries else 0, audio)


def _modality(detail: Any) -> str:
    m = getattr(detail, "modality", None)
    return str(getattr(m, "value", m) or "")


def _search_queries(response: Any) -> int:
    cands = getattr(response, "candidates", None) or []
    gm = cands[0].grounding_metadata if cands else None
    return len(gm.web_search_queries or []) if gm is not None else 0


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
    service_tier: str | None = None  # usageMetadata.serviceTier: the tier that served the answer (flex calls)
    raw: Any = field(default=None, repr=False)
    # Tools (``flashlane.call.tools``): the function calls of the answer (with the tool loop, every
    # call of every round, each with the result sent back), the grounding sources and the answer
    # spans they support, the search queries run, URL-context retrieval per URL, code executed.
    tool_calls: list[ToolCall] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    search_queries: list[str] = field(default_factory=list)
    url_statuses: list[UrlStatus] = field(default_factory=list)
    code: list[CodeRun] = field(default_factory=list)
    tool_rounds: int = 0  # rounds of functions the tool loop ran

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
            "service_tier": self.service_tier,
            **self._tool_dict(),
        }

    def _tool_dict(self) -> dict[str, Any]:
        """The tool parts, present only when the answer has them (plain answers keep their shape)."""
        out: dict[str, Any] = {}
        for name in ("tool_calls", "sources", "citations", "url_statuses", "code"):
            items = getattr(self, name)
            if items:
                out[name] = [i.as_dict() for i in items]
        if self.search_queries:
            out["search_queries"] = list(self.search_queries)
        if self.tool_rounds:
            out["tool_rounds"] = self.tool_rounds
        return out
