"""Input files to rows: CSV, TSV, JSONL, a JSON array or Parquet, from a path or stdin.

Every reader returns ``list[dict[str, Any]]`` in file order. Bad input is an ``InputError``
that names where it went wrong (line, byte offset, column) and how to fix it, so a user
never sees a traceback for a typo in a data file. Files are read whole: the pipeline needs
every row's id up front to fingerprint the run and to resume it.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["FORMATS", "DEFAULT_ENCODING", "detect_format", "read_rows"]

DEFAULT_ENCODING = "utf-8"
FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
_BY_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
# csv's default limit (128 KiB) is smaller than a long document; rows are capped by the model's context later.
CSV_FIELD_LIMIT = 64 * 1024 * 1024


def detect_format(path: str, explicit: str | None = None) -> str:
    if explicit:
        fmt = explicit.lower()
        if fmt not in FORMATS:
            raise InputError(f"unknown input format {explicit!r}", hint=f"use one of {', '.join(FORMATS)}")
        return fmt
    if path == "-":
        raise InputError("reading stdin needs --format", hint=f"pass --format {'|'.join(FORMATS)}")
    found = _BY_SUFFIX.get(Path(path).suffix.lower())
    if found is None:
        raise InputError(f"cannot tell the format of {path} from its extension",
                         hint=f"pass --format {'|'.join(FORMATS)}")
    return found


def _read_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"input file {path} does not exist", hint="check the path") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a directory, not an input file", hint="pass a CSV/JSONL/Parquet file") from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}", hint="check the file's permissions") from None


def _decode(data: bytes, encoding: str, name: str) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(
            f"{name} is not valid {encoding}: byte 0x{data[e.start]:02x} at line {line} (byte offset {e.start})",
            hint="pass the file's encoding, e.g. --encoding latin-1 or --encoding cp1252") from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}", hint="use e.g. utf-8, latin-1, cp1252") from None
    return text.removeprefix("\ufeff")  # a BOM from spreadsheet exports is not part of the first header


def _empty(name: str) -> InputError:
    return InputError(f"{name} is empty (no rows)", hint="check that the right file was given")


def _read_delimited(text: str, delimiter: str, name: str) -> list[dict[str, Any]]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    # strict=True turns a stray quote into an error instead of silently merging rows.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise _empty(name)
        header = [h.strip() for h in header]
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise InputError(f"{name} has a repeated column name {dupes[0]!r}", hint="give each column a unique name")
        rows: list[dict[str, Any]] = []
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0]):
                continue  # blank line
            if len(fields) > len(header):
                raise InputError(
                    f"{name} line {reader.line_num}: {len(fields)} fields but the header has {len(header)}",
                    hint="quote fields that contain the delimiter, or fix the line")
            rows.append(dict(zip(header, fields + [""] * (len(header) - len(fields)), strict=True)))
    except csv.Error as e:
        raise InputError(f"{name} line {reader.line_num}: malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({e})",
                         hint="check the quoting on that line (a field with a quote must be quoted and the "
                              "quote doubled)") from None
    if not rows:
        raise _empty(name)
    return rows


def _read_jsonl(text: str, name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"{name} line {n}: not valid JSON ({e.msg} at column {e.colno})",
                             hint="each line must hold one JSON object") from None
        rows.append(_as_row(obj, f"{name} line {n}"))
    if not rows:
        raise _empty(name)
    return rows


def _read_json(text: str, name: str) -> list[dict[str, Any]]:
    if not text.strip():
        raise _empty(name)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{name}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})",
                         hint="a .json input must hold one array of objects (use .jsonl for one per line)") from None
    if not isinstance(data, list):
        raise InputError(f"{name}: the JSON must be an array of objects", hint="wrap the rows in [ ... ]")
    if not data:
        raise _empty(name)
    return [_as_row(obj, f"{name} item {i + 1}") for i, obj in enumerate(data)]


def _as_row(obj: Any, where: str) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, str):
        return {"text": obj}  # a list of plain strings is a list of texts
    raise InputError(f"{where}: expected an object, got {type(obj).__name__}", hint="each row must be a JSON object")


def _read_parquet(data: bytes, name: str) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow", hint="pip install 'flashlane[parquet]'") from None
    if not data:
        raise _empty(name)
    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as e:  # pyarrow raises ArrowInvalid and OSError variants
        raise InputError(f"{name} is not a readable Parquet file: {e}", hint="check the file or pass --format") from None
    rows = table.to_pylist()
    if not rows:
        raise _empty(name)
    return rows


def read_rows(path: str, *, fmt: str | None = None, encoding: str = DEFAULT_ENCODING) -> list[dict[str, Any]]:
    """All rows of ``path`` ('-' for stdin) as dicts, in order."""
    kind = detect_format(path, fmt)
    name = "stdin" if path == "-" else path
    data = _read_bytes(path)
    if kind == "parquet":
        return _read_parquet(data, name)
    if not data.strip():
        raise _empty(name)
    text = _decode(data, encoding, name)
    if kind == "csv":
        return _read_delimited(text, ",", name)
    if kind == "tsv":
        return _read_delimited(text, "\t", name)
    if kind == "jsonl":
        return _read_jsonl(text, name)
    return _read_json(text, name)
