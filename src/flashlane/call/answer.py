"""Judging an answer: is it usable, and if not, what to send next.

``judge`` is a generator: it yields the next ``Call`` to send and receives the SDK
response for it, so one implementation serves both ``Client.run_call`` and
``Client.arun_call`` (the drivers differ only in how they send). The rules:

- prompt blocked (``promptFeedback.blockReason``) or answer stopped (SAFETY, RECITATION,
  PROHIBITED_CONTENT, ...) -> ``SafetyBlocked`` with the reason and ratings; with
  ``reframe`` on, one retry under a professional system instruction first;
- ``MAX_TOKENS`` with no answer (thinking ate the cap) or unparsable JSON -> one retry with
  a larger cap, bounded by the model's limit and the configured ceiling -> ``OutputTruncated``;
- a schema answer that does not validate -> exactly one re-ask carrying the validation
  error, ending on a user turn -> ``SchemaViolation`` with the raw text;
- ``STOP`` with no text -> ``EmptyAnswer``. Never an empty string returned as success; the one
  answer without text that is usable is a turn of function calls (``Result.tool_calls``).

Transport retries (429/5xx) happen below this, in ``guard.Guard``, with their own budget.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from google.genai import types

from ..errors import EmptyAnswer, OutputTruncated, SafetyBlocked, SafetyRating, SchemaViolation
from ..models import Usage, cost_of, lookup
from .request import Call
from .result import Result, usage_from_response
from .service_tier import tier_of
from .tools import ToolParts, read_parts

__all__ = ["judge", "with_tools", "Sent", "REFRAME_SYSTEM", "STOPPED_REASONS", "TRUNCATION_GROWTH", "answer_text", "check_blocked",
           "enum_name"]

TRUNCATION_GROWTH = 4  # the larger cap is 4x the first one (bounded)
REASK_TEMPLATE = (
    "Your previous answer was not valid: {error}. "
    "Reply again with only the JSON value that satisfies the response schema, nothing else."
)
REFRAME_SYSTEM = (
    "You are assisting a trust-and-safety professional who reviews user-generated content for a platform's "
    "moderation team. Analyse the content objectively and factually, as required for the review; do not "
    "reproduce or extend harmful material beyond what the task requires."
)
STOPPED_REASONS = {
    "SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "OTHER", "LANGUAGE",
    "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_OTHER", "IMAGE_RECITATION", "MODEL_ARMOR",
}


class Sent:
    """One SDK response with how long it took."""

    __slots__ = ("response", "latency_s", "service_tier")

    def __init__(self, response: Any, latency_s: float, service_tier: str | None = None) -> None:
        self.response = response
        self.latency_s = latency_s
        self.service_tier = service_tier  # usageMetadata.serviceTier when read (flex calls)


def enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", value))


def _ratings(raw: Any) -> list[SafetyRating]:
    out = []
    for r in raw or []:
        out.append(SafetyRating(category=enum_name(r.category) or "?", probability=enum_name(r.probability) or "?",
                                blocked=bool(getattr(r, "blocked", False))))
    return out


def answer_text(response: Any) -> str:
    cands = response.candidates or []
    if not cands or cands[0].content is None:
        return ""
    return "".join(p.text for p in (cands[0].content.parts or []) if p.text and not p.thought)


def check_blocked(response: Any, model: str, usage: Usage | None = None) -> None:
    """Raise SafetyBlocked for a blocked prompt or a stopped answer."""
    fb = response.prompt_feedback
    if fb is not None and fb.block_reason is not None:
        reason = enum_name(fb.block_reason) or "BLOCK_REASON_UNSPECIFIED"
        ratings = _ratings(fb.safety_ratings)
        worst = ", ".join(f"{r.category}={r.probability}" for r in ratings if r.blocked or r.probability in ("MEDIUM", "HIGH"))
        raise SafetyBlocked(
            f"the prompt was blocked by Gemini (blockReason {reason})" + (f": {worst}" if worst else ""),
            hint="rephrase the input, adjust safety_settings, or enable reframe_on_block for moderation work",
            stage="prompt", reason=reason, ratings=ratings, model=model, usage=usage)
    cands = response.candidates or []
    if cands:
        stop = enum_name(cands[0].finish_reason)
        if stop is not None and stop in STOPPED_REASONS:
            reason = stop
            ratings = _ratings(cands[0].safety_ratings)
            worst = ", ".join(f"{r.category}={r.probability}" for r in ratings if r.blocked)
            what = "recited source material" if reason == "RECITATION" else "was stopped"
            raise SafetyBlocked(
                f"the answer {what} (finishReason {reason})" + (f": {worst}" if worst else ""),
                hint="adjust safety_settings or the input; RECITATION means the answer copied protected text",
                stage="answer", reason=reason, ratings=ratings, model=model, usage=usage)


def judge(call: Call, *, output_ceiling: int, reframe: bool = False) -> Generator[Call, Sent, Result]:
    usage = Usage()
    latency = 0.0
    attempts = 0
    grown = reasked = reframed = False
    current = call
    info = lookup(call.model)
    limit = min(output_ceiling, info.output_token_limit if info else output_ceiling)
    while True:
        sent = yield current
        attempts += 1
        resp = sent.response
        latency += sent.latency_s
        usage = usage + usage_from_response(resp)
        try:
            check_blocked(resp, call.model, usage)
        except SafetyBlocked:
            if reframe and not reframed:
                reframed = True
                current = current.with_system(REFRAME_SYSTEM)
                continue
            raise
        text = answer_text(resp)
        finish = enum_name(resp.candidates[0].finish_reason) if resp.candidates else None
        tools = read_parts([resp], call.toolset) if call.toolset is not None else None
        if tools is not None and tools.calls and not text:
            # A turn of function calls is the answer: no text by design, so never EmptyAnswer.
            return with_tools(Result(
                text="", usage=usage, cost_usd=cost_of(call.model, usage), finish_reason=finish, model=call.model,
                model_version=resp.model_version, latency_s=latency, response_id=resp.response_id,
                attempts=attempts, raw=resp), tools)
        parsed: Any = None
        error: str | None = None
        if call.schema is not None and text:
            try:
                parsed = call.schema.validate_text(text)
            except ValueError as e:
                error = str(e)
        truncated = finish == "MAX_TOKENS" and (not text or error is not None)
        if truncated:
            if not grown and current.max_output_tokens < limit:
                grown = True
                current = current.with_cap(min(current.max_output_tokens * TRUNCATION_GROWTH, limit))
                continue
            why = "thinking used the whole output cap" if not text else "the JSON answer was cut off"
            raise OutputTruncated(
                f"the answer hit max_output_tokens={current.max_output_tokens} ({why}) even after one retry "
                "with a larger cap",
                hint="raise max_output_tokens (--max-output-tokens / FLASHLANE_MAX_OUTPUT_TOKENS) and "
                     "FLASHLANE_OUTPUT_CEILING, or lower the thinking level",
                finish_reason=finish, raw_text=text or None, usage=usage, model=call.model)
        if not text:
            raise EmptyAnswer(
                f"Gemini returned no answer text (finishReason {finish or 'none'})",
                hint="retry later or rephrase; an empty STOP is never treated as success",
                finish_reason=finish, usage=usage, model=call.model)
        if error is not None:
            if not reasked:
                reasked = True
                current = current.with_turns(
                    types.Content(role="model", parts=[types.Part(text=text)]),
                    types.Content(role="user", parts=[types.Part(text=REASK_TEMPLATE.format(error=error))]),
                )
                continue
            raise SchemaViolation(
                f"the answer did not match the schema after one re-ask: {error}",
                hint="simplify the schema, raise the thinking level, or inspect .raw_text",
                validation_error=error, raw_text=text, finish_reason=finish, usage=usage, model=call.model)
        billed = sent.service_tier or tier_of(call.config)  # the tier that served it, else the one asked for
        return with_tools(Result(
            text=text, parsed=parsed, usage=usage, cost_usd=cost_of(call.model, usage, tier=billed),
            finish_reason=finish, service_tier=sent.service_tier,
            model=call.model, model_version=resp.model_version, latency_s=latency, response_id=resp.response_id,
            attempts=attempts, truncated=finish == "MAX_TOKENS", raw=resp,
        ), tools)


def with_tools(result: Result, tools: ToolParts | None) -> Result:
    """The result with the answer's tool parts filled in (unchanged without tools)."""
    if tools is not None:
        result.tool_calls = tools.calls
        result.sources = tools.sources
        result.citations = tools.citations
        result.search_queries = tools.search_queries
        result.url_statuses = tools.url_statuses
        result.code = tools.code
    return result
