"""The tool loop: answer, run the functions the model called, send their results back, repeat.

``tool_loop`` is a generator like ``answer.judge`` (which it runs for every round, so a round's
answer is judged as any answer is): it yields a ``Call`` to send (receiving the ``Sent``) or a
list of ``ToolCall`` to run (receiving them back with their results). ``Client.run_call`` and
``arun_call`` drive it, each send guarded (limiter, retries) and all rounds under one deadline.

A round ends the loop unless every call in it names a function flashlane can run: a call to a
Pydantic model or a raw declaration is the answer itself (the structured-result pattern of
ws 04's ``final_result``). After ``max_rounds`` rounds of functions, a model that still calls is
``ToolLoopExceeded``, carrying every call so far; so a loop sends at most ``max_rounds + 1`` answers.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import replace
from typing import Any

from ..errors import ToolLoopExceeded
from ..models import Usage, cost_of
from .answer import Sent, judge
from .request import Call
from .result import Result
from .tools import ToolCall, has_runnable, model_turn, responses_turn

__all__ = ["Step", "tool_loop"]

Step = Call | list[ToolCall]


def tool_loop(call: Call, *, output_ceiling: int, reframe: bool, max_rounds: int) -> Generator[Step, Any, Result]:
    done: list[ToolCall] = []
    usage = Usage()
    latency = 0.0
    attempts = 0
    current = call
    for round_ in range(max_rounds + 1):
        sub: Generator[Call, Sent, Result] = judge(current, output_ceiling=output_ceiling, reframe=reframe)
        result = yield from sub
        usage = usage + result.usage
        latency += result.latency_s
        attempts += result.attempts
        calls = [replace(c, round=round_ + 1) for c in result.tool_calls]
        if not has_runnable(calls, call.toolset):
            result.tool_calls = done + calls
            result.tool_rounds = round_
            result.usage, result.latency_s, result.attempts = usage, latency, attempts
            result.cost_usd = cost_of(call.model, usage)
            return result
        if round_ == max_rounds:
            names = ", ".join(dict.fromkeys(c.name for c in calls))
            raise ToolLoopExceeded(
                f"the model still called functions ({names}) after max_tool_rounds={max_rounds} rounds",
                hint="raise max_tool_rounds, or make the functions' results answer the question",
                calls=done + calls, rounds=max_rounds, usage=usage, model=call.model)
        ran: list[ToolCall] = yield calls
        done.extend(ran)
        # The model's turn goes back as the SDK parsed it, so its thought signature is echoed as received.
        current = current.with_turns(model_turn([result.raw]), responses_turn(ran))
    raise AssertionError("unreachable")  # the loop returns or raises in its last round
