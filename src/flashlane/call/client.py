"""``Client``: the call path. Every call runs guard (breaker → limiter → retry, one deadline)
→ ``transport.Transport`` (the SDK, inside the error boundary) → ``answer.Judge`` → usage and cost.

It knows nothing of tasks or pipelines: ``lane.Lane`` composes one and adds those on top.
Sync and async share everything but the send: the request is built by ``request.build_call``,
the answer judged by ``answer.Judge`` (re-asks, larger caps and tool rounds included), retries
and quotas handled by ``guard.Guard``; ``run_call`` and ``arun_call`` are the two small drivers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from google.genai import types

from .. import telemetry
from ..clock import SYSTEM_CLOCK, Clock
from ..config import DEFAULT_BREAKER_COOLDOWN_S, DEFAULT_BREAKER_THRESHOLD, Settings, load_settings
from ..errors import BudgetExceeded, Timeout
from ..limits import Limiter, make_limiter
from ..limits.config import quota_key
from ..models import Usage, cost_of
from .answer import Judge
from .breaker import Breaker
from .guard import Guard
from .request import Call, build_call
from .result import Result, usage_from_response
from .retry import RetryPolicy
from .service_tier import (
    FLEX,
    FLEX_DEADLINE_S,
    FLEX_TIMEOUT_S,
    PRIORITY,
    flex_config,
    priced_tier,
    raw_body,
    reads_served_tier,
    served_tier,
    tier_of,
    with_tier,
)
from .tools import DEFAULT_MAX_TOOL_ROUNDS, acall_functions, call_functions
from .transport import Transport, open_transport
from .uploads import Uploads

__all__ = ["Client", "Sent", "Totals"]


@dataclass
class Totals:
    """What this client has spent so far (all calls, retries included)."""

    calls: int = 0
    usage: Usage = Usage()
    cost_usd: float = 0.0  # of the calls whose price is known
    unpriced_calls: int = 0  # calls to a model whose price is unknown (not in cost_usd)


class Client:
    """A configured, safe Gemini client: the call path only (``flashlane.Lane`` is what users hold).

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
        if settings.service_tier == FLEX:  # answers within minutes, not seconds (service_tier.FLEX_TIMEOUT_S)
            settings = settings.with_(timeout_s=max(settings.timeout_s, FLEX_TIMEOUT_S),
                                      retry_deadline_s=max(settings.retry_deadline_s, FLEX_DEADLINE_S))
        self.settings = settings
        self.clock = clock or SYSTEM_CLOCK
        self._lock = threading.Lock()
        self.totals = Totals()
        self.transport: Transport = open_transport(settings, self.clock)
        self.uploads = Uploads(self.transport, self.clock, settings)  # media sent through the Files API
        self.guard = self._make_guard(rate_limiter)
        telemetry.setup_from_env()  # the OTEL_* variables, once per process (telemetry.py)
        # (gen_ai.provider.name, server.address, server.port) for this client's call spans
        self.peer = telemetry.peer(settings.backend, settings.base_url or self.transport.emulator_url,
                                   settings.vertex_location)

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
    def emulator_url(self) -> str | None:
        return self.transport.emulator_url

    @property
    def quota_key(self) -> str:
        return self.key_for(self.settings.model)

    def key_for(self, model: str, service_tier: str | None = None) -> str:
        """The limiter key of ``model`` on ``service_tier`` (``limits.config.quota_key``)."""
        return quota_key(self.settings.project, model, priority=service_tier == PRIORITY)

    def stop_sending(self, stop: bool = True) -> None:
        """A run's first Ctrl-C: calls waiting for quota or for a retry are not sent (``Stopped``);
        the ones already sent are answered and recorded."""
        self.guard.stopping = stop

    def close(self) -> None:
        try:
            self.uploads.close()
        finally:
            self.transport.close()

    async def aclose(self) -> None:
        try:
            self.uploads.close()
        finally:
            await self.transport.aclose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ totals and limits of one call

    def record(self, usage: Usage, model: str, service_tier: str) -> float | None:
        """Add one answer's usage and cost (at ``service_tier``'s price) to ``totals``; the cost."""
        with self._lock:
            self.totals.calls += 1
            self.totals.usage = self.totals.usage + usage
            cost = cost_of(model, usage, service_tier=service_tier)
            if cost is None:
                self.totals.unpriced_calls += 1
            else:
                self.totals.cost_usd += cost
        return cost

    def check_budget(self, call: Call) -> None:
        """Refuse a call that could take the client past ``budget_usd`` (at its full output cap)."""
        budget = self.settings.budget_usd
        if budget is None:
            return
        worst = cost_of(call.model, call.worst_usage(), service_tier=tier_of(call.config))
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

    def attempt_timeout(self, remaining_s: float, call: Call | None = None) -> float:
        if call is not None and tier_of(call.config) == FLEX:
            return min(max(self.settings.timeout_s, FLEX_TIMEOUT_S), remaining_s)
        return min(self.settings.timeout_s, remaining_s)

    def guarded(self, call: Call, attempt: Callable[[float], Any], *, start: float | None = None,
                obs: telemetry.CallSpan | None = None) -> Any:
        """Run ``attempt(remaining_s)`` under the guard for ``call`` (budget, breaker, limiter, retries);
        ``start``: when its deadline began, if earlier (a tool loop's rounds share one deadline);
        ``obs``: the call's span, told of each attempt, limiter wait and retry."""
        self._before(call, start)
        return self.guard.call(self.key_for(call.model, tier_of(call.config)), call.est_tokens, attempt, _prompt_tokens, start=start,
                               obs=obs)

    async def aguarded(self, call: Call, attempt: Callable[[float], Any], *, start: float | None = None,
                       obs: telemetry.CallSpan | None = None) -> Any:
        self._before(call, start)
        return await self.guard.acall(self.key_for(call.model, tier_of(call.config)), call.est_tokens, attempt, _prompt_tokens,
                                      start=start, obs=obs)

    def _span(self, tel: telemetry.Telemetry, call: Call, *, stream: bool = False) -> telemetry.CallSpan:
        """The span of one generate call (telemetry.py), or of one streamed request (``stream``,
        call/stream.py): what it asked for; the answer comes later."""
        return tel.call(call.model, self.peer, items=call.items, max_tokens=call.max_output_tokens,
                        json_output=call.schema is not None, requested_tier=tier_of(call.config),
                        contents=call.sdk_contents, system=call.config.system_instruction, stream=stream)

    def _before(self, call: Call, start: float | None) -> None:
        self.check_budget(call)
        deadline = self.guard.retry.deadline_s
        if start is not None and self.clock.monotonic() - start >= deadline:
            raise Timeout(f"the tool loop used its whole {deadline:g} s deadline before its next request",
                          hint="raise the retry deadline (retry_deadline_s), lower max_tool_rounds, or make "
                               "the functions faster", model=call.model)

    # ------------------------------------------------------------ one guarded generate call

    def _sent(self, call: Call, resp: Any, t0: float) -> Sent:
        """A flex answer carries its raw body (``should_return_http_response``): the tier that
        served it is read from there and the body parsed by the SDK's own parser (service_tier.py)."""
        served = None
        if reads_served_tier(call.config):
            body = getattr(getattr(resp, "sdk_http_response", None), "body", None)
            if body:
                data = _json_body(body)
                served = served_tier(data)
                headers = getattr(resp.sdk_http_response, "headers", None)
                resp = self.transport.parse_response(data, model=call.model)
                resp.sdk_http_response = types.HttpResponse(headers=headers)
        usage, tier = usage_from_response(resp), priced_tier(call.config, served)
        cost = self.record(usage, call.model, tier)
        return Sent(resp, time.perf_counter() - t0, served, usage, cost, tier)

    def _send_config(self, call: Call, remaining: float) -> types.GenerateContentConfig:
        config = self.attempt_config(call, remaining)
        return raw_body(config) if reads_served_tier(config) else config

    def send(self, call: Call, *, start: float | None = None) -> Sent:
        """One guarded request. Its large files are uploaded (or their uploads reused) first
        (uploads.Uploads); a file the server says is gone is uploaded again, and the request sent
        once more."""
        for last in (False, True):
            resolved = self.uploads.resolve(call)
            with self.uploads.sending(call, last=last):
                return self._send_once(resolved, start)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def asend(self, call: Call, *, start: float | None = None) -> Sent:
        for last in (False, True):
            resolved = await self.uploads.aresolve(call)
            with self.uploads.sending(call, last=last):
                return await self._asend_once(resolved, start)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send_once(self, call: Call, start: float | None) -> Sent:
        def attempt(remaining: float) -> Sent:
            t0 = time.perf_counter()
            resp = self.transport.generate(call.model, call.sdk_contents, self._send_config(call, remaining),
                                           self.attempt_timeout(remaining, call))
            return self._sent(call, resp, t0)

        if (tel := telemetry.current()) is None:  # the one check: telemetry off costs nothing more
            return self.guarded(call, attempt, start=start)  # type: ignore[no-any-return]
        with self._span(tel, call) as obs:
            sent: Sent = self.guarded(call, attempt, start=start, obs=obs)
            obs.answered(sent.response, sent.usage, sent.cost_usd, sent.tier)
            return sent

    async def _asend_once(self, call: Call, start: float | None) -> Sent:
        async def attempt(remaining: float) -> Sent:
            t0 = time.perf_counter()
            resp = await self.transport.agenerate(call.model, call.sdk_contents, self._send_config(call, remaining),
                                                  self.attempt_timeout(remaining, call))
            return self._sent(call, resp, t0)

        if (tel := telemetry.current()) is None:
            return await self.aguarded(call, attempt, start=start)  # type: ignore[no-any-return]
        with self._span(tel, call) as obs:
            sent: Sent = await self.aguarded(call, attempt, start=start, obs=obs)
            obs.answered(sent.response, sent.usage, sent.cost_usd, sent.tier)
            return sent

    # ------------------------------------------------------------ the drivers of the answer judge

    def judge(self, call: Call, *, run_tools: bool = False, max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
              **kw: Any) -> Judge:
        return Judge(call, output_ceiling=self.settings.output_ceiling, reframe=self.settings.reframe_on_block,
                     run_tools=run_tools, max_tool_rounds=max_tool_rounds, **kw)

    def run_call(self, call: Call, *, run_tools: bool = False,
                 max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> Result:
        judge = self.judge(call, run_tools=run_tools, max_tool_rounds=max_tool_rounds)
        start = self.clock.monotonic() if run_tools else None  # one deadline for every round, functions included
        step: Any = judge.call
        while not isinstance(step, Result):
            if isinstance(step, Call):
                sent = self.send(step, start=start)
                step = judge.verdict([sent.response], latency_s=sent.latency_s, served_tier=sent.service_tier)
            else:
                step = judge.ran(call_functions(step, _toolset(call)))
        return step

    async def arun_call(self, call: Call, *, run_tools: bool = False,
                        max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> Result:
        judge = self.judge(call, run_tools=run_tools, max_tool_rounds=max_tool_rounds)
        start = self.clock.monotonic() if run_tools else None
        step: Any = judge.call
        while not isinstance(step, Result):
            if isinstance(step, Call):
                sent = await self.asend(step, start=start)
                step = judge.verdict([sent.response], latency_s=sent.latency_s, served_tier=sent.service_tier)
            else:
                step = judge.ran(await acall_functions(step, _toolset(call)))
        return step

    # ------------------------------------------------------------ requests and the plain calls

    def build(self, prompt: Any, *, service_tier: str | None = None, **kw: Any) -> Call:
        """The request for ``prompt``; ``service_tier`` (default: the setting) flex or priority asks for
        that service (the batch service tier builds standard requests: the batch job sets the price)."""
        call = build_call(self.settings, prompt, **kw)
        wanted = service_tier or self.settings.service_tier
        if wanted in (FLEX, PRIORITY):
            call = replace(call, config=with_tier(call.config, wanted))
        return call

    def count_tokens(self, text: str, *, model: str | None = None) -> int:
        return self.transport.count_tokens(model or self.settings.model, text)

    def count_call(self, call: Call) -> int | None:
        """countTokens for a built request's contents (the system instruction and tools not
        included: the Gemini API's countTokens takes contents only), or None when they cannot be
        counted as they would be billed (``Call.counted_contents``)."""
        contents = call.counted_contents()
        return None if contents is None else self.transport.count_tokens(call.model, contents)

    def list_models(self) -> list[str]:
        """Model IDs the API lists for these credentials."""
        return self.transport.list_models()

    def get_model(self, model: str | None = None) -> Any:
        return self.transport.get_model(model or self.settings.model)


@dataclass(slots=True)
class Sent:
    """One SDK response with how long it took and the tier that served it (flex calls)."""

    response: Any
    latency_s: float
    service_tier: str | None = None  # usageMetadata.serviceTier when read (flex calls)
    usage: Usage = Usage()
    cost_usd: float | None = None  # None: the model's price is unknown
    tier: str = "standard"  # the tier it is priced at (service_tier.priced_tier)


def _toolset(call: Call) -> Any:
    assert call.toolset is not None  # the judge asks for tools only when the call has runnable ones
    return call.toolset


def _json_body(body: Any) -> dict[str, Any]:
    return dict(json.loads(body)) if isinstance(body, (str, bytes)) else dict(body)


def _prompt_tokens(sent: Any) -> int | None:
    response = getattr(sent, "response", None)
    meta = getattr(response, "usage_metadata", None)
    return getattr(meta, "prompt_token_count", None) if meta is not None else None
