"""Streaming answers: text chunks as they arrive, through the same guard as every call.

An attempt opens the stream and reads it up to the first chunk with answer text (thought
parts and empty chunks before it are buffered). That whole opening runs inside the guard, so
a 429, a 5xx, a hang or a stream cut off *before any text was shown* is retried like any
other call, within the one deadline. A stream that ends with no text because thinking used
the output cap (``MAX_TOKENS``) is asked again once with a larger cap, as ``answer.judge``
does for whole answers. Once text has been shown it cannot be taken back: a cut after that
raises ``TransportError`` saying the text shown is incomplete.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..errors import (
    ConfigError,
    EmptyAnswer,
    FlashlaneError,
    OutputTruncated,
    ToolLoopExceeded,
    TransportError,
)
from ..models import Usage, cost_of, lookup
from .answer import TRUNCATION_GROWTH, answer_text, check_blocked, enum_name, with_tools
from .boundary import boundary
from .client import Client
from .request import Call
from .result import Result, usage_from_response
from .tools import (
    DEFAULT_MAX_TOOL_ROUNDS,
    ToolCall,
    ToolParts,
    acall_functions,
    call_functions,
    has_runnable,
    model_turn,
    read_parts,
    responses_turn,
)

__all__ = ["AsyncTextStream", "TextStream"]


class _Opened:
    """A stream read up to its first text (or its end): the chunks so far and the rest."""

    __slots__ = ("chunks", "rest", "ended")

    def __init__(self, chunks: list[Any], rest: Any, ended: bool) -> None:
        self.chunks = chunks
        self.rest = rest
        self.ended = ended

    @property
    def response(self) -> Any:  # for the guard's token reconciliation
        return self.chunks[-1] if self.chunks else None


def _has_finish(chunk: Any) -> bool:
    return bool(chunk is not None and chunk.candidates and chunk.candidates[0].finish_reason is not None)


def _ended(chunks: list[Any], call: Call) -> _Opened:
    """A stream that ended before any text. Every complete stream ends with a finishReason
    (gemini-api-wire.md §1.1); one without it was cut or garbled, and is retried."""
    last = chunks[-1] if chunks else None
    blocked = last is not None and last.prompt_feedback is not None and last.prompt_feedback.block_reason
    if not blocked and not _has_finish(last):
        raise TransportError("the stream ended before the answer did (no finishReason)",
                             hint="retried automatically", model=call.model)
    return _Opened(chunks, None, ended=True)


class _State:
    def __init__(self, client: Client, call: Call, run_tools: bool = False,
                 max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> None:
        self.client = client
        self.call = call
        self.parts: list[str] = []
        self.last: Any = None
        self.t0 = time.perf_counter()
        self.result: Result | None = None
        self.grown = False
        self.chunks: list[Any] = []  # kept only when the call declares tools (their parts span chunks)
        self.run_tools = run_tools
        self.max_rounds = max_tool_rounds
        self.rounds = 0
        self.done: list[ToolCall] = []  # calls run in earlier rounds
        self.earlier = Usage()  # usage of earlier rounds
        self.start: float | None = None
        if run_tools:
            if call.toolset is None or not call.toolset.runnable:
                raise ConfigError("run_tools=True needs at least one Python function in tools",
                                  hint="pass the functions to run, e.g. tools=[get_weather]")
            self.start = client.clock.monotonic()  # one deadline for the whole loop

    def on_chunk(self, chunk: Any) -> str:
        self.last = chunk
        if self.call.toolset is not None:
            self.chunks.append(chunk)
        check_blocked(chunk, self.call.model)
        text = answer_text(chunk)
        self.parts.append(text)
        return text

    @property
    def shown(self) -> int:
        return sum(len(p) for p in self.parts)

    def finish_reason(self) -> str | None:
        last = self.last
        if last is not None and last.candidates:
            return enum_name(last.candidates[0].finish_reason)
        return None

    def retry_larger(self) -> bool:
        """The stream ended with no text because thinking used the cap: ask once more, larger."""
        if self.shown or self.finish_reason() != "MAX_TOKENS" or self.grown:
            return False
        info = lookup(self.call.model)
        limit = min(self.client.settings.output_ceiling, info.output_token_limit if info else self.call.max_output_tokens)
        if self.call.max_output_tokens >= limit:
            return False
        self.grown = True
        if self.last is not None:
            self.client.record(self.last, self.call.model)
        self.call = self.call.with_cap(min(self.call.max_output_tokens * TRUNCATION_GROWTH, limit))
        self.parts, self.chunks, self.last = [], [], None
        return True

    def tools(self) -> ToolParts | None:
        return read_parts(self.chunks, self.call.toolset, self.rounds + 1) if self.call.toolset is not None else None

    def pending_calls(self) -> list[ToolCall] | None:
        """The calls to run before the next round, when the stream ended in runnable calls only."""
        if not self.run_tools or self.shown or self.last is None:
            return None
        parts = self.tools()
        if parts is None or not has_runnable(parts.calls, self.call.toolset):
            return None
        if self.rounds >= self.max_rounds:
            names = ", ".join(dict.fromkeys(c.name for c in parts.calls))
            raise ToolLoopExceeded(
                f"the model still called functions ({names}) after max_tool_rounds={self.max_rounds} rounds",
                hint="raise max_tool_rounds, or make the functions' results answer the question",
                calls=self.done + parts.calls, rounds=self.max_rounds,
                usage=self.earlier + usage_from_response(self.last), model=self.call.model)
        return parts.calls

    def next_round(self, ran: list[ToolCall]) -> None:
        """Send the results back: the model's turn as received (signatures intact), then theirs."""
        self.client.record(self.last, self.call.model)
        self.earlier = self.earlier + usage_from_response(self.last)
        self.done.extend(ran)
        self.rounds += 1
        self.call = self.call.with_turns(model_turn(self.chunks), responses_turn(ran))
        self.parts, self.chunks, self.last = [], [], None

    def cut(self, error: FlashlaneError) -> FlashlaneError:
        if isinstance(error, TransportError) and self.shown:
            return TransportError(f"the stream was cut off after {self.shown} characters; the text shown is "
                                  "incomplete", hint="rerun to get the whole answer", model=self.call.model)
        return error

    def check_complete(self) -> None:
        if not _has_finish(self.last):
            raise self.cut(TransportError("the stream ended before the answer did", model=self.call.model))

    def finish(self) -> Result:
        last = self.last
        text = "".join(self.parts)
        finish = self.finish_reason()
        usage = self.earlier + (usage_from_response(last) if last is not None else Usage())
        if last is not None:
            self.client.record(last, self.call.model)
        tools = self.tools()
        if tools is not None:
            tools.calls = self.done + tools.calls
        if not text and tools is not None and tools.calls:  # a turn of calls is an answer without text
            self.result = self._result(text, finish, usage, tools)
            return self.result
        if not text:
            if finish == "MAX_TOKENS":
                raise OutputTruncated(
                    f"the stream hit max_output_tokens={self.call.max_output_tokens} before any answer text "
                    "(thinking used the cap), even after one retry with a larger cap",
                    hint="raise max_output_tokens (--max-output-tokens) or lower the thinking level",
                    finish_reason=finish, usage=usage, model=self.call.model)
            raise EmptyAnswer(f"the stream ended with no answer text (finishReason {finish or 'none'})",
                              hint="retry later or rephrase; an empty STOP is never treated as success",
                              finish_reason=finish, usage=usage, model=self.call.model)
        self.result = self._result(text, finish, usage, tools)
        return self.result

    def _result(self, text: str, finish: str | None, usage: Usage, tools: ToolParts | None) -> Result:
        last = self.last
        result = with_tools(Result(
            text=text, usage=usage, cost_usd=cost_of(self.call.model, usage), finish_reason=finish,
            model=self.call.model, model_version=getattr(last, "model_version", None),
            latency_s=time.perf_counter() - self.t0, response_id=getattr(last, "response_id", None),
            truncated=finish == "MAX_TOKENS"), tools)
        result.tool_rounds = self.rounds
        return result


class TextStream:
    """Iterate for text chunks; ``result`` is set after the last one."""

    def __init__(self, client: Client, call: Call, *, run_tools: bool = False,
                 max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> None:
        self._state = _State(client, call, run_tools, max_tool_rounds)

    @property
    def result(self) -> Result | None:
        return self._state.result

    def _open(self) -> _Opened:
        st = self._state
        client, call = st.client, st.call

        def attempt(remaining: float) -> _Opened:
            chunks: list[Any] = []
            with boundary(model=call.model, timeout_s=client.attempt_timeout(remaining), streaming=True):
                it = iter(client.sdk.models.generate_content_stream(
                    model=call.model, contents=call.sdk_contents, config=client.attempt_config(call, remaining)))
                for chunk in it:
                    chunks.append(chunk)
                    if answer_text(chunk):
                        return _Opened(chunks, it, ended=False)
            return _ended(chunks, call)

        return client.guarded(call, attempt, start=st.start)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        st = self._state
        while True:
            opened = self._open()
            for chunk in opened.chunks:
                if text := st.on_chunk(chunk):
                    yield text
            if opened.ended and st.retry_larger():
                continue
            if opened.ended and (calls := st.pending_calls()) is not None:
                assert st.call.toolset is not None
                st.next_round(call_functions(calls, st.call.toolset))
                continue
            break
        rest = opened.rest
        while rest is not None:
            try:
                with boundary(model=st.call.model, timeout_s=st.client.settings.timeout_s, streaming=True):
                    chunk = next(rest, None)
            except FlashlaneError as e:
                raise st.cut(e) from e
            if chunk is None:
                break
            if text := st.on_chunk(chunk):
                yield text
        st.check_complete()
        st.finish()


class AsyncTextStream:
    def __init__(self, client: Client, call: Call, *, run_tools: bool = False,
                 max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> None:
        self._state = _State(client, call, run_tools, max_tool_rounds)

    @property
    def result(self) -> Result | None:
        return self._state.result

    async def _open(self) -> _Opened:
        st = self._state
        client, call = st.client, st.call

        async def attempt(remaining: float) -> _Opened:
            chunks: list[Any] = []
            with boundary(model=call.model, timeout_s=client.attempt_timeout(remaining), streaming=True):
                it = await client.sdk.aio.models.generate_content_stream(
                    model=call.model, contents=call.sdk_contents, config=client.attempt_config(call, remaining))
                async for chunk in it:
                    chunks.append(chunk)
                    if answer_text(chunk):
                        return _Opened(chunks, it, ended=False)
            return _ended(chunks, call)

        return await client.aguarded(call, attempt, start=st.start)  # type: ignore[no-any-return]

    async def __aiter__(self) -> AsyncIterator[str]:
        st = self._state
        while True:
            opened = await self._open()
            for chunk in opened.chunks:
                if text := st.on_chunk(chunk):
                    yield text
            if opened.ended and st.retry_larger():
                continue
            if opened.ended and (calls := st.pending_calls()) is not None:
                assert st.call.toolset is not None
                st.next_round(await acall_functions(calls, st.call.toolset))
                continue
            break
        rest = opened.rest
        while rest is not None:
            try:
                with boundary(model=st.call.model, timeout_s=st.client.settings.timeout_s, streaming=True):
                    chunk = await anext(rest, None)
            except FlashlaneError as e:
                raise st.cut(e) from e
            if chunk is None:
                break
            if text := st.on_chunk(chunk):
                yield text
        st.check_complete()
        st.finish()
