"""The task methods on ``Lane`` (a mixin, so client.py stays about calls)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from .classify import CLASSIFY, Classification
from .extract import EXTRACT
from .runner import arun_task, astream_task, run_task, stream_task
from .summarize import SUMMARIZE, Summary
from .task import Task
from .translate import TRANSLATE, Translation

__all__ = ["TaskMethods"]


class TaskMethods:
    def classify(self, text: str, labels: list[str] | str, *, multi_label: bool = False,
                 descriptions: Mapping[str, str] | None = None, **kw: Any) -> Classification:
        return run_task(self, CLASSIFY, text=text, labels=labels, multi_label=multi_label,  # type: ignore[arg-type]
                        descriptions=descriptions, **kw)

    async def aclassify(self, text: str, labels: list[str] | str, *, multi_label: bool = False,
                        descriptions: Mapping[str, str] | None = None, **kw: Any) -> Classification:
        return await arun_task(self, CLASSIFY, text=text, labels=labels,  # type: ignore[arg-type]
                               multi_label=multi_label, descriptions=descriptions, **kw)

    def extract(self, text: str, schema: Any, **kw: Any) -> Any:
        return run_task(self, EXTRACT, text=text, schema=schema, **kw)  # type: ignore[arg-type]

    async def aextract(self, text: str, schema: Any, **kw: Any) -> Any:
        return await arun_task(self, EXTRACT, text=text, schema=schema, **kw)  # type: ignore[arg-type]

    def translate(self, text: str, to: str, *, source: str | None = None, glossary: Mapping[str, str] | None = None,
                  formality: str | None = None, **kw: Any) -> Translation:
        return run_task(self, TRANSLATE, text=text, to=to, source=source, glossary=glossary,  # type: ignore[arg-type]
                        formality=formality, **kw)

    async def atranslate(self, text: str, to: str, *, source: str | None = None,
                         glossary: Mapping[str, str] | None = None, formality: str | None = None,
                         **kw: Any) -> Translation:
        return await arun_task(self, TRANSLATE, text=text, to=to, source=source,  # type: ignore[arg-type]
                               glossary=glossary, formality=formality, **kw)

    def summarize(self, text: str, *, max_words: int | None = None, style: str | None = None, **kw: Any) -> Summary:
        return run_task(self, SUMMARIZE, text=text, max_words=max_words, style=style, **kw)  # type: ignore[arg-type]

    async def asummarize(self, text: str, *, max_words: int | None = None, style: str | None = None,
                         **kw: Any) -> Summary:
        return await arun_task(self, SUMMARIZE, text=text, max_words=max_words, style=style,  # type: ignore[arg-type]
                               **kw)

    def run_task(self, task: Task | str, **values: Any) -> Any:
        from . import get_task

        return run_task(self, get_task(task), **values)  # type: ignore[arg-type]

    async def arun_task(self, task: Task | str, **values: Any) -> Any:
        from . import get_task

        return await arun_task(self, get_task(task), **values)  # type: ignore[arg-type]

    def stream_task(self, task: Task | str, **values: Any) -> Iterator[str]:
        from . import get_task

        return stream_task(self, get_task(task), **values)  # type: ignore[arg-type]

    def map(self, task: Task | str, items: Any, **kw: Any) -> Any:
        """Run ``task`` over many items (strings or dicts of fields), packed and concurrent;
        results come back in input order, failures as values rather than exceptions."""
        from ..pipeline import map_items

        return map_items(self, task, items, **kw)  # type: ignore[arg-type]

    async def amap(self, task: Task | str, items: Any, **kw: Any) -> Any:
        from ..pipeline import amap_items

        return await amap_items(self, task, items, **kw)  # type: ignore[arg-type]

    def map_frame(self, task: Task | str, frame: Any, **kw: Any) -> Any:
        """A pandas or polars DataFrame in, the same kind out, with result columns added."""
        from ..pipeline import map_frame

        return map_frame(self, task, frame, **kw)  # type: ignore[arg-type]

    def astream_task(self, task: Task | str, **values: Any) -> AsyncIterator[str]:
        from . import get_task

        return astream_task(self, get_task(task), **values)  # type: ignore[arg-type]
