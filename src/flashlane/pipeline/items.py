"""Rows to work items: which text goes to the model, and the stable id each row keeps.

An item's id is what resume, output order and packing hang on, so it must not depend on
anything but the row: by default the 1-based row number plus a hash of the row's text
(``"17-3fa2c9e1b0"``), or the value of ``--id-column``.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from ..tasks import Task

__all__ = ["Item", "make_items", "content_hash", "TEXT_FIELD"]

TEXT_FIELD = "text"  # the field built-in task templates read
_HASH_CHARS = 10


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Item:
    index: int  # 0-based position in the input; output keeps this order
    id: str
    values: Mapping[str, Any] = field(repr=False)  # the fields the task's item template reads
    rendered: str = field(default="", repr=False)  # the item as the model sees it
    hash: str = ""

    @property
    def text(self) -> str:
        return str(self.values.get(TEXT_FIELD, self.rendered))


def _fields(template: str) -> list[str]:
    try:
        return [f for _, f, _, _ in string.Formatter().parse(template) if f]
    except ValueError as e:
        raise InputError(f"bad --template: {e}", hint="escape literal braces as {{ and }}") from None


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows[:1000]:  # JSONL rows may differ; the first thousand are enough to list them
        seen.update(dict.fromkeys(row))
    return list(seen)


def _missing(what: str, name: str, columns: list[str]) -> InputError:
    return InputError(f"{what} {name!r} is not in the input; available columns: {', '.join(columns) or '(none)'}",
                      hint="pick one of the available columns")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from pandas/Parquet
        return ""
    return str(value)


def make_items(source: Iterable[Mapping[str, Any]], task: Task, *, column: str | None = None,
               template: str | None = None, id_column: str | None = None) -> list[Item]:
    rows = [dict(r) for r in source]
    if not rows:
        return []
    columns = _columns(rows)
    if column is not None and column not in columns:
        raise _missing("column", column, columns)
    if id_column is not None and id_column not in columns:
        raise _missing("--id-column", id_column, columns)
    if template is not None:
        for f in _fields(template):
            if f not in columns:
                raise _missing("template field", f, columns)
    # Fields the task's own template needs beyond "text" (custom tasks read row columns directly).
    needs_text = TEXT_FIELD in task.item_fields
    if needs_text and column is None and template is None and TEXT_FIELD not in columns:
        raise InputError(f"no text to send: pass --column (or --template); available columns: {', '.join(columns)}",
                         hint=f"e.g. --column {columns[0]}")
    for f in task.item_fields:
        if f != TEXT_FIELD and f not in columns and f not in task.defaults:
            raise _missing(f"task '{task.name}' field", f, columns)

    items: list[Item] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        values: dict[str, Any] = {k: _cell(v) for k, v in row.items()}
        if template is not None:
            values[TEXT_FIELD] = template.format_map({k: _cell(v) for k, v in row.items()})
        elif column is not None:
            values[TEXT_FIELD] = _cell(row.get(column))
        rendered = task.render_item(task.options(values))
        h = content_hash(rendered)
        if id_column is not None:
            item_id = _cell(row.get(id_column))
            if not item_id:
                raise InputError(f"row {i + 1} has an empty --id-column {id_column!r}", hint="every row needs an id")
        else:
            item_id = f"{i + 1}-{h[:_HASH_CHARS]}"
        if item_id in seen:
            raise InputError(f"rows {seen[item_id] + 1} and {i + 1} share the id {item_id!r} (--id-column {id_column})",
                             hint="ids must be unique; pick another --id-column or drop it to use row numbers")
        seen[item_id] = i
        items.append(Item(index=i, id=item_id, values=values, rendered=rendered, hash=h))
    return items
