"""``Lane``: flashlane as users hold it. A façade over a private call path (``call.Client``)
with the methods users call: one answer (``generate``, ``stream``), the tasks
(``classify``, ``extract``, ...), and many items (``map``, ``map_frame``). The client's
plumbing (guard, transport, request building) stays behind it, so the public surface is
only what is below, and the layers import downward only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from .call.client import Client, Totals
from .call.guard import GuardStats
from .call.result import Result
from .call.stream import AsyncTextStream, TextStream
from .call.tools import DEFAULT_MAX_TOOL_ROUNDS
from .clock import Clock
from .config import Settings
from .eval import EvalReport, aevaluate
from .pipeline import MapResult, amap_items, map_frame, map_items, run_sync
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


class Lane:
    """A configured, safe Gemini client with flashlane's tasks and pipelines.

    ``Lane()`` reads settings from the environment and config file; keyword arguments
    override them (``Lane(model="gemini-2.5-flash-lite", timeout_s=10, limits="tier1")``);
    ``emulator=True`` runs against an in-process emulator. ``rate_limiter`` shares one
    ``limits.Limiter`` object between several Lanes in a process; ``clock`` replaces time (tests).
    """

    def __init__(self, settings: Settings | None = None, *, emulator: bool = False, clock: Clock | None = None,
                 rate_limiter: Any = None, **overrides: Any) -> None:
        self._client = Client(settings, emulator=emulator, clock=clock, rate_limiter=rate_limiter, **overrides)

    # ------------------------------------------------------------ what it is and what it spent

    @property
    def settings(self) -> Settings:
        return self._client.settings

    @property
    def totals(self) -> Totals:
        """Calls, tokens and dollars so far (all calls, retries included)."""
        return self._client.totals

    @property
    def stats(self) -> GuardStats:
        """Requests, 429s, retries and waits so far, as the guard counted them."""
        return self._client.guard.stats

    @property
    def clock(self) -> Clock:
        """The clock this Lane waits on (``clock=`` at construction; the system's by default)."""
        return self._client.clock

    @property
    def emulator_url(self) -> str | None:
        """The emulator's base URL when this Lane runs against one."""
        return self._client.emulator_url

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Lane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Lane:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------ one answer

    def generate(self, prompt: Any, *, schema: Any = None, system: str | None = None, model: str | None = None,
                 thinking: str | None = None, max_output_tokens: int | None = None,
                 temperature: float | None = None, safety_settings: list[Any] | None = None,
                 tools: list[Any] | None = None, tool_choice: str | list[str] | None = None,
                 run_tools: bool = False, max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS,
                 media_resolution: str | None = None) -> Result:
        """One answer. With ``schema`` (a Pydantic model, typing annotation or JSON Schema dict)
        the answer is validated and ``Result.parsed`` holds the instance. ``tools``: Python
        functions, Pydantic models, declarations and built-ins (``fl.GoogleSearch()``, ...);
        ``tool_choice``: auto | any | none | [allowed names]; ``run_tools=True`` runs the functions
        the model calls and sends their results back, up to ``max_tool_rounds`` rounds.
        ``media_resolution`` (low / medium / high): the tokens each image or PDF page of the
        prompt's files costs (docs/documents.md)."""
        return self._client.run_call(self._client.build(
            prompt, schema=schema, system=system, model=model, thinking=thinking, max_output_tokens=max_output_tokens,
            temperature=temperature, safety_settings=safety_settings, tools=tools, tool_choice=tool_choice,
            media_resolution=media_resolution),
            run_tools=run_tools, max_tool_rounds=max_tool_rounds)

    async def agenerate(self, prompt: Any, *, schema: Any = None, system: str | None = None,
                        model: str | None = None, thinking: str | None = None,
                        max_output_tokens: int | None = None, temperature: float | None = None,
                        safety_settings: list[Any] | None = None, tools: list[Any] | None = None,
                        tool_choice: str | list[str] | None = None, run_tools: bool = False,
                        max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS, media_resolution: str | None = None) -> Result:
        return await self._client.arun_call(self._client.build(
            prompt, schema=schema, system=system, model=model, thinking=thinking, max_output_tokens=max_output_tokens,
            temperature=temperature, safety_settings=safety_settings, tools=tools, tool_choice=tool_choice,
            media_resolution=media_resolution),
            run_tools=run_tools, max_tool_rounds=max_tool_rounds)

    def count_tokens(self, text: str, *, model: str | None = None) -> int:
        return self._client.count_tokens(text, model=model)

    def list_models(self) -> list[str]:
        """Model IDs the API lists for these credentials."""
        return self._client.list_models()

    def get_model(self, model: str | None = None) -> Any:
        return self._client.get_model(model)

    # ------------------------------------------------------------ streams

    def stream(self, prompt: Any, *, schema: Any = None, system: str | None = None, model: str | None = None,
               thinking: str | None = None, max_output_tokens: int | None = None,
               temperature: float | None = None, tools: list[Any] | None = None,
               tool_choice: str | list[str] | None = None, run_tools: bool = False,
               max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS, media_resolution: str | None = None) -> TextStream:
        """Text chunks as they arrive; ``.result`` holds usage and cost once exhausted (and, with
        ``schema``, the validated ``.parsed``: an answer that does not validate raises
        SchemaViolation at the end, since text already shown cannot be asked again).
        Failures before the first text are retried; a stream cut after it raises TransportError.
        ``tools``/``run_tools`` as for ``generate``: with the loop, only the final answer streams."""
        return TextStream(self._client, self._client.build(
            prompt, schema=schema, system=system, model=model, thinking=thinking, max_output_tokens=max_output_tokens,
            temperature=temperature, tools=tools, tool_choice=tool_choice, media_resolution=media_resolution),
            run_tools=run_tools, max_tool_rounds=max_tool_rounds)

    def astream(self, prompt: Any, *, schema: Any = None, system: str | None = None, model: str | None = None,
                thinking: str | None = None, max_output_tokens: int | None = None,
                temperature: float | None = None, tools: list[Any] | None = None,
                tool_choice: str | list[str] | None = None, run_tools: bool = False,
                max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS, media_resolution: str | None = None) -> AsyncTextStream:
        return AsyncTextStream(self._client, self._client.build(
            prompt, schema=schema, system=system, model=model, thinking=thinking, max_output_tokens=max_output_tokens,
            temperature=temperature, tools=tools, tool_choice=tool_choice, media_resolution=media_resolution),
            run_tools=run_tools, max_tool_rounds=max_tool_rounds)

    # ------------------------------------------------------------ tasks

    def classify(self, text: Any, labels: list[str] | str, *, multi_label: bool = False,
                 descriptions: Mapping[str, str] | None = None, **kw: Any) -> Classification:
        return run_task(self._client, CLASSIFY, text=text, labels=labels, multi_label=multi_label,  # type: ignore[no-any-return]
                        descriptions=descriptions, **kw)

    async def aclassify(self, text: Any, labels: list[str] | str, *, multi_label: bool = False,
                        descriptions: Mapping[str, str] | None = None, **kw: Any) -> Classification:
        return await arun_task(self._client, CLASSIFY, text=text, labels=labels,  # type: ignore[no-any-return]
                               multi_label=multi_label, descriptions=descriptions, **kw)

    def extract(self, text: Any, schema: Any, **kw: Any) -> Any:
        """Fields of ``schema`` from ``text``: a string, an ``fl.File`` (PDF, image, audio) or a
        ``pathlib.Path``, or a list mixing them with text."""
        return run_task(self._client, EXTRACT, text=text, schema=schema, **kw)

    async def aextract(self, text: Any, schema: Any, **kw: Any) -> Any:
        return await arun_task(self._client, EXTRACT, text=text, schema=schema, **kw)

    def translate(self, text: str, to: str, *, source: str | None = None, glossary: Mapping[str, str] | None = None,
                  formality: str | None = None, **kw: Any) -> Translation:
        return run_task(self._client, TRANSLATE, text=text, to=to, source=source,  # type: ignore[no-any-return]
                        glossary=glossary, formality=formality, **kw)

    async def atranslate(self, text: str, to: str, *, source: str | None = None,
                         glossary: Mapping[str, str] | None = None, formality: str | None = None,
                         **kw: Any) -> Translation:
        return await arun_task(self._client, TRANSLATE, text=text, to=to, source=source,  # type: ignore[no-any-return]
                               glossary=glossary, formality=formality, **kw)

    def summarize(self, text: str, *, max_words: int | None = None, style: str | None = None, **kw: Any) -> Summary:
        return run_task(self._client, SUMMARIZE, text=text, max_words=max_words, style=style, **kw)  # type: ignore[no-any-return]

    async def asummarize(self, text: str, *, max_words: int | None = None, style: str | None = None,
                         **kw: Any) -> Summary:
        return await arun_task(self._client, SUMMARIZE, text=text, max_words=max_words,  # type: ignore[no-any-return]
                               style=style, **kw)

    def run_task(self, task: Task | str, **values: Any) -> Any:
        return run_task(self._client, get_task(task), **values)

    async def arun_task(self, task: Task | str, **values: Any) -> Any:
        return await arun_task(self._client, get_task(task), **values)

    def stream_task(self, task: Task | str, **values: Any) -> Iterator[str]:
        return stream_task(self._client, get_task(task), **values)

    def astream_task(self, task: Task | str, **values: Any) -> AsyncIterator[str]:
        return astream_task(self._client, get_task(task), **values)

    # ------------------------------------------------------------ many items

    def map(self, task: Task | str, items: Any, **kw: Any) -> MapResult:
        """Run ``task`` over many items (strings or dicts of fields), packed and concurrent;
        results come back in input order, failures as values rather than exceptions.
        ``service_tier="flex"`` or ``"batch"`` serves them at half price (``tier=`` is its old name)."""
        return map_items(self._client, task, items, **kw)

    async def amap(self, task: Task | str, items: Any, **kw: Any) -> MapResult:
        return await amap_items(self._client, task, items, **kw)

    def map_frame(self, task: Task | str, frame: Any, **kw: Any) -> Any:
        """A pandas or polars DataFrame in, the same kind out, with result columns added (keywords as ``map``)."""
        return map_frame(self._client, task, frame, **kw)

    # ------------------------------------------------------------ choosing settings by measurement

    def evaluate(self, task: Task | str, rows: Any, *, truth: str | list[str], **kw: Any) -> EvalReport:
        """Run ``task`` on labelled ``rows`` once per configuration of a grid (``models``, ``thinking``,
        ``pack``, ``examples``, ``service_tier``, ``cache_prefix``, ``media_resolution``: lists) and
        score each against the ``truth`` column(s), with cost per 1,000 items, latency and failure
        rates; ``.table()``, ``.to_dict()``, ``.best`` (the recommendation). Needs ``pip install 'flashlane[eval]'``."""
        return run_sync(aevaluate(self._client, task, rows, truth=truth, **kw))

    async def aevaluate(self, task: Task | str, rows: Any, *, truth: str | list[str], **kw: Any) -> EvalReport:
        return await aevaluate(self._client, task, rows, truth=truth, **kw)
