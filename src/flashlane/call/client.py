"""``Client``: the call path. Every call runs guard (breaker → limiter → retry, one deadline)
→ SDK inside ``sdk.boundary`` → answer judging → usage and cost.

It knows nothing of tasks or pipelines: ``lane.Lane`` adds those on top. Sync and async
share everything but the send: the request is built by ``request.build_call``, the answer
judged by ``answer.judge``, retries and quotas handled by ``guard.Guard``, streams read by
``stream.TextStream``. Only this module and ``stream`` touch the SDK's call methods, and each
touch is inside ``boundary``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from google import genai
from google.genai import types

from ..clock import SYSTEM_CLOCK, Clock
from ..config import (
    DEFAULT_BREAKER_COOLDOWN_S,
    DEFAULT_BREAKER_THRESHOLD,
    EMULATOR_API_KEY,
    Settings,
    load_settings,
)
from ..emulator import Emulator, EmulatorConfig
from ..errors import BudgetExceeded, ConfigError, Timeout
from ..limits import Limiter, make_limiter
from ..models import Usage, cost_of
from .answer import Sent, judge
from .boundary import boundary
from .breaker import Breaker
from .guard import Guard
from .request import Call, build_call
from .result import Result, usage_from_response
from .retry import RetryPolicy
from .service_tier import (
    FLEX,
    FLEX_DEADLINE_S,
    FLEX_TIMEOUT_S,
    STANDARD,
    flex_config,
    parse_raw_response,
    raw_body,
    tier_of,
    with_tier,
)
from .toolloop import tool_loop
from .tools import DEFAULT_MAX_TOOL_ROUNDS, acall_functions, call_functions

__all__ = ["Client", "Totals"]


@dataclass
class Totals:
    """What this client has spent so far (all calls, retries included)."""

    calls: int = 0
    usage: Usage = Usage()
    cost_usd: float = 0.0  # of the calls whose price is known
    unpriced_calls: int = 0  # calls to a model whose price is unknown (not in cost_usd)


class Client:
    """A configured, safe Gemini client (the call path only; ``flashlane.Lane`` is what users hold).

    ``Client()`` reads settings from the environment and config file; keyword arguments
    override them (``model="gemini-2.5-flash-lite", timeout_s=10, limits="tier1"``);
    ``emulator=True`` runs against an in-process emulator. ``rate_limiter`` shares one
    ``limits.Limiter`` between several clients in a process; ``clock`` replaces time (tests).
    """

    def __init__(self, settings: Settings | None = None, *, emulator: bool = False, clock: Clock | None = None,
                 rate_limiter: Limiter | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = load_settings(emulator=emulator, **overrides)
        else:
            settings = settings.with_(**overrides)
            if emulator:
                settings = settings.with_(backend="emulator")
        settings.require_credentials()
        if settings.tier == FLEX:  # answers within minutes, not seconds (tier.FLEX_TIMEOUT_S)
            settings = settings.with_(timeout_s=max(settings.timeout_s, FLEX_TIMEOUT_S),
                                      retry_deadline_s=max(settings.retry_deadline_s, FLEX_DEADLINE_S))
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
        with boundary():
            if s.backend == "emulator":
                if not s.base_url:
                    emu = self._stack.enter_context(
                        Emulator(EmulatorConfig(latency_scale=s.emulator_latency_scale)).running())
                    self.emulator_url = emu.base_url
                else:
                    self.emulator_url = s.base_url
                http.base_url = self.emulator_url
                return genai.Client(api_key=s.api_key or EMULATOR_API_KEY, http_options=http)
            if s.base_url:
                http.base_url = s.base_url
            if s.backend == "vertex":
                if s.api_key and not s.vertex_project:
                    return genai.Client(vertexai=True, api_key=s.api_key, http_options=http)
                return genai.Client(vertexai=True, project=s.vertex_project, location=s.vertex_location,
                                    http_options=http)
            return genai.Client(api_key=s.api_key, http_options=http)

    def _make_guard(self, limiter: Limiter | None) -> Guard:
        s = self.settings
        if limiter is None:
            limiter = make_limiter(s.limits, s.limiter, path=s.limiter_path, redis_url=s.redis_url,
                                   clock=self.clock, model=s.model)
        retry = RetryPolicy(max_attempts=s.max_attempts, deadline_s=s.retry_deadline_s)
        breaker = Breaker(self.clock, threshold=DEFAULT_BREAKER_THRESHOLD, cooldown_s=DEFAULT_BREAKER_COOLDOWN_S,
                          mode=s.on_outage)
        return Guard(limiter, retry, self.clock, breaker=breaker)

    @property
    def quota_key(self) -> str:
        return f"{self.settings.project}:{self.settings.model}"

    def key_for(self, model: str) -> str:
        """The limiter key of ``model``: quotas are per Google Cloud project and model."""
        return f"{self.settings.project}:{model}"

    @property
    def sdk(self) -> genai.Client:
        """The underlying google-genai client, for calls flashlane does not wrap."""
        return self._client

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()
        self._stack.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._client.aio.aclose()
        self.close()

    # ------------------------------------------------------------ one guarded SDK call

    def record(self, response: Any, model: str, tier: str = STANDARD) -> None:
        """Add one answer's usage and cost (at ``tier``'s price) to ``totals``."""
        usage = usage_from_response(response)
        with self._lock:
            self.totals.calls += 1
            self.totals.usage = self.totals.usage + usage
            cost = cost_of(model, usage, tier=tier)
            if cost is None:
                self.totals.unpriced_calls += 1
            else:
                self.totals.cost_usd += cost

    def check_budget(self, call: Call) -> None:
        """Refuse a call that could take the client past ``budget_usd`` (at its full output cap)."""
        budget = self.settings.budget_usd
        if budget is None:
            return
        worst = cost_of(call.model, Usage(prompt_tokens=call.est_tokens, output_tokens=call.max_output_tokens),
                        tier=tier_of(call.config))
        if worst is None:
            raise BudgetExceeded(f"budget_usd is set but {call.model}'s price is unknown, so it cannot be enforced",
                                 hint="unset budget_usd, or use a model whose price is in the catalog "
                                      "('flashlane models')", model=call.model)
        if self.totals.cost_usd + worst > budget:
            raise BudgetExceeded(
                f"the next call could cost up to ${worst:.6f}; ${self.totals.cost_usd:.6f} of the "
                f"${budget:g} budget is spent", hint="raise budget_usd (FLASHLANE_BUDGET_USD) or start a new Lane",
                model=call.model)

    def attempt_config(self, call: Call, remaining_s: float) -> types.GenerateContentConfig:
        """The call's config, its HTTP timeout cut to what is left of the deadline."""
        if tier_of(call.config) == FLEX:
            return flex_config(call.config, self.attempt_timeout(remaining_s, call))
        if remaining_s >= self.settings.timeout_s:
            return call.config
        return call.config.model_copy(update={"http_options": types.HttpOptions(timeout=int(remaining_s * 1000))})

    def send_config(self, call: Call, remaining_s: float) -> types.GenerateContentConfig:
        """``attempt_config``, plus the raw body for flex calls (to read ``serviceTier``; tier.py)."""
        config = self.attempt_config(call, remaining_s)
        return raw_body(config) if tier_of(config) == FLEX else config

    def attempt_timeout(self, remaining_s: float, call: Call | None = None) -> float:
        if call is not None and tier_of(call.config) == FLEX:
            return min(max(self.settings.timeout_s, FLEX_TIMEOUT_S), remaining_s)
        return min(self.settings.timeout_s, remaining_s)

    def guarded(self, call: Call, attempt: Callable[[float], Any], *, start: float | None = None) -> Any:
        """Run ``attempt(remaining_s)`` under the guard for ``call`` (budget, breaker, limiter, retries);
        ``start``: when its deadline began, if earlier (a tool loop's rounds share one deadline)."""
        self.check_budget(call)
        if start is not None:
            self.check_deadline(call, start)
        return self.guard.call(self.key_for(call.model), call.est_tokens, attempt, _prompt_tokens, start=start)

    async def aguarded(self, call: Call, attempt: Callable[[float], Any], *, start: float | None = None) -> Any:
        self.check_budget(call)
        if start is not None:
            self.check_deadline(call, start)
        return await self.guard.acall(self.key_for(call.model), call.est_tokens, attempt, _prompt_tokens,
                                      start=start)

    def check_deadline(self, call: Call, start: float) -> None:
        """A tool loop's next request would start after the call's deadline: stop here."""
        deadline = self.guard.retry.deadline_s
        if self.clock.monotonic() - start >= deadline:
            raise Timeout(f"the tool loop used its whole {deadline:g} s deadline before its next request",
                          hint="raise the retry deadline (retry_deadline_s), lower max_tool_rounds, or make "
                               "the functions faster", model=call.model)

    def send(self, call: Call, *, start: float | None = None) -> Sent:
        flex = tier_of(call.config) == FLEX

        def attempt(remaining: float) -> Sent:
            t0 = time.perf_counter()
            served = None
            with boundary(model=call.model, timeout_s=self.attempt_timeout(remaining, call)):
                resp = self._client.models.generate_content(model=call.model, contents=call.sdk_contents,
                                                            config=self.send_config(call, remaining))
                if flex:
                    resp, served = parse_raw_response(resp)
            self.record(resp, call.model, served or (FLEX if flex else STANDARD))
            return Sent(resp, time.perf_counter() - t0, served)

        return self.guarded(call, attempt, start=start)  # type: ignore[no-any-return]

    async def asend(self, call: Call, *, start: float | None = None) -> Sent:
        flex = tier_of(call.config) == FLEX

        async def attempt(remaining: float) -> Sent:
            t0 = time.perf_counter()
            served = None
            with boundary(model=call.model, timeout_s=self.attempt_timeout(remaining, call)):
                resp = await self._client.aio.models.generate_content(model=call.model, contents=call.sdk_contents,
                                                                      config=self.send_config(call, remaining))
                if flex:
                    resp, served = parse_raw_response(resp)
            self.record(resp, call.model, served or (FLEX if flex else STANDARD))
            return Sent(resp, time.perf_counter() - t0, served)

        return await self.aguarded(call, attempt, start=start)  # type: ignore[no-any-return]

    # ------------------------------------------------------------ public API

    def build(self, prompt: Any, *, tier: str | None = None, **kw: Any) -> Call:
        """The request for ``prompt``; ``tier`` (default: the ``tier`` setting) flex asks for flex
        service (a batch tier builds standard requests: the batch job sets the price)."""
        call = build_call(self.settings, prompt, **kw)
        wanted = tier or self.settings.tier
        if wanted == FLEX:
            call = replace(call, config=with_tier(call.config, FLEX))
        return call

    def run_call(self, call: Call, *, run_tools: bool = False,
                 max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> Result:
        if run_tools:
            return self._run_loop(call, max_tool_rounds)
        verdicts = judge(call, output_ceiling=self.settings.output_ceiling, reframe=self.settings.reframe_on_block)
        nxt = next(verdicts)
        while True:
            try:
                nxt = verdicts.send(self.send(nxt))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def arun_call(self, call: Call, *, run_tools: bool = False,
                        max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> Result:
        if run_tools:
            return await self._arun_loop(call, max_tool_rounds)
        verdicts = judge(call, output_ceiling=self.settings.output_ceiling, reframe=self.settings.reframe_on_block)
        nxt = next(verdicts)
        while True:
            try:
                nxt = verdicts.send(await self.asend(nxt))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _loop(self, call: Call, max_tool_rounds: int) -> Any:
        if call.toolset is None or not call.toolset.runnable:
            raise ConfigError("run_tools=True needs at least one Python function in tools",
                              hint="pass the functions to run, e.g. tools=[get_weather]")
        if max_tool_rounds < 1:
            raise ConfigError(f"max_tool_rounds must be at least 1, not {max_tool_rounds}",
                              hint="e.g. max_tool_rounds=5")
        return tool_loop(call, output_ceiling=self.settings.output_ceiling, reframe=self.settings.reframe_on_block,
                         max_rounds=max_tool_rounds)

    def _run_loop(self, call: Call, max_tool_rounds: int) -> Result:
        steps = self._loop(call, max_tool_rounds)
        toolset = call.toolset
        assert toolset is not None  # checked by _loop
        start = self.clock.monotonic()  # one deadline for every round, functions included
        nxt = next(steps)
        while True:
            try:
                if isinstance(nxt, Call):
                    nxt = steps.send(self.send(nxt, start=start))
                else:
                    nxt = steps.send(call_functions(nxt, toolset))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def _arun_loop(self, call: Call, max_tool_rounds: int) -> Result:
        steps = self._loop(call, max_tool_rounds)
        toolset = call.toolset
        assert toolset is not None  # checked by _loop
        start = self.clock.monotonic()
        nxt = next(steps)
        while True:
            try:
                if isinstance(nxt, Call):
                    nxt = steps.send(await self.asend(nxt, start=start))
                else:
                    nxt = steps.send(await acall_functions(nxt, toolset))
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def generate(self, prompt: Any, *, schema: Any = None, system: str | None = None, model: str | None = None,
                 thinking: str | None = None, max_output_tokens: int | None = None,
                 temperature: float | None = None, safety_settings: list[Any] | None = None,
                 tools: list[Any] | None = None, tool_choice: str | list[str] | None = None,
                 run_tools: bool = False, max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> Result:
        """One answer. With ``schema`` (a Pydantic model, typing annotation or JSON Schema dict)
        the answer is validated and ``Result.parsed`` holds the instance. ``tools``: Python
        functions, Pydantic models, declarations and built-ins (``fl.GoogleSearch()``, ...);
        ``tool_choice``: auto | any | none | [allowed names]; ``run_tools=True`` runs the functions
        the model calls and sends their results back, up to ``max_tool_rounds`` rounds."""
        return self.run_call(self.build(prompt, schema=schema, system=system, model=model, thinking=thinking,
                                        max_output_tokens=max_output_tokens, temperature=temperature,
                                        safety_settings=safety_settings, tools=tools, tool_choice=tool_choice),
                             run_tools=run_tools, max_tool_rounds=max_tool_rounds)

    async def agenerate(self, prompt: Any, *, schema: Any = None, system: str | None = None,
                        model: str | None = None, thinking: str | None = None,
                        max_output_tokens: int | None = None, temperature: float | None = None,
                        safety_settings: list[Any] | None = None, tools: list[Any] | None = None,
                        tool_choice: str | list[str] | None = None, run_tools: bool = False,
                        max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> Result:
        return await self.arun_call(self.build(prompt, schema=schema, system=system, model=model,
                                               thinking=thinking, max_output_tokens=max_output_tokens,
                                               temperature=temperature, safety_settings=safety_settings,
                                               tools=tools, tool_choice=tool_choice),
                                    run_tools=run_tools, max_tool_rounds=max_tool_rounds)

    def count_tokens(self, text: str, *, model: str | None = None) -> int:
        model_id = model or self.settings.model
        with boundary(model=model_id, timeout_s=self.settings.timeout_s):
            resp = self._client.models.count_tokens(model=model_id, contents=text)
        return int(resp.total_tokens or 0)

    def list_models(self) -> list[str]:
        """Model IDs the API lists for these credentials."""
        with boundary(timeout_s=self.settings.timeout_s):
            return [str(m.name).removeprefix("models/") for m in self._client.models.list()]

    def get_model(self, model: str | None = None) -> Any:
        model_id = model or self.settings.model
        with boundary(model=model_id, timeout_s=self.settings.timeout_s):
            return self._client.models.get(model=model_id)


def _prompt_tokens(sent: Any) -> int | None:
    response = getattr(sent, "response", None)
    meta = getattr(response, "usage_metadata", None)
    return getattr(meta, "prompt_token_count", None) if meta is not None else None
