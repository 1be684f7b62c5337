"""Running a task on one item: render, size the output budget, call, validate, convert.

Budgets: every task states the answer size it expects; ``request.output_budget`` adds room
for thinking (which counts against ``max_output_tokens`` on Gemini 3). Translations and
summaries are sized from their input and word limit instead of a constant.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..models import estimate_tokens
from ..request import Call, output_budget
from .summarize import DEFAULT_SUMMARY_WORDS
from .task import Task

if TYPE_CHECKING:
    from ..client import Lane

__all__ = ["answer_tokens", "prepare", "run_task", "arun_task", "stream_task", "astream_task"]

TOKENS_PER_WORD = 1.4  # English averages ~1.3; a little headroom
TRANSLATION_GROWTH = 2  # target languages can take twice the source's tokens
MIN_ANSWER_TOKENS = 48
JSON_OVERHEAD_TOKENS = 24


def answer_tokens(task: Task, options: Mapping[str, Any]) -> int:
    text = str(options.get("text", ""))
    if task.name == "translate":
        base = estimate_tokens(text) * TRANSLATION_GROWTH + JSON_OVERHEAD_TOKENS
    elif task.name == "summarize":
        base = int(int(options.get("max_words") or DEFAULT_SUMMARY_WORDS) * TOKENS_PER_WORD)
    else:
        base = task.answer_tokens
    return max(base, MIN_ANSWER_TOKENS)


def prepare(lane: Lane, task: Task, values: Mapping[str, Any], *, stream: bool = False) -> tuple[Call, dict[str, Any]]:
    options = task.options(values)
    if stream and not task.streamable:
        raise ConfigError(f"task '{task.name}' returns structured output and cannot stream",
                          hint="drop --stream; structured answers are validated as a whole")
    thinking = options.get("thinking") or lane.settings.thinking or task.thinking
    model = options.get("model") or lane.settings.model
    cap = options.get("max_output_tokens") or output_budget(model, thinking, answer_tokens(task, options))
    schema = None if stream else task.schema(options)
    call = lane.build(task.render(options), schema=schema, system=task.system or None, model=model,
                      thinking=thinking, max_output_tokens=cap, safety_settings=options.get("safety_settings"))
    return call, options


def _finish(task: Task, result: Any, options: Mapping[str, Any]) -> Any:
    value = result.parsed if task.structured else result.text
    return task.finish(value, options)


def run_task(lane: Lane, task: Task, **values: Any) -> Any:
    call, options = prepare(lane, task, values)
    return _finish(task, lane.run_call(call), options)


async def arun_task(lane: Lane, task: Task, **values: Any) -> Any:
    call, options = prepare(lane, task, values)
    return _finish(task, await lane.arun_call(call), options)


def _free_text_call(lane: Lane, task: Task, values: Mapping[str, Any]) -> Call:
    # A streamed structured task (translate) asks for the bare text instead of JSON.
    call, _ = prepare(lane, task, values, stream=True)
    return call


def stream_task(lane: Lane, task: Task, **values: Any) -> Iterator[str]:
    from ..client import TextStream

    return iter(TextStream(lane, _free_text_call(lane, task, values)))


def astream_task(lane: Lane, task: Task, **values: Any) -> AsyncIterator[str]:
    from ..client import AsyncTextStream

    return AsyncTextStream(lane, _free_text_call(lane, task, values)).__aiter__()
