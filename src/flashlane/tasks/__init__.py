"""Built-in tasks (classify, extract, translate, summarize) and custom ones."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .classify import CLASSIFY, Classification
from .custom import load_task_file
from .extract import EXTRACT
from .option import Option, load_schema
from .provenance import Extraction, Provenance
from .runner import arun_task, astream_task, prepare, run_task, stream_task
from .summarize import SUMMARIZE, Summary
from .task import Task
from .translate import TRANSLATE, Translation

__all__ = [
    "BUILTIN_TASKS", "CLASSIFY", "Classification", "EXTRACT", "Extraction", "Option", "Provenance", "SUMMARIZE", "Summary", "TRANSLATE", "Task",
    "Translation", "arun_task", "astream_task", "get_task", "load_schema", "load_task_file", "prepare",
    "run_task", "stream_task",
]

BUILTIN_TASKS = {t.name: t for t in (CLASSIFY, EXTRACT, TRANSLATE, SUMMARIZE)}


def get_task(name_or_path: str | Task) -> Task:
    if isinstance(name_or_path, Task):
        return name_or_path
    if name_or_path in BUILTIN_TASKS:
        return BUILTIN_TASKS[name_or_path]
    p = Path(name_or_path)
    if p.suffix.lower() in (".toml", ".yaml", ".yml") or p.is_file():
        return load_task_file(p)
    raise InputError(f"unknown task {name_or_path!r}",
                     hint=f"use one of {', '.join(BUILTIN_TASKS)} or a .toml/.yaml task file")
