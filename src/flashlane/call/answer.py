"""The answer judge: is an answer usable, and if not, what to send next. The one place these
rules live, for every path: a whole response (``generate``), a stream's chunks, a batch job's
result body, and each round of the tool loop.

``Judge`` is sans-IO. A driver sends ``judge.call``, hands back what came (``verdict``), and gets
the next step: a ``Call`` to send (the same conversation changed: reframed, a larger cap, a
re-ask, or the next tool round), a list of ``ToolCall`` to run (then ``ran``), or the ``Result``.
Failures are raised typed. The rules:

- prompt blocked (``promptFeedback.blockReason``) or answer stopped (SAFETY, RECITATION,
  PROHIBITED_CONTENT, ...) -> ``SafetyBlocked`` with the reason and ratings; with
  ``reframe`` on, one retry under a professional system instruction first;
- ``MAX_TOKENS`` with no answer (thinking ate the cap) or unparsable JSON -> one retry with
  a larger cap, bounded by the model's limit and the configured ceiling -> ``OutputTruncated``;
- a schema answer that does not validate -> exactly one re-ask carrying the validation
  error, ending on a user turn -> ``SchemaViolation`` with the raw text;
- ``STOP`` with no text -> ``EmptyAnswer``. Never an empty string returned as success; the one
  answer without text that is usable is a turn of function calls (``Result.tool_calls``);
- with ``run_tools``, a turn that calls only functions flashlane can run is run and sent back,
  up to ``max_tool_rounds`` rounds -> ``ToolLoopExceeded``.

What a driver cannot do it declares: a batch result cannot be sent again in place
(``can_resend=False``: the caller requeues the failure), a stream cannot take back text it has
shown (``verdict(..., shown=True)``). Cost is computed here once, at the served tier.

Transport retries (429/5xx) happen below this, in ``guard.Guard``, with their own budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.genai import types

from ..errors import (
    ConfigError,
    ContentError,
    EmptyAnswer,
    OutputTruncated,
    SafetyBlocked,
    SafetyRating,
    SchemaViolation,
    ToolLoopExceeded,
)
from ..models import Usage, cost_of, lookup
from .request import Call
from .result import Result, usage_from_response
from .service_tier import priced_tier
from .tools import (
    DEFAULT_MAX_TOOL_ROUNDS,
    ToolCall,
    ToolParts,
    enum_name,
    has_runnable,
    model_turn,
    read_parts,
    responses_turn,
)

__all__ = ["Judge", "Step", "REFRAME_SYSTEM", "STOPPED_REASONS", "TRUNCATION_GROWTH", "answer_text", "enum_name", "usage_of"]

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

Step = Call | list[ToolCall] | Result


def _ratings(raw: Any) -> list[SafetyRating]:
    return [SafetyRating(category=enum_name(r.category) or "?", probability=enum_name(r.probability) or "?",
                         blocked=bool(getattr(r, "blocked", False))) for r in raw or []]


def answer_text(response: Any) -> str:
    cands = response.candidates or []
    if not cands or cands[0].content is None:
        return ""
    return "".join(p.text for p in (cands[0].content.parts or []) if p.text and not p.thought)


def _finish(chunks: Sequence[Any]) -> str | None:
    for chunk in reversed(chunks):
        if chunk.candidates and chunk.candidates[0].finish_reason is not None:
            return enum_name(chunk.candidates[0].finish_reason)
    return None


def usage_of(chunks: Sequence[Any]) -> Usage:
    """A whole answer's usage: a stream's last chunk with usage metadata carries the totals."""
    for chunk in reversed(chunks):
        if getattr(chunk, "usage_metadata", None) is not None:
            return usage_from_response(chunk)
    return Usage()


def _check_blocked(chunks: Sequence[Any], model: str, usage: Usage) -> None:
    """Raise SafetyBlocked for a blocked prompt or a stopped answer."""
    for chunk in chunks:
        fb = chunk.prompt_feedback
        if fb is not None and fb.block_reason is not None:
            reason = enum_name(fb.block_reason) or "BLOCK_REASON_UNSPECIFIED"
            ratings = _ratings(fb.safety_ratings)
            worst = ", ".join(f"{r.category}={r.probability}" for r in ratings
                              if r.blocked or r.probability in ("MEDIUM", "HIGH"))
            raise SafetyBlocked(
                f"the prompt was blocked by Gemini (blockReason {reason})" + (f": {worst}" if worst else ""),
                hint="rephrase the input, adjust safety_settings, or enable reframe_on_block for moderation work",
                stage="prompt", reason=reason, ratings=ratings, model=model, usage=usage)
    stop = _finish(chunks)
    if stop is not None and stop in STOPPED_REASONS:
        last = next(c for c in reversed(chunks) if c.candidates)
        ratings = _ratings(last.candidates[0].safety_ratings)
        worst = ", ".join(f"{r.category}={r.probability}" for r in ratings if r.blocked)
        what = "recited source material" if stop == "RECITATION" else "was stopped"
        raise SafetyBlocked(
            f"the answer {what} (finishReason {stop})" + (f": {worst}" if worst else ""),
            hint="adjust safety_settings or the input; RECITATION means the answer copied protected text",
            stage="answer", reason=stop, ratings=ratings, model=model, usage=usage)


class Judge:
    """One conversation's verdicts, from its first request to its result."""

    def __init__(self, call: Call, *, output_ceiling: int, reframe: bool = False, run_tools: bool = False,
                 max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS, can_resend: bool = True,
                 billed_tier: str | None = None) -> None:
        if run_tools:
            if call.toolset is None or not call.toolset.runnable:
                raise ConfigError("run_tools=True needs at least one Python function in tools",
                                  hint="pass the functions to run, e.g. tools=[get_weather]")
            if max_tool_rounds < 1:
                raise ConfigError(f"max_tool_rounds must be at least 1, not {max_tool_rounds}",
                                  hint="e.g. max_tool_rounds=5")
        self.call = call  # what to send next
        self.model = call.model
        self.reframe = reframe
        self.run_tools = run_tools
        self.max_rounds = max_tool_rounds
        self.can_resend = can_resend
        self.billed_tier = billed_tier  # the batch tier bills by the job, not by a field
        info = lookup(call.model)
        self.limit = min(output_ceiling, info.output_token_limit if info else output_ceiling)
        self.usage = Usage()
        self.latency = 0.0
        self.attempts = 0
        self.rounds = 0
        self.done: list[ToolCall] = []  # calls run in earlier rounds
        self.grown = self.reasked = self.reframed = False
        self._turn: types.Content | None = None  # the model's turn that called the functions being run

    def service_tier(self, served: str | None) -> str:
        """The service tier a response is billed at: the batch job's, the one that served it, else the one asked for."""
        return self.billed_tier or priced_tier(self.call.config, served)

    def verdict(self, chunks: Sequence[Any], *, latency_s: float = 0.0, served_tier: str | None = None,
                shown: bool = False) -> Step:
        """The next step after one answer (a whole response, or a stream's chunks in order).
        ``shown``: the answer's text already reached the caller, so it cannot be asked again.
        A ContentError it raises carries what the call used and cost, at the tier that served it."""
        try:
            return self._verdict(chunks, latency_s=latency_s, served_tier=served_tier, shown=shown)
        except ContentError as e:
            e.usage = self.usage
            e.cost_usd = cost_of(self.model, self.usage, service_tier=self.service_tier(served_tier))
            e.attempts = self.attempts
            raise

    def _verdict(self, chunks: Sequence[Any], *, latency_s: float, served_tier: str | None, shown: bool) -> Step:
        call = self.call
        self.attempts += 1
        self.latency += latency_s
        self.usage = self.usage + usage_of(chunks)
        resend = self.can_resend and not shown
        try:
            _check_blocked(chunks, self.model, self.usage)
        except SafetyBlocked:
            if self.reframe and not self.reframed and resend:
                self.reframed = True
                self.call = call.with_system(REFRAME_SYSTEM)
                return self.call
            raise
        text = "".join(answer_text(c) for c in chunks)
        finish = _finish(chunks)
        tools = read_parts(chunks, call.toolset, self.rounds + 1) if call.toolset is not None else None
        if tools is not None and tools.calls and not text:
            if self.run_tools and has_runnable(tools.calls, call.toolset):
                if self.rounds >= self.max_rounds:
                    names = ", ".join(dict.fromkeys(c.name for c in tools.calls))
                    raise ToolLoopExceeded(
                        f"the model still called functions ({names}) after max_tool_rounds={self.max_rounds} "
                        "rounds", hint="raise max_tool_rounds, or make the functions' results answer the question",
                        calls=self.done + tools.calls, rounds=self.max_rounds, usage=self.usage, model=self.model)
                # The model's turn goes back as received, so its thought signature is echoed intact.
                self._turn = model_turn(chunks)
                return tools.calls
            # A turn of function calls is the answer: no text by design, so never EmptyAnswer.
            return self._result(chunks, "", None, finish, served_tier, tools)
        parsed: Any = None
        error: str | None = None
        if call.schema is not None and text:
            try:
                parsed = call.schema.validate_text(text)
            except ValueError as e:
                error = str(e)
        if finish == "MAX_TOKENS" and (not text or error is not None):
            if resend and not self.grown and call.max_output_tokens < self.limit:
                self.grown = True
                self.call = call.with_cap(min(call.max_output_tokens * TRUNCATION_GROWTH, self.limit))
                return self.call
            why = "thinking used the whole output cap" if not text else "the JSON answer was cut off"
            after = " even after one retry with a larger cap" if self.grown else ""
            raise OutputTruncated(
                f"the answer hit max_output_tokens={call.max_output_tokens} ({why}){after}",
                hint="raise max_output_tokens (--max-output-tokens / FLASHLANE_MAX_OUTPUT_TOKENS) and "
                     "FLASHLANE_OUTPUT_CEILING, or lower the thinking level",
                finish_reason=finish, raw_text=text or None, usage=self.usage, model=self.model)
        if not text:
            raise EmptyAnswer(
                f"Gemini returned no answer text (finishReason {finish or 'none'})",
                hint="retry later or rephrase; an empty STOP is never treated as success",
                finish_reason=finish, usage=self.usage, model=self.model)
        if error is not None:
            if resend and not self.reasked:
                self.reasked = True
                self.call = call.with_turns(
                    types.Content(role="model", parts=[types.Part(text=text)]),
                    types.Content(role="user", parts=[types.Part(text=REASK_TEMPLATE.format(error=error))]),
                )
                return self.call
            after = " after one re-ask" if self.reasked else ""
            raise SchemaViolation(
                f"the answer did not match the schema{after}: {error}",
                hint="simplify the schema, raise the thinking level, or inspect .raw_text",
                validation_error=error, raw_text=text, finish_reason=finish, usage=self.usage, model=self.model)
        return self._result(chunks, text, parsed, finish, served_tier, tools)

    def ran(self, ran: list[ToolCall]) -> Call:
        """The functions' results go back: the model's turn as received, then theirs."""
        assert self._turn is not None, "ran() follows a verdict that asked for tools"
        self.done.extend(ran)
        self.rounds += 1
        self.call = self.call.with_turns(self._turn, responses_turn(ran))
        self._turn = None
        return self.call

    def _result(self, chunks: Sequence[Any], text: str, parsed: Any, finish: str | None, served: str | None,
                tools: ToolParts | None) -> Result:
        last = chunks[-1] if chunks else None
        result = Result(
            text=text, parsed=parsed, usage=self.usage,
            cost_usd=cost_of(self.model, self.usage, service_tier=self.service_tier(served)),
            finish_reason=finish, service_tier=served, model=self.model,
            model_version=getattr(last, "model_version", None), latency_s=self.latency,
            response_id=getattr(last, "response_id", None), attempts=self.attempts,
            truncated=finish == "MAX_TOKENS", raw=last if len(chunks) == 1 else None)
        if tools is not None:
            for name in ("sources", "citations", "search_queries", "url_statuses", "code"):
                setattr(result, name, getattr(tools, name))
            result.tool_calls = [*self.done, *tools.calls]
        result.tool_rounds = self.rounds
        return result

