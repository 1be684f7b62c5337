"""``Lane``: the one client. Every call runs limiter -> retry -> SDK -> error mapping -> usage/cost.

Sync and async share everything but the send: the request is built by ``request.build_call``,
the answer judged by ``policy.answer_policy``, retries and quotas handled by
``resilience.Guard``. Only ``_send``/``_asend`` touch the SDK, and SDK exceptions become
flashlane errors in exactly one call (``errors.from_sdk_error``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from google import genai
from google.genai import types

from .clock import SYSTEM_CLOCK, Clock
from .config import EMULATOR_API_KEY, Settings, load_settings
from .errors import ConfigError, EmptyAnswer, FlashlaneError, TransportError, from_sdk_error
from .policy import Sent, _answer_text, answer_policy, check_blocked
from .request import Call, build_call
from .result import Result, Usage, cost_of, usage_from_response
from .tasks.methods import TaskMethods

__all__ = ["Lane", "TextStream", "Totals"]


@dataclass
class Totals:
    """What this Lane has spent so far (all calls, retries included)."""

    calls: int = 0
    usage: Usage = Usage()
    cost_usd: float = 0.0  # of the calls whose price is known
    unpriced_calls: int = 0  # calls to a model whose price is unknown (not in cost_usd)


class Lane(TaskMethods):
    """A configured, safe Gemini client.

    ``Lane()`` reads settings from the environment and config file; keyword arguments
    override them (``Lane(model="gemini-2.5-flash-lite", timeout_s=10, limits="tier1")``);
    ``emulator=True`` runs against an in-process emulator. ``rate_limiter`` shares one
    ``limits.Limiter`` object between several Lanes in a process.
    """

    def __init__(self, settings: Settings | None = None, *, emulator: bool = False, clock: Clock | None = None,
                 rate_limiter: Any = None, **overrides: Any) -> None:
        if settings is None:
            settings = load_settings(emulator=emulator, **overrides)
        else:
            settings = settings.with_(**overrides)
            if emulator:
                settings = settings.with_(backend="emulator")
        settings.require_credentials()
        self.settings = settings
        self.clock = clock or SYSTEM_CLOCK
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self.totals = Totals()
        self.emulator_url: str | None = None
        self._client = self._make_client()
        self.guard = self._make_guard(rate_limiter)

    # ------------------------------------------------------------ construction

    def _make_client(self) -> genai.Client:
        s = self.settings
        http = types.HttpOptions(timeout=int(s.timeout_s * 1000))  # the SDK takes milliseconds
        if s.backend == "emulator":
            if not s.base_url:
                from .emulator import Emulator, EmulatorConfig

                emu = self._stack.enter_context(
                    Emulator(EmulatorConfig(latency_scale=s.emulator_latency_scale)).running())
                self.emulator_url = emu.base_url
            else:
                self.emulator_url = s.base_url
            http.base_url = self.emulator_url
            return genai.Client(api_key=s.api_key or EMULATOR_API_KEY, http_options=http)
        if s.backend == "vertex":
            if s.base_url:
                http.base_url = s.base_url
            try:
                if s.api_key and not s.vertex_project:
                    return genai.Client(vertexai=True, api_key=s.api_key, http_options=http)
                return genai.Client(vertexai=True, project=s.vertex_project, location=s.vertex_location,
                                    http_options=http)
            except Exception as e:  # google.auth raises DefaultCredentialsError without ADC
                raise ConfigError(f"Vertex AI credentials are not usable: {type(e).__name__}",
                                  hint="run 'gcloud auth application-default login' or set "
                                       "GOOGLE_APPLICATION_CREDENTIALS") from None
        if s.base_url:
            http.base_url = s.base_url
        return genai.Client(api_key=s.api_key, http_options=http)

    def _make_guard(self, limiter: Any) -> Any:
        from .limits import make_limiter
        from .resilience import Guard
        from .retry import RetryPolicy

        s = self.settings
        if limiter is None:
            limiter = make_limiter(s.limits, s.limiter, path=s.limiter_path, redis_url=s.redis_url,
                                   clock=self.clock, model=s.model)
        policy = RetryPolicy(max_attempts=s.max_attempts, deadline_s=s.retry_deadline_s)
        return Guard(limiter, policy, self.clock)

    @property
    def quota_key(self) -> str:
        return f"{self.settings.project}:{self.settings.model}"

    def _key(self, model: str) -> str:
        return f"{self.settings.project}:{model}"

    @property
    def sdk(self) -> genai.Client:
        """The underlying google-genai client, for calls flashlane does not wrap."""
        return self._client

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()
        self._stack.close()

    def __enter__(self) -> Lane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Lane:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._client.aio.aclose()
        self.close()

    # ------------------------------------------------------------ one SDK call

    def _record(self, response: Any, model: str) -> None:
        usage = usage_from_response(response)
        with self._lock:
            self.totals.calls += 1
            self.totals.usage = self.totals.usage + usage
            cost = cost_of(model, usage)
            if cost is None:
                self.totals.unpriced_calls += 1
            else:
                self.totals.cost_usd += cost

    def _send(self, call: Call) -> Sent:
        def once() -> Sent:
            t0 = time.perf_counter()
            try:
                resp = self._client.models.generate_content(model=call.model, contents=call.sdk_contents,
                                                            config=call.config)
            except Exception as e:
                raise from_sdk_error(e, model=call.model, timeout_s=self.settings.timeout_s) from e
            self._record(resp, call.model)
            return Sent(resp, time.perf_counter() - t0)

        return self.guard.call(self._key(call.model), call.est_tokens, once, _prompt_tokens)

    async def _asend(self, call: Call) -> Sent:
        async def once() -> Sent:
            t0 = time.perf_counter()
            try:
                resp = await self._client.aio.models.generate_content(model=call.model, contents=call.sdk_contents,
                                                                      config=call.config)
            except Exception as e:
                raise from_sdk_error(e, model=call.model, timeout_s=self.settings.timeout_s) from e
            self._record(resp, call.model)
            return Sent(resp, time.perf_counter() - t0)

        return await self.guard.acall(self._key(call.model), call.est_tokens, once, _prompt_tokens)

    # ------------------------------------------------------------ public API

    def build(self, prompt: Any, **kw: Any) -> Call:
        return build_call(self.settings, prompt, **kw)

    def run_call(self, call: Call) -> Result:
        policy = answer_policy(call, output_ceiling=self.settings.output_ceiling,
                               reframe=self.settings.reframe_on_block)
        nxt = next(policy)
        while True:
            try:
                nxt = policy.send(self._send(nxt))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def arun_call(self, call: Call) -> Result:
        policy = answer_policy(call, output_ceiling=self.settings.output_ceiling,
                               reframe=self.settings.reframe_on_block)
        nxt = next(policy)
        while True:
            try:
                nxt = policy.send(await self._asend(nxt))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def generate(self, prompt: Any, *, schema: Any = None, system: str | None = None, model: str | None = None,
                 thinking: str | None = None, max_output_tokens: int | None = None,
                 temperature: float | None = None, safety_settings: list[Any] | None = None) -> Result:
        """One answer. With ``schema`` (a Pydantic model, typing annotation or JSON Schema dict)
        the answer is validated and ``Result.parsed`` holds the instance."""
        return self.run_call(self.build(prompt, schema=schema, system=system, model=model, thinking=thinking,
                                        max_output_tokens=max_output_tokens, temperature=temperature,
                                        safety_settings=safety_settings))

    async def agenerate(self, prompt: Any, *, schema: Any = None, system: str | None = None,
                        model: str | None = None, thinking: str | None = None,
                        max_output_tokens: int | None = None, temperature: float | None = None,
                        safety_settings: list[Any] | None = None) -> Result:
        return await self.arun_call(self.build(prompt, schema=schema, system=system, model=model,
                                               thinking=thinking, max_output_tokens=max_output_tokens,
                                               temperature=temperature, safety_settings=safety_settings))

    def stream(self, prompt: Any, *, system: str | None = None, model: str | None = None,
               thinking: str | None = None, max_output_tokens: int | None = None,
               temperature: float | None = None) -> TextStream:
        """Text chunks as they arrive; ``.result`` holds usage and cost once exhausted.
        Failures before the first chunk are retried; a stream cut mid-way raises TransportError."""
        call = self.build(prompt, system=system, model=model, thinking=thinking,
                          max_output_tokens=max_output_tokens, temperature=temperature)
        return TextStream(self, call)

    def astream(self, prompt: Any, *, system: str | None = None, model: str | None = None,
                thinking: str | None = None, max_output_tokens: int | None = None,
                temperature: float | None = None) -> AsyncTextStream:
        call = self.build(prompt, system=system, model=model, thinking=thinking,
                          max_output_tokens=max_output_tokens, temperature=temperature)
        return AsyncTextStream(self, call)

    def count_tokens(self, text: str, *, model: str | None = None) -> int:
        model_id = model or self.settings.model
        try:
            resp = self._client.models.count_tokens(model=model_id, contents=text)
        except Exception as e:
            raise from_sdk_error(e, model=model_id, timeout_s=self.settings.timeout_s) from e
        return int(resp.total_tokens or 0)

    def list_models(self) -> list[str]:
        """Model IDs the API lists for these credentials."""
        try:
            return [str(m.name).removeprefix("models/") for m in self._client.models.list()]
        except Exception as e:
            raise from_sdk_error(e, timeout_s=self.settings.timeout_s) from e

    def get_model(self, model: str | None = None) -> Any:
        model_id = model or self.settings.model
        try:
            return self._client.models.get(model=model_id)
        except Exception as e:
            raise from_sdk_error(e, model=model_id, timeout_s=self.settings.timeout_s) from e

    # The task methods (classify, extract, translate, summarize, run_task and async twins)
    # come from tasks.methods.TaskMethods so this module stays about calls.


def _prompt_tokens(sent: Sent) -> int | None:
    meta = getattr(sent.response, "usage_metadata", None)
    return getattr(meta, "prompt_token_count", None) if meta is not None else None


class _StreamState:
    def __init__(self, lane: Lane, call: Call) -> None:
        self.lane = lane
        self.call = call
        self.parts: list[str] = []
        self.last: Any = None
        self.t0 = time.perf_counter()
        self.result: Result | None = None

    def on_chunk(self, chunk: Any) -> str:
        self.last = chunk
        check_blocked(chunk, self.call.model)
        text = _answer_text(chunk)
        self.parts.append(text)
        return text

    def finish(self) -> Result:
        last = self.last
        text = "".join(self.parts)
        finish = None
        if last is not None and last.candidates:
            fr = last.candidates[0].finish_reason
            finish = str(getattr(fr, "name", fr)) if fr is not None else None
        usage = usage_from_response(last) if last is not None else Usage()
        if last is not None:
            self.lane._record(last, self.call.model)
        if not text:
            raise EmptyAnswer(f"the stream ended with no answer text (finishReason {finish or 'none'})",
                              hint="raise max_output_tokens if thinking used the cap, or retry",
                              finish_reason=finish, usage=usage, model=self.call.model)
        self.result = Result(text=text, usage=usage, cost_usd=cost_of(self.call.model, usage), finish_reason=finish,
                             model=self.call.model, model_version=getattr(last, "model_version", None),
                             latency_s=time.perf_counter() - self.t0, response_id=getattr(last, "response_id", None),
                             truncated=finish == "MAX_TOKENS")
        return self.result


def _mid_stream(e: Exception, call: Call, timeout_s: float) -> FlashlaneError:
    mapped = from_sdk_error(e, model=call.model, timeout_s=timeout_s)
    if isinstance(mapped, TransportError):
        mapped = TransportError("the stream was cut off mid-answer", hint="rerun; partial output was discarded",
                                model=call.model)
    return mapped


class TextStream:
    """Iterate for text chunks; ``result`` is set after the last one."""

    def __init__(self, lane: Lane, call: Call) -> None:
        self._state = _StreamState(lane, call)

    @property
    def result(self) -> Result | None:
        return self._state.result

    def __iter__(self) -> Iterator[str]:
        st = self._state
        lane, call = st.lane, st.call

        def open_stream() -> tuple[Any, Iterator[Any]]:
            try:
                it = iter(lane._client.models.generate_content_stream(model=call.model, contents=call.sdk_contents,
                                                                      config=call.config))
                first = next(it, None)
            except Exception as e:
                raise from_sdk_error(e, model=call.model, timeout_s=lane.settings.timeout_s) from e
            return first, it

        first, it = lane.guard.call(lane._key(call.model), call.est_tokens, open_stream,
                                    lambda fi: _prompt_tokens(Sent(fi[0], 0)) if fi[0] is not None else None)
        if first is not None:
            text = st.on_chunk(first)
            if text:
                yield text
        while True:
            try:
                chunk = next(it)
            except StopIteration:
                break
            except Exception as e:
                raise _mid_stream(e, call, lane.settings.timeout_s) from e
            text = st.on_chunk(chunk)
            if text:
                yield text
        st.finish()


class AsyncTextStream:
    def __init__(self, lane: Lane, call: Call) -> None:
        self._state = _StreamState(lane, call)

    @property
    def result(self) -> Result | None:
        return self._state.result

    async def __aiter__(self) -> AsyncIterator[str]:
        st = self._state
        lane, call = st.lane, st.call

        async def open_stream() -> tuple[Any, Any]:
            try:
                it = await lane._client.aio.models.generate_content_stream(model=call.model, contents=call.sdk_contents,
                                                                           config=call.config)
                first = await it.__anext__()
            except StopAsyncIteration:
                return None, None
            except Exception as e:
                raise from_sdk_error(e, model=call.model, timeout_s=lane.settings.timeout_s) from e
            return first, it

        first, it = await lane.guard.acall(lane._key(call.model), call.est_tokens, open_stream,
                                           lambda fi: _prompt_tokens(Sent(fi[0], 0)) if fi[0] is not None else None)
        if first is not None:
            text = st.on_chunk(first)
            if text:
                yield text
            while True:
                try:
                    chunk = await it.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as e:
                    raise _mid_stream(e, call, lane.settings.timeout_s) from e
                text = st.on_chunk(chunk)
                if text:
                    yield text
        st.finish()
