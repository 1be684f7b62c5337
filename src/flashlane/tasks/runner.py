"""Running a task on one item: render, size the output budget, call, validate, convert.

Budgets: every task states the answer size it expects (``Task.answer_budget``, from its
options where the size varies); ``request.output_budget`` adds room for thinking (which
counts against ``max_output_tokens`` on Gemini 3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from ..call.client import Client
from ..call.request import Call, output_budget
from ..call.stream import AsyncTextStream, TextStream
from ..errors import ConfigError
from .provenance import Extraction, locate, wants_provenance
from .task import Task

__all__ = ["prepare", "run_task", "arun_task", "stream_task", "astream_task"]


def prepare(client: Client, task: Task, values: Mapping[str, Any], *,
            stream: bool = False) -> tuple[Call, dict[str, Any]]:
    options = task.options(values)
    if stream and not task.streamable:
        raise ConfigError(f"task '{task.name}' returns structured output and cannot stream",
                          hint="drop --stream; structured answers are validated as a whole")
    thinking = options.get("thinking") or client.settings.thinking or task.thinking
    model = options.get("model") or client.settings.model
    cap = options.get("max_output_tokens") or output_budget(model, thinking, task.answer_budget(options))
    schema = None if stream else task.schema(options)
    prefix = task.prefix(options)
    if prefix is None:
        prompt: Any = task.render(options)
        system = task.system or None
    else:  # reference material: system + example turns first, the item's turn last
        prompt, system = prefix.prompt(task.render_item(options)), prefix.system or None
    call = client.build(prompt, schema=schema, system=system, model=model,
                        thinking=thinking, max_output_tokens=cap, safety_settings=options.get("safety_settings"),
                        tools=list(task.tools) or None, media_resolution=options.get("media_resolution"))
    return call, options


def _finish(task: Task, result: Any, options: Mapping[str, Any]) -> Any:
    value = task.finish(result.parsed if task.structured else result.text, options)
    if wants_provenance(task.structured, options):
        return Extraction(value, locate(value, task.sources(options)))
    return value



def run_task(client: Client, task: Task, **values: Any) -> Any:
    call, options = prepare(client, task, values)
    return _finish(task, client.run_call(call), options)


async def arun_task(client: Client, task: Task, **values: Any) -> Any:
    call, options = prepare(client, task, values)
    return _finish(task, await client.arun_call(call), options)


def _free_text_call(client: Client, task: Task, values: Mapping[str, Any]) -> Call:
    # A streamed structured task (translate) asks for the bare text instead of JSON.
    call, _ = prepare(client, task, values, stream=True)
    return call


def stream_task(client: Client, task: Task, **values: Any) -> Iterator[str]:
    return iter(TextStream(client, _free_text_call(client, task, values)))


def astream_task(client: Client, task: Task, **values: Any) -> AsyncIterator[str]:
    return AsyncTextStream(client, _free_text_call(client, task, values)).__aiter__()
