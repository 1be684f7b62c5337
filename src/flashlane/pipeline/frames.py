"""``map_frame``: run a task over a pandas or polars DataFrame column; the same kind of frame
comes back with the result columns added (result fields, ``status``, ``error``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..tasks import Task
from .api import map_items
from .job import jsonable
from .scheduler import DEFAULT_CONCURRENCY
from .writers import flat_row, provenance_columns

if TYPE_CHECKING:
    from ..call.client import Client as Lane

__all__ = ["map_frame"]

_SKIP = ("id", "reason", "prompt_tokens", "output_tokens", "thoughts_tokens", "cached")


def _kind(df: Any) -> str:
    mod = type(df).__module__.split(".")[0]
    if mod in ("pandas", "polars"):
        return mod
    raise InputError(f"map_frame takes a pandas or polars DataFrame, not {type(df).__name__}",
                     hint="use map_items for plain lists")


def map_frame(lane: Lane, task: Task | str, df: Any, *, column: str | None = None, template: str | None = None,
              pack: int | str | None = None, concurrency: int | None = DEFAULT_CONCURRENCY, suffix: str = "_result",
              **task_options: Any) -> Any:
    """Columns added: the task's result fields (nested ones dotted, lists as JSON text),
    ``status``, ``error`` and ``cost_usd``. A name already in the frame gets ``suffix``."""
    kind = _kind(df)
    rows = df.to_dicts() if kind == "polars" else df.to_dict("records")
    results = map_items(lane, task, rows, pack=pack, concurrency=concurrency, column=column, template=template,
                        **task_options)
    flat = []
    for r in results:
        row = {"id": r.id, "status": r.status, "reason": r.reason, "error": r.error, "result": jsonable(r.value),
               **provenance_columns(r.provenance.as_dict() if r.provenance is not None else None),
               "usage": r.usage.as_dict(), "cost_usd": r.cost_usd, "cached": r.cached}
        flat.append({k: v for k, v in flat_row(row).items() if k not in _SKIP})
    names: dict[str, None] = {}
    for f in flat:
        names.update(dict.fromkeys(f))
    existing = set(df.columns)
    columns = {(n + suffix if n in existing else n): [f.get(n) for f in flat] for n in names}
    if kind == "polars":
        import polars as pl

        return df.with_columns([pl.Series(name, values, strict=False) for name, values in columns.items()])
    out = df.copy()
    for name, values in columns.items():
        out[name] = values
    return out
