"""Streaming answers: text chunks as they arrive, through the same guard and the same answer
judge as every call.

An attempt opens the stream and reads it up to the first chunk with answer text (thought
parts and empty chunks before it are kept). That opening runs inside the guard, so a 429, a
5xx, a hang or a stream cut off *before any text was shown* is retried like any other call,
within the one deadline. When the stream ends, ``answer.Judge`` decides as for a whole answer:
a blocked prompt is reframed, a stream that ended with no text because thinking used the cap
is asked again with a larger cap, a structured answer is validated against its schema, a turn
of runnable function calls is run and the next round streamed. What a stream cannot do it
declares: text it has shown cannot be taken back, so an answer that fails after its text was
shown is a typed failure, never a silent re-ask; a cut after that raises ``TransportError``
saying the text shown is incomplete.

The stream's logic is one sans-IO generator (``_steps``); ``TextStream`` and
``AsyncTextStream`` are its two small drivers. With telemetry on, each streamed request has
the span of a generate call (``Client._span``, marked ``gen_ai.request.stream``), open until its
stream is read to the end, fails, or its reader stops (the driver closes the steps).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from .. import telemetry
from ..errors import FlashlaneError, TransportError
from .answer import Judge, answer_text, usage_of
from .client import Client
from .request import Call
from .result import Result
from .tools import DEFAULT_MAX_TOOL_ROUNDS, ToolCall, acall_functions, call_functions

__all__ = ["AsyncTextStream", "TextStream"]


@dataclass
class _Opened:
    """A stream read up to its first text (or its end): the chunks so far and the rest."""

    chunks: list[Any]
    rest: Any
    ended: bool

    @property
    def response(self) -> Any:  # for the guard's token reconciliation
        return self.chunks[-1] if self.chunks else None


@dataclass
class _Open:
    call: Call
    obs: telemetry.CallSpan | None  # the request's span (telemetry on): the guard reports to it


@dataclass
class _Read:
    opened: _Opened


@dataclass
class _Run:
    calls: list[ToolCall]


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


def _cut(error: FlashlaneError, shown: int, model: str) -> FlashlaneError:
    if isinstance(error, TransportError) and shown:
        return TransportError(f"the stream was cut off after {shown} characters; the text shown is incomplete",
                              hint="rerun to get the whole answer", model=model)
    return error


def _steps(client: Client, judge: Judge) -> Generator[Any, Any, Result]:
    """Yields text to show, or an effect for the driver: ``_Open`` (-> ``_Opened``), ``_Read``
    (-> the next chunk, None at the end, or the read's error), ``_Run`` (-> the calls run)."""
    tel = telemetry.current()  # the one check: telemetry off costs nothing more
    while True:
        call = judge.call
        obs = None if tel is None else client._span(tel, call, stream=True)
        try:
            chunks, shown, latency = yield from _streamed(client, judge, call, obs)
        except BaseException as e:  # failed, or the reader stopped (GeneratorExit): the span ends
            if obs is not None:
                obs.end(e)
            raise
        if obs is not None:
            obs.end()
        step = judge.verdict(chunks, latency_s=latency, shown=bool(shown))
        if isinstance(step, Result):
            return step
        if isinstance(step, list):
            judge.ran((yield _Run(step)))


def _streamed(client: Client, judge: Judge, call: Call,
              obs: telemetry.CallSpan | None) -> Generator[Any, Any, tuple[list[Any], int, float]]:
    """One streamed request read to its end and recorded: (its chunks, characters shown, latency)."""
    t0 = time.perf_counter()
    opened: _Opened = yield _Open(call, obs)
    chunks = list(opened.chunks)
    shown = 0
    for chunk in opened.chunks:
        if text := answer_text(chunk):
            shown += len(text)
            yield text
    while not opened.ended:
        chunk = yield _Read(opened)
        if isinstance(chunk, FlashlaneError):
            raise _cut(chunk, shown, call.model) from chunk
        if chunk is None:
            if not _has_finish(chunks[-1] if chunks else None):
                raise _cut(TransportError("the stream ended before the answer did", model=call.model),
                           shown, call.model)
            break
        chunks.append(chunk)
        if text := answer_text(chunk):
            shown += len(text)
            yield text
    usage, tier = usage_of(chunks), judge.service_tier(None)
    cost = client.record(usage, call.model, tier)
    if obs is not None:  # the last chunk holds the usage, finish reason and model version
        obs.answered(chunks[-1] if chunks else None, usage, cost, tier)
    return chunks, shown, time.perf_counter() - t0


def _advance(stream: Any, steps: Generator[Any, Any, Result], value: Any) -> Any:
    """The next effect, or None once the steps returned (their result kept on the stream)."""
    try:
        return steps.send(value)
    except StopIteration as done:
        stream.result = done.value
        return None


def _read(next_chunk: Any) -> Any:
    """The next chunk, None at the end, or the read's error as a value (the steps decide)."""
    try:
        return next_chunk()
    except FlashlaneError as e:
        return e


def _stop(steps: Generator[Any, Any, Result], error: BaseException) -> None:
    """The driver stopped on ``error`` (an effect's, or ``GeneratorExit``: its reader stopped):
    the steps see it where they wait, so the request's span ends with it. They re-raise it (or
    had already ended); the driver raises it in any case."""
    try:
        steps.throw(error)
    except BaseException:  # the driver re-raises ``error`` itself
        pass


async def _aread(rest: Any) -> Any:
    try:
        return await anext(rest, None)
    except FlashlaneError as e:
        return e


class _Stream:
    def __init__(self, client: Client, call: Call, *, run_tools: bool = False,
                 max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> None:
        self._client = client
        self._judge = client.judge(call, run_tools=run_tools, max_tool_rounds=max_tool_rounds)
        self._start = client.clock.monotonic() if run_tools else None  # one deadline for the whole loop
        self.result: Result | None = None


class TextStream(_Stream):
    """Iterate for text chunks; ``result`` is set after the last one."""

    def _open(self, call: Call, obs: telemetry.CallSpan | None) -> _Opened:
        client = self._client
        call = client.uploads.resolve(call)  # large files: uploaded (or reused) first

        def attempt(remaining: float) -> _Opened:
            chunks: list[Any] = []
            it = client.transport.stream(call.model, call.sdk_contents, client.attempt_config(call, remaining),
                                         client.attempt_timeout(remaining))
            for chunk in it:
                chunks.append(chunk)
                if answer_text(chunk):
                    return _Opened(chunks, it, ended=False)
            return _ended(chunks, call)

        return client.guarded(call, attempt, start=self._start, obs=obs)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        steps, value = _steps(self._client, self._judge), None
        try:
            while (effect := _advance(self, steps, value)) is not None:
                if isinstance(effect, str):
                    yield effect
                value = (None if isinstance(effect, str) else self._open(effect.call, effect.obs)
                         if isinstance(effect, _Open)
                         else _read(lambda: next(effect.opened.rest, None)) if isinstance(effect, _Read)
                         else call_functions(effect.calls, self._judge.call.toolset))  # type: ignore[arg-type]
        except BaseException as e:
            _stop(steps, e)
            raise


class AsyncTextStream(_Stream):
    async def _open(self, call: Call, obs: telemetry.CallSpan | None) -> _Opened:
        client = self._client
        call = await client.uploads.aresolve(call)

        async def attempt(remaining: float) -> _Opened:
            chunks: list[Any] = []
            it = client.transport.astream(call.model, call.sdk_contents, client.attempt_config(call, remaining),
                                          client.attempt_timeout(remaining))
            async for chunk in it:
                chunks.append(chunk)
                if answer_text(chunk):
                    return _Opened(chunks, it, ended=False)
            return _ended(chunks, call)

        return await client.aguarded(call, attempt, start=self._start, obs=obs)  # type: ignore[no-any-return]

    async def __aiter__(self) -> AsyncIterator[str]:
        steps, value = _steps(self._client, self._judge), None
        try:
            while (effect := _advance(self, steps, value)) is not None:
                if isinstance(effect, str):
                    yield effect
                value = (None if isinstance(effect, str) else await self._open(effect.call, effect.obs)
                         if isinstance(effect, _Open)
                         else await _aread(effect.opened.rest) if isinstance(effect, _Read)
                         else await acall_functions(effect.calls, self._judge.call.toolset))  # type: ignore[arg-type]
        except BaseException as e:
            _stop(steps, e)
            raise
