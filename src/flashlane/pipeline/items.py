"""Rows to work items: which text goes to the model, and the stable id each row keeps.

An item's id is what resume, output order and packing hang on, so it must not depend on
anything but the row: by default the 1-based row number plus a hash of the row's text
(``"17-3fa2c9e1b0"``), or the value of ``--id-column``.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..call.media import File, as_file, as_text, is_url
from ..errors import InputError
from ..tasks import Task

__all__ = ["Item", "ItemBuilder", "content_hash", "columns_of", "TEXT_FIELD", "COLUMN_SAMPLE_ROWS"]

TEXT_FIELD = "text"  # the field built-in task templates read
_HASH_CHARS = 10
COLUMN_SAMPLE_ROWS = 1000  # JSONL rows may differ; the first thousand are enough to list the columns


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


def columns_of(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Column names in first-seen order (JSONL rows may differ; callers pass a sample)."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _missing(what: str, name: str, columns: list[str]) -> InputError:
    return InputError(f"{what} {name!r} is not in the input; available columns: {', '.join(columns) or '(none)'}",
                      hint="pick one of the available columns")


def _cell(value: Any) -> str:
    value = as_text(value)  # fl.File / Path (or a list with them): the file's marker (call/media.py)
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from pandas/Parquet
        return ""
    if isinstance(value, (dict, list, tuple)):  # JSON input's nested values: the model reads JSON, not a repr
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


class ItemBuilder:
    """How one input row becomes an item: its text, its rendered prompt, its id. Checked once
    against the input's columns (``check``), then applied row by row (``build``), and again to
    rows read back from the run store (``restore``)."""

    def __init__(self, task: Task, *, column: str | None = None, template: str | None = None,
                 id_column: str | None = None, implicit_id: bool = False, media_column: str | None = None,
                 media_base: str | Path | None = None, pages: str | None = None) -> None:
        self.task = task
        self.column = column
        self.template = template
        # A column of file paths (--media-column; a folder's "path"): each row sends its file,
        # resolved against ``media_base`` (the folder, or the input file's folder) when relative.
        self.media_column = media_column or None
        self.media_base = Path(media_base) if media_base is not None else Path()
        self.pages = pages or None  # --pages: only these pages of each PDF in the media column
        # The files of the items made so far, held so their markers resolve when the request is
        # built (call/media.py keeps only weak references). Small: a path, a hash, a page count.
        self._files: dict[str, File] = {}
        self.id_column = id_column or None  # "" = number the rows
        self.implicit_id = implicit_id  # the id column was chosen for its name ("id"), not by --id-column

    def _which(self) -> str:
        return (f"column {self.id_column!r}, the id since it is named so" if self.implicit_id
                else f"--id-column {self.id_column}")

    def check(self, columns: list[str]) -> None:
        column, template, id_column, task = self.column, self.template, self.id_column, self.task
        present = set(columns)
        if column is not None and column not in present:
            raise _missing("column", column, columns)
        if self.media_column is not None and self.media_column not in present:
            raise _missing("--media-column", self.media_column, columns)
        if id_column is not None and id_column not in present:
            raise _missing("--id-column", id_column, columns)
        if template is not None:
            for f in _fields(template):
                if f not in present:
                    raise _missing("template field", f, columns)
        # Fields the task's own template needs beyond "text" (custom tasks read row columns directly).
        needs_text = TEXT_FIELD in task.item_fields
        if needs_text and column is None and template is None and self.media_column is None \
                and TEXT_FIELD not in present:
            raise InputError(f"no text to send: pass --column (or --template); available columns: {', '.join(columns)}",
                             hint=f"e.g. --column {columns[0]}")
        for f in task.item_fields:
            if f != TEXT_FIELD and f not in present and f not in task.defaults:
                raise _missing(f"task '{task.name}' field", f, columns)

    def _hold(self, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            for v in value:
                self._hold(v)
        elif (f := as_file(value)) is not None:
            self._files[f.marker_id] = f
        return value

    def _media(self, index: int, value: Any) -> File:
        if isinstance(value, File):
            return value
        path = _cell(value)
        if not path:
            raise InputError(f"row {index + 1} has no file in --media-column {self.media_column}",
                             hint="every row needs a file path in that column")
        return File(path if is_url(path) else self.media_base / path, pages=self.pages)  # a URL is fetched (call/media.py)

    def _values(self, row: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
        values: dict[str, Any] = {k: _cell(self._hold(v)) for k, v in row.items()}
        if self.media_column is not None:  # the file itself, as a marker the request builder expands
            values[self.media_column] = _cell(self._hold(self._media(index, row.get(self.media_column))))
        if self.template is not None:
            values[TEXT_FIELD] = self.template.format_map(values)
        elif self.column is not None:
            values[TEXT_FIELD] = _cell(row.get(self.column))
            if self.media_column is not None:
                values[TEXT_FIELD] = f"{values[self.media_column]}\n{values[TEXT_FIELD]}"
        elif self.media_column is not None:
            values[TEXT_FIELD] = values[self.media_column]
        return values

    def build(self, index: int, row: Mapping[str, Any]) -> Item:
        values = self._values(row, index)
        rendered = self.task.render_item(self.task.options(values))
        h = content_hash(rendered)
        if self.id_column is not None:
            item_id = _cell(row.get(self.id_column))
            if not item_id:
                raise InputError(f"row {index + 1} has an empty id ({self._which()})",
                                 hint="every row needs an id; --id-column '' numbers the rows instead")
        else:
            item_id = f"{index + 1}-{h[:_HASH_CHARS]}"
        return Item(index=index, id=item_id, values=values, rendered=rendered, hash=h)

    def restore(self, index: int, item_id: str, row: Mapping[str, Any]) -> Item:
        """An item from the run store: the same text and prompt as when it was read."""
        values = self._values(row, index)
        rendered = self.task.render_item(self.task.options(values))
        return Item(index=index, id=item_id, values=values, rendered=rendered, hash=content_hash(rendered))

    def duplicate(self, item_id: str, first: int, second: int) -> InputError:
        return InputError(f"rows {first + 1} and {second + 1} share the id {item_id!r} ({self._which()})",
                          hint="ids must be unique; pick another --id-column, or --id-column '' to number the rows")
