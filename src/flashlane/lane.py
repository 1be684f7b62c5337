"""``Lane``: flashlane as users hold it. The call path (``client.Client``) composed with the
task methods (``lane.classify``, ``lane.extract``, ...) and the many-item methods
(``lane.map``, ``lane.map_frame``): a façade, so the client itself knows nothing of tasks
or pipelines and the layers import downward only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from .call.client import Client
from .call.stream import AsyncTextStream, TextStream
from .call.tools import DEFAULT_MAX_TOOL_ROUNDS
from .pipeline import MapResult, amap_items, map_frame, map_items
from .tasks import (
    CLASSIFY,
    EXTRACT,
    SUMMARIZE,
    TRANSLATE,
    Classification,
    Summary,
    Task,
    Translation,
    arun_task,
    astream_task,
    get_task,
    run_task,
    stream_task,
)

__all__ = ["Lane"]


class Lane(Client):
    """A configured, safe Gemini client with flashlane's tasks and pipelines.

    ``Lane()`` reads settings from the environment and config file; keyword arguments
    override them (``Lane(model="gemini-2.5-flash-lite", timeout_s=10, limits="tier1")``);
    ``emulator=True`` runs against an in-process emulator. ``rate_limiter`` shares one
    ``limits.Limiter`` object between several Lanes in a process.
    """

    # ------------------------------------------------------------ streams

    def stream(self, prompt: Any, *, system: str | None = None, model: str | None = None,
               thinking: str | None = None, max_output_tokens: int | None = None,
               temperature: float | None = None, tools: list[Any] | None = None,
               tool_choice: str | list[str] | None = None, run_tools: bool = False,
               max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> TextStream:
        """Text chunks as they arrive; ``.result`` holds usage and cost once exhausted.
        Failures before the first text are retried; a stream cut after it raises TransportError.
        ``tools``/``run_tools`` as for ``generate``: with the loop, only the final answer streams."""
        return TextStream(self, self.build(prompt, system=system, model=model, thinking=thinking,
                                           max_output_tokens=max_output_tokens, temperature=temperature,
                                           tools=tools, tool_choice=tool_choice),
                          run_tools=run_tools, max_tool_rounds=max_tool_rounds)

    def astream(self, prompt: Any, *, system: str | None = None, model: str | None = None,
                thinking: str | None = None, max_output_tokens: int | None = None,
                temperature: float | None = None, tools: list[Any] | None = None,
                tool_choice: str | list[str] | None = None, run_tools: bool = False,
                max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS) -> AsyncTextStream:
        return AsyncTextStream(self, self.build(prompt, system=system, model=model, thinking=thinking,
                                                max_output_tokens=max_output_tokens, temperature=temperature,
                                                tools=tools, tool_choice=tool_choice),
                               run_tools=run_tools, max_tool_rounds=max_tool_rounds)

    # ------------------------------------------------------------ tasks

    def classify(self, text: str, labels: list[str] | str, *, multi_label: bool = False,
                 descriptions: Mapping[str, str] | None = None, **kw: Any) -> Classification:
        return run_task(self, CLASSIFY, text=text, labels=labels, multi_label=multi_label,  # type: ignore[no-any-return]
                        descriptions=descriptions, **kw)

    async def aclassify(self, text: str, labels: list[str] | str, *, multi_label: bool = False,
                        descriptions: Mapping[str, str] | None = None, **kw: Any) -> Classification:
        return await arun_task(self, CLASSIFY, text=text, labels=labels,  # type: ignore[no-any-return]
                               multi_label=multi_label, descriptions=descriptions, **kw)

    def extract(self, text: str, schema: Any, **kw: Any) -> Any:
        return run_task(self, EXTRACT, text=text, schema=schema, **kw)

    async def aextract(self, text: str, schema: Any, **kw: Any) -> Any:
        return await arun_task(self, EXTRACT, text=text, schema=schema, **kw)

    def translate(self, text: str, to: str, *, source: str | None = None, glossary: Mapping[str, str] | None = None,
                  formality: str | None = None, **kw: Any) -> Translation:
        return run_task(self, TRANSLATE, text=text, to=to, source=source,  # type: ignore[no-any-return]
                        glossary=glossary, formality=formality, **kw)

    async def atranslate(self, text: str, to: str, *, source: str | None = None,
                         glossary: Mapping[str, str] | None = None, formality: str | None = None,
                         **kw: Any) -> Translation:
        return await arun_task(self, TRANSLATE, text=text, to=to, source=source,  # type: ignore[no-any-return]
                               glossary=glossary, formality=formality, **kw)

    def summarize(self, text: str, *, max_words: int | None = None, style: str | None = None, **kw: Any) -> Summary:
        return run_task(self, SUMMARIZE, text=text, max_words=max_words, style=style, **kw)  # type: ignore[no-any-return]

    async def asummarize(self, text: str, *, max_words: int | None = None, style: str | None = None,
                         **kw: Any) -> Summary:
        return await arun_task(self, SUMMARIZE, text=text, max_words=max_words,  # type: ignore[no-any-return]
                               style=style, **kw)

    def run_task(self, task: Task | str, **values: Any) -> Any:
        return run_task(self, get_task(task), **values)

    async def arun_task(self, task: Task | str, **values: Any) -> Any:
        return await arun_task(self, get_task(task), **values)

    def stream_task(self, task: Task | str, **values: Any) -> Iterator[str]:
        return stream_task(self, get_task(task), **values)

    def astream_task(self, task: Task | str, **values: Any) -> AsyncIterator[str]:
        return astream_task(self, get_task(task), **values)

    # ------------------------------------------------------------ many items

    def map(self, task: Task | str, items: Any, **kw: Any) -> MapResult:
        """Run ``task`` over many items (strings or dicts of fields), packed and concurrent;
        results come back in input order, failures as values rather than exceptions."""
        return map_items(self, task, items, **kw)

    async def amap(self, task: Task | str, items: Any, **kw: Any) -> MapResult:
        return await amap_items(self, task, items, **kw)

    def map_frame(self, task: Task | str, frame: Any, **kw: Any) -> Any:
        """A pandas or polars DataFrame in, the same kind out, with result columns added."""
        return map_frame(self, task, frame, **kw)
