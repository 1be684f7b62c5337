"""From a parsed request (and maybe a scenario action) to a GenerateContentResponse.

This is where the usage arithmetic lives, matching the live API: ``promptTokenCount`` is the
same number countTokens returns; thinking tokens come from the catalog
(``ModelInfo.thinking_tokens``) and, on Gemini 3 models, count against ``maxOutputTokens`` (a
cap at or below the thinking spend ends in ``MAX_TOKENS`` with ``{"role": "model"}`` and no
parts); ``totalTokenCount = prompt + candidates + thoughts``; zero counts are omitted.
Streams repeat ``usageMetadata``/``modelVersion``/``responseId`` in every chunk; only the last
carries ``finishReason`` and ``candidatesTokenCount``.

Gemini 3 answers, as recorded live (llm-gemini cassette ``test_prompt.yaml`` @2a8c855, the
JSON-array stream of gemini-3.6-flash that gemini-api-wire.md cites as [ws 17]; [ws 05], [ws 07]):
every chunk's candidate has ``"index": 0``; a thought summary comes in its own chunk, whose usage
has no ``thoughtsTokenCount`` yet; the answer's chunks follow; the stream ends with a chunk whose
only part is ``{"text": ""}`` and the ``finishReason``, that part carrying the answer's
``thoughtSignature`` when the model thought. A non-streamed answer carries it on its text part [ws 05].
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ..models import ModelInfo, estimate_tokens
from .errors import invalid_argument
from .graded import DEFAULT_THINKING
from .responder import MAX_GENERATED_CHARS, malformed, schema_answer, schema_violation, sentence, text_answer
from .wire import GenerateRequest, prompt_details

_STOPPED_FOR_SAFETY = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY"}
_SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
)
MAX_STREAM_CHUNKS = 16
TOKENS_PER_CHUNK = 6


@dataclass
class Answer:
    text: str | None  # None: no parts at all
    thought_text: str | None
    finish: str
    prompt_tokens: int
    candidates_tokens: int
    thoughts_tokens: int
    block_reason: str | None = None
    service_tier: str | None = None  # usageMetadata.serviceTier: the tier that served the request
    cached_tokens: int = 0  # of prompt_tokens, served from a cachedContent or an implicit cache hit
    # Set by tools.apply: parts before the text (functionCall / executableCode / codeExecutionResult),
    # candidate-level metadata (groundingMetadata, urlContextMetadata), the Gemini 3 signature of the
    # text part, and the built-ins' toolUsePromptTokenCount.
    lead_parts: list[dict[str, Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    text_signature: str | None = None
    tool_use_tokens: int = 0
    media_tokens: dict[str, int] = field(default_factory=dict)  # of prompt_tokens, by modality (GenerateRequest)

    @property
    def usage_tuple(self) -> tuple[int, int, int]:
        return self.prompt_tokens, self.candidates_tokens, self.thoughts_tokens


def check_thinking(info: ModelInfo, req: GenerateRequest) -> None:
    """400s the live API gives for thinking settings the model does not take."""
    if req.thinking_level is not None and req.thinking_budget is not None:
        raise invalid_argument("You can only set only one of thinking budget and thinking level.")
    if req.thinking_level is not None:
        if not info.uses_thinking_levels:
            raise invalid_argument(
                f"Thinking level is not supported for this model ({info.id}); use thinking_budget."
            )
        if req.thinking_level not in info.thinking_levels:
            raise invalid_argument(
                f"Thinking level {req.thinking_level.upper()} is not supported for this model. "
                f"Supported levels: {', '.join(x.upper() for x in info.thinking_levels)}."
            )
    if req.thinking_budget is not None and info.thinking_budget_range is not None:
        lo, hi = info.thinking_budget_range
        b = req.thinking_budget
        if b not in (0, -1) and not lo <= b <= hi:
            raise invalid_argument(
                f"The thinking budget {b} is invalid. Please choose a value between {lo} and {hi}."
            )


def thoughts_for(info: ModelInfo, req: GenerateRequest) -> int:
    return info.thinking_tokens(req.thinking_level, req.thinking_budget)


def _fits(text: str, budget: int) -> str:
    """The longest prefix of ``text`` whose token estimate is within ``budget``."""
    if budget <= 0:
        return ""
    return text[: budget * 4]


def build(
    info: ModelInfo, req: GenerateRequest, action: dict[str, Any] | None, budget: int = MAX_GENERATED_CHARS
) -> Answer:
    """The answer to a request; a schema instance is generated within ``budget`` characters
    (responder.Generator: a 400 at the full budget, ``OverBudget`` below it)."""
    act = action or {}
    rng = random.Random(req.seed(info.id))
    thoughts = thoughts_for(info, req)
    prompt = req.prompt_tokens
    if act.get("block"):
        return Answer(None, None, "", prompt, 0, 0, block_reason=str(act["block"]).upper())

    finish = str(act.get("finish") or "STOP").upper()
    if finish in _STOPPED_FOR_SAFETY or finish in ("RECITATION", "OTHER") and not act.get("text"):
        return Answer(None, None, finish, prompt, 0, thoughts)

    if "text" in act:
        text = str(act["text"])
    elif "json" in act:
        text = json.dumps(act["json"], indent=2)
    elif act.get("empty"):
        text = ""
    elif act.get("malformed_json"):
        mj = act["malformed_json"]
        text = (
            mj
            if isinstance(mj, str)
            else malformed(schema_answer(req.schema, rng, None, budget) if req.schema else '{\n  "label": "positive"\n}')
        )
    elif act.get("schema_violation"):
        text = schema_violation(req.schema, rng, budget) if req.schema else '{\n  "unexpected": true\n}'
    elif req.schema is not None:
        text = schema_answer(req.schema, rng, req.response_mime_type, budget, req.known, req.row_seeds(info.id))
    else:
        text = text_answer(req.prompt, rng)
    if act.get("graded") is not None:
        level = req.thinking_level or (None if req.thinking_budget is None else str(req.thinking_budget))
        text = act["graded"].answer(req.prompt, req.schema, text, info.id, (level or DEFAULT_THINKING).lower())

    cap = req.max_output_tokens or info.output_token_limit
    if info.uses_thinking_levels:
        if thoughts >= cap:
            return Answer(None, None, "MAX_TOKENS", prompt, 0, cap)
        budget = cap - thoughts
    else:
        budget = cap
    if finish == "MAX_TOKENS" and text:
        text = text[: max(1, len(text) // 2)]
    if estimate_tokens(text) > budget:
        text = _fits(text, budget)
        finish = "MAX_TOKENS"
    thought_text = None
    if req.include_thoughts and thoughts:
        thought_text = "**Thinking it through**\n\n" + sentence(rng, 8)
    return Answer(text, thought_text, finish, prompt, estimate_tokens(text), thoughts)


def usage(ans: Answer, final: bool = True) -> dict[str, Any]:
    u: dict[str, Any] = {}
    if ans.prompt_tokens:
        u["promptTokenCount"] = ans.prompt_tokens
    cand = ans.candidates_tokens if final else 0
    if cand:
        u["candidatesTokenCount"] = cand
    if ans.tool_use_tokens:
        u["toolUsePromptTokenCount"] = ans.tool_use_tokens
    u["totalTokenCount"] = ans.prompt_tokens + cand + ans.thoughts_tokens + ans.tool_use_tokens
    if ans.cached_tokens:
        u["cachedContentTokenCount"] = ans.cached_tokens
    if ans.prompt_tokens:
        u["promptTokensDetails"] = prompt_details(ans.prompt_tokens, ans.media_tokens)
    if ans.cached_tokens:
        u["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": ans.cached_tokens}]
    if ans.thoughts_tokens:
        u["thoughtsTokenCount"] = ans.thoughts_tokens
    if ans.service_tier:
        u["serviceTier"] = ans.service_tier
    if ans.tool_use_tokens:
        u["toolUsePromptTokensDetails"] = [{"modality": "TEXT", "tokenCount": ans.tool_use_tokens}]
    return u


def _safety_ratings(blocked: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, cat in enumerate(_SAFETY_CATEGORIES):
        r: dict[str, Any] = {"category": cat, "probability": "NEGLIGIBLE"}
        if blocked and i == 0:
            r = {"category": cat, "probability": "HIGH", "blocked": True}
        out.append(r)
    return out


def new_response_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(17)).decode()[:23]


def _candidate(ans: Answer, parts: list[dict[str, Any]] | None, finish: str | None) -> dict[str, Any]:
    cand: dict[str, Any]
    if ans.finish in _STOPPED_FOR_SAFETY and finish:
        return {"content": {}, "finishReason": finish, "safetyRatings": _safety_ratings(finish), "index": 0}
    content: dict[str, Any] = {"role": "model"}
    if parts:
        content = {"parts": parts, "role": "model"}
    cand = {"content": content}
    if finish:
        cand["finishReason"] = finish
        cand.update(ans.extras)  # grounding / URL-context metadata ride on the finished candidate
    cand["index"] = 0  # on every candidate, streamed chunks included (llm-gemini cassettes; ws 07)
    return cand


def _text_part(ans: Answer, text: str, last: bool) -> dict[str, Any]:
    part: dict[str, Any] = {"text": text}
    if last and ans.text_signature:
        part["thoughtSignature"] = ans.text_signature
    return part


def response(ans: Answer, model_version: str, response_id: str) -> dict[str, Any]:
    out: dict[str, Any]
    if ans.block_reason:
        out = {
            "promptFeedback": {
                "blockReason": ans.block_reason,
                "safetyRatings": _safety_ratings(ans.block_reason),
            }
        }
    else:
        parts = _lead_parts(ans)
        if ans.text is not None:
            parts.append(_text_part(ans, ans.text, True))
        out = {"candidates": [_candidate(ans, parts, ans.finish)]}
    out["usageMetadata"] = usage(ans)
    out["modelVersion"] = model_version
    out["responseId"] = response_id
    return out


_SPLIT = re.compile(r"(?<=\s)")


def split_text(text: str) -> list[str]:
    """Split on whitespace into a few chunks of about TOKENS_PER_CHUNK tokens."""
    words = [w for w in _SPLIT.split(text) if w]
    if len(words) <= 1:
        return [text]
    n = max(2, min(MAX_STREAM_CHUNKS, estimate_tokens(text) // TOKENS_PER_CHUNK + 1, len(words)))
    size = -(-len(words) // n)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _lead_parts(ans: Answer) -> list[dict[str, Any]]:
    """The parts before the answer's text: its thought summary, then the tools' parts."""
    thought = [{"text": ans.thought_text, "thought": True}] if ans.thought_text else []
    return [*thought, *ans.lead_parts]


def stream_chunks(ans: Answer, model_version: str, response_id: str, gemini3: bool = False) -> list[dict[str, Any]]:
    """The chunks of a streamed answer; ``gemini3``: the Gemini 3 chunking (module docstring)."""

    def chunk(parts: list[dict[str, Any]], final: bool, thoughts: bool = True) -> dict[str, Any]:
        u = usage(ans, final=final) if thoughts else usage(replace(ans, thoughts_tokens=0), final=final)
        return {"candidates": [_candidate(ans, parts, ans.finish if final else None)],
                "usageMetadata": u, "modelVersion": model_version, "responseId": response_id}

    if ans.lead_parts and not ans.text and not ans.block_reason:
        # Function calls: one chunk with the calls, then an empty text part that finishes (ws 07).
        return [chunk(_lead_parts(ans), False), chunk([{"text": ""}], True)]
    if ans.block_reason or ans.text is None or ans.text == "":
        return [response(ans, model_version, response_id)]
    out: list[dict[str, Any]] = []
    lead = _lead_parts(ans)
    if ans.thought_text:  # the thought summary in a chunk of its own, before any answer part
        out.append(chunk([lead.pop(0)], False, thoughts=False))
    pieces = split_text(ans.text)
    last = len(pieces) - 1
    for i, piece in enumerate(pieces):
        final = i == last and not gemini3
        out.append(chunk([*(lead if i == 0 else []), _text_part(ans, piece, final)], final))
    if gemini3:
        out.append(chunk([_text_part(ans, "", True)], True))
    return out
