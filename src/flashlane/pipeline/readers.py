"""Input files to rows: CSV, TSV, JSONL, a JSON array or Parquet, from a path or stdin.

``iter_rows`` streams ``dict`` rows in file order (CSV, TSV and JSONL line by line, Parquet
batch by batch; a JSON array is one document and is parsed whole, so big inputs belong in
JSONL), so a million-row file never sits in memory. Bad input is an ``InputError`` that
names where it went wrong (line, byte offset, column) and how to fix it, so a user never
sees a traceback for a typo in a data file; problems that do not stop the run (a CSV whose
last row looks cut off) go to ``warn`` as one line.

A .csv file's delimiter is sniffed (``csv.Sniffer``) among ``, ; tab |``: Excel writes
semicolons where the decimal mark is a comma (much of Europe), and tab-separated exports often
keep a .csv name. ``delimiter=`` forces one.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import InputError, unreadable

__all__ = ["FORMATS", "DEFAULT_ENCODING", "DELIMITERS", "DIR_PATH_COLUMN", "detect_format", "is_dir_input",
           "iter_rows", "input_digest"]

# A folder as input: one row per file, its path relative to the folder in this column (the id,
# and the file the item sends).
DIR_PATH_COLUMN = "path"
DEFAULT_GLOB = "*"

DEFAULT_ENCODING = "utf-8"
FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
_BY_SUFFIX = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
              ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
# csv's default limit (128 KiB) is smaller than a long document; rows are capped by the model's context later.
CSV_FIELD_LIMIT = 64 * 1024 * 1024
READ_CHUNK = 1 << 20
PARQUET_BATCH_ROWS = 10_000
SNIFF_BYTES = 8192  # how much of a text input is checked for binary content
BINARY_CONTROL_SHARE = 0.1  # more control bytes than this in the first block: not text
_TEXT_CONTROLS = {8, 9, 10, 12, 13, 27}
# The delimiters a .csv file is sniffed for, in csv.Sniffer's order of preference, and how they are named.
DELIMITERS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
_MAGIC = {b"PAR1": "a Parquet file", b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "a ZIP archive (xlsx?)",
          b"SQLite format 3\x00": "an SQLite database"}

Warn = Callable[[str], None]


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


def _open_binary(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")  # noqa: SIM115 - closed by the caller's generator
    except OSError as e:
        raise unreadable(path, e, what="input file", hint_dir="pass a CSV/JSONL/Parquet file") from None


def input_digest(path: str) -> str | None:
    """sha256 of a file's bytes (None for stdin, or a folder: its files are hashed as items are
    made, so a changed file still changes the run's fingerprint): an unchanged input needs no
    second reading."""
    if path == "-" or is_dir_input(path):
        return None
    h = hashlib.sha256()
    with _open_binary(path) as f:
        while chunk := f.read(READ_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _check_text(head: bytes, encoding: str, name: str) -> None:
    """Binary data is not text in the wrong encoding: say so, instead of an encoding hint."""
    if encoding.lower().replace("-", "").replace("_", "").startswith(("utf16", "utf32")):
        return  # NUL bytes are normal there
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise InputError(f"{name} is not text: it looks like {what}",
                             hint="pass a CSV/TSV/JSONL/JSON text file" + (
                                 " or --format parquet" if what.startswith("a Parquet") else ""))
    sample = head[:SNIFF_BYTES]
    nul = sample.find(b"\x00")
    controls = sum(1 for b in sample if b < 32 and b not in _TEXT_CONTROLS)
    if nul >= 0 or (sample and controls / len(sample) > BINARY_CONTROL_SHARE):
        where = f" (a NUL byte at offset {nul})" if nul >= 0 else ""
        raise InputError(f"{name} is not text: it holds binary data{where}",
                         hint="pass a CSV/TSV/JSONL/JSON text file (UTF-16 text needs --encoding utf-16)")


def _decode_error(path: str, encoding: str, name: str) -> InputError:
    """Where the first undecodable byte is (line, byte offset), found by decoding again."""
    hint = "pass the file's encoding, e.g. --encoding latin-1 or --encoding cp1252"
    if path == "-":
        return InputError(f"{name} is not valid {encoding}", hint=hint)
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(READ_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as e:
                pos = max(0, e.start - len(decoder.getstate()[0]))
                bad = offset + pos
                line = lines + chunk[:pos].count(b"\n") + 1
                return InputError(f"{name} is not valid {encoding}: byte 0x{chunk[pos]:02x} at line {line} "
                                  f"(byte offset {bad})", hint=hint)
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return InputError(f"{name} is not valid {encoding}", hint=hint)


class _Text:
    """The input as decoded lines, remembering the last one (did the file end with a newline?)."""

    def __init__(self, raw: IO[bytes], path: str, encoding: str, name: str, *, newline: str | None) -> None:
        self.path, self.encoding, self.name = path, encoding, name
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InputError(f"unknown encoding {encoding!r}", hint="use e.g. utf-8, latin-1, cp1252") from None
        self.raw = raw
        self.newline = newline
        self.last = ""

    def __iter__(self) -> Iterator[str]:
        text = io.TextIOWrapper(self.raw, encoding=self.encoding, newline=self.newline)
        first = True
        try:
            for line in text:
                if first:
                    line = line.removeprefix("\ufeff")  # a BOM from spreadsheet exports is not part of the header
                    first = False
                self.last = line
                yield line
        except UnicodeDecodeError:
            raise _decode_error(self.path, self.encoding, self.name) from None
        finally:
            with contextlib.suppress(ValueError):  # the file may be closed already
                text.detach()


def _empty(name: str) -> InputError:
    return InputError(f"{name} is empty (no rows)", hint="check that the right file was given")


def _delimiter(value: str) -> str:
    """A --delimiter value: one character, or its name (tab, \\t, comma, semicolon, pipe)."""
    d = _DELIMITER_NAMES.get(value.lower(), value)
    if len(d) != 1:
        raise InputError(f"--delimiter must be one character, not {value!r}", hint="e.g. --delimiter ';' or --delimiter tab")
    return d


def _sniff(head: bytes, encoding: str) -> str:
    """The delimiter of a CSV from its first block. Column names rarely hold a delimiter, so the
    header line decides when one candidate appears in it; when several do, csv.Sniffer picks
    among them by how consistently each splits the lines; when none does, a comma (one column)."""
    text = head.decode(encoding, errors="ignore").removeprefix("\ufeff")
    header = text.split("\n", 1)[0]
    present = [d for d in DELIMITERS if d in header]
    if len(present) <= 1:
        return present[0] if present else ","
    sample = text[: text.rfind("\n") + 1] or text  # whole lines only: a cut-off line skews the counts
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(present)).delimiter
    except csv.Error:
        return present[0]


def _rows_delimited(lines: _Text, delimiter: str, name: str, warn: Warn) -> Iterator[dict[str, Any]]:
    csv.field_size_limit(CSV_FIELD_LIMIT)
    # strict=True turns a stray quote into an error instead of silently merging rows.
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    kind = "TSV" if delimiter == "\t" else "CSV"
    n = 0
    short_last: tuple[int, int] | None = None
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise _empty(name)
        header = [h.strip() for h in header]
        dupes = [h for h, c in Counter(header).items() if c > 1]  # linear: inputs can have 100,000 columns
        if dupes:
            raise InputError(f"{name} has a repeated column name {min(dupes)!r}", hint="give each column a unique name")
        width = len(header)
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0]):
                continue  # blank line
            if len(fields) > width:
                raise InputError(
                    f"{name} line {reader.line_num}: {len(fields)} fields but the header has {width}",
                    hint=f"quote fields that contain the delimiter ({DELIMITERS.get(delimiter, repr(delimiter))}), "
                         "or fix the line")
            short_last = (reader.line_num, len(fields)) if len(fields) < width else None
            n += 1
            yield dict(zip(header, fields + [""] * (width - len(fields)), strict=True))
    except csv.Error as e:
        raise InputError(f"{name} line {reader.line_num}: malformed {kind} ({e})",
                         hint="check the quoting on that line (a field with a quote must be quoted and the "
                              "quote doubled)") from None
    if not n:
        raise _empty(name)
    if short_last is not None and not lines.last.endswith(("\n", "\r")):
        line, got = short_last
        warn(f"warning: {name} line {line}: the last row has {got} of {width} fields and the file does not end "
             f"with a newline; it looks cut off (the missing fields are sent empty)")


def _too_deep(where: str) -> InputError:
    return InputError(f"{where}: JSON nested too deeply to read", hint="flatten the data; rows must be JSON objects "
                                                                       "of at most a few hundred levels")


def _loads(text: str, where: str, hint: str, *, lines: bool) -> Any:
    """``json.loads``, or the InputError naming ``where`` (and the line, for a multi-line ``text``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        at = f"line {e.lineno} column {e.colno}" if lines else f"column {e.colno}"
        raise InputError(f"{where}: not valid JSON ({e.msg} at {at})", hint=hint) from None
    except ValueError:  # Python's guard against quadratic int parsing (sys.get_int_max_str_digits)
        raise InputError(f"{where}: a number longer than {sys.get_int_max_str_digits()} digits",
                         hint='write very long numbers as strings ("123...")') from None
    except RecursionError:
        raise _too_deep(where) from None
    if "\\ud" in text or "\\uD" in text:  # a surrogate escape: JSON allows half a pair, UTF-8 cannot hold it
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as e:
            raise InputError(f"{where}: a lone surrogate escape (\\u{ord(e.object[e.start]):04x}) is not text",
                             hint="write the character itself, or both halves of the pair "
                                  "(e.g. \\ud83d\\ude00)") from None
    return data


def _rows_jsonl(lines: _Text, name: str) -> Iterator[dict[str, Any]]:
    n = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        obj = _loads(line, f"{name} line {lineno}", "each line must hold one JSON object", lines=False)
        n += 1
        yield _as_row(obj, f"{name} line {lineno}")
    if not n:
        raise _empty(name)


def _rows_json(lines: _Text, name: str) -> Iterator[dict[str, Any]]:
    text = "".join(lines)  # one document: parsed whole (big inputs belong in JSONL)
    if not text.strip():
        raise _empty(name)
    data = _loads(text, name, "a .json input must hold one array of objects (use .jsonl for one per line)",
                  lines=True)
    del text
    if not isinstance(data, list):
        raise InputError(f"{name}: the JSON must be an array of objects", hint="wrap the rows in [ ... ]")
    if not data:
        raise _empty(name)
    for i, obj in enumerate(data):
        yield _as_row(obj, f"{name} item {i + 1}")


def _as_row(obj: Any, where: str) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    if isinstance(obj, str):
        return {"text": obj}  # a list of plain strings is a list of texts
    raise InputError(f"{where}: expected an object, got {type(obj).__name__}", hint="each row must be a JSON object")


def _rows_parquet(raw: IO[bytes], path: str, name: str) -> Iterator[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("reading Parquet needs pyarrow", hint="pip install 'flashlane[parquet]'") from None
    source: Any = io.BytesIO(raw.read()) if path == "-" else raw
    try:
        pf = pq.ParquetFile(source)
    except Exception as e:  # pyarrow raises ArrowInvalid and OSError variants
        if path != "-" and Path(path).stat().st_size == 0:
            raise _empty(name) from None
        raise InputError(f"{name} is not a readable Parquet file: {e}", hint="check the file or pass --format") from None
    n = 0
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        for row in batch.to_pylist():
            n += 1
            yield row
    if not n:
        raise _empty(name)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def is_dir_input(path: str) -> bool:
    return path != "-" and os.path.isdir(path)


def _rows_dir(path: str, pattern: str | None) -> Iterator[dict[str, Any]]:
    """One row per file under ``path`` (recursive), matching ``pattern`` (a glob on the file's
    path relative to the folder, "**/" allowed), in sorted order so a rerun sees the same rows.
    Hidden files and folders (".DS_Store", ".git/") are skipped: never documents."""
    root = Path(path)
    found = False
    for f in sorted(root.rglob(pattern or DEFAULT_GLOB)):
        rel = f.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not f.is_file():
            continue
        found = True
        yield {DIR_PATH_COLUMN: rel.as_posix()}
    if not found:
        raise InputError(f"no files in {path}" + (f" match --glob {pattern!r}" if pattern else ""),
                         hint="check the folder" + (" and the pattern, e.g. --glob '*.pdf'" if pattern else ""))


def iter_rows(path: str, *, fmt: str | None = None, encoding: str = DEFAULT_ENCODING,
              warn: Warn | None = None, delimiter: str | None = None,
              seen: dict[str, str] | None = None, glob: str | None = None) -> Iterator[dict[str, Any]]:
    """The rows of ``path`` ('-' for stdin) as dicts, in order, streamed. ``delimiter`` forces
    a CSV/TSV delimiter; ``seen`` receives the one used (``seen["delimiter"]``) and how it was
    chosen (``seen["how"]``), for hints about the columns. A folder gives one row per file
    (``glob`` filters them)."""
    if is_dir_input(path):
        yield from _rows_dir(path, glob)
        return
    if glob is not None:
        raise InputError(f"--glob filters the files of a folder; {path} is a file", hint="drop --glob")
    kind = detect_format(path, fmt)
    forced = _delimiter(delimiter) if delimiter else None
    name = "stdin" if path == "-" else path
    raw = _open_binary(path)
    try:
        if kind == "parquet":
            yield from _rows_parquet(raw, path, name)
            return
        buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type,type-var]
        head = buffered.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        if not head.strip():
            raise _empty(name)
        _check_text(head, encoding, name)
        lines = _Text(buffered, path, encoding, name, newline="" if kind in ("csv", "tsv") else None)
        if kind in ("csv", "tsv"):
            used = forced or ("\t" if kind == "tsv" else _sniff(head, encoding))
            if seen is not None:
                seen.update(delimiter=used, how="--delimiter" if forced else "by extension" if kind == "tsv"
                            else "detected")
            yield from _rows_delimited(lines, used, name, warn or _stderr)
        elif kind == "jsonl":
            yield from _rows_jsonl(lines, name)
        else:
            yield from _rows_json(lines, name)
    finally:
        if path != "-":
            raw.close()
