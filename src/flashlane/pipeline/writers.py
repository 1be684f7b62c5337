"""Output files: JSONL, CSV or Parquet in input order, plus the failures file.

Records stream from the run store (``RunStore.items.iter_rows``) into a temporary sibling that
is fsynced and moved into place with ``os.replace``, so a crash leaves either the previous
file or the new one, never half of one, and memory does not grow with the rows. CSV and
Parquet need their columns (and Parquet their types) before the first row, so they read
the store twice. The run database, not the output, is the checkpoint: output is rewritten
from it. A temporary file left by a killed writer (``.NAME.*.tmp``) is removed by the next run.
The columns and how name clashes are resolved: docs/tasks.md ("Output keeps the input"); the
evidence columns of a task with built-in tools: docs/tools.md ("Grounded runs"); the provenance
columns of an extraction: docs/documents.md ("Where each value came from").
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from ..call.service_tier import STANDARD
from ..errors import InputError
from ..store.run import StoredRow
from ..tasks.provenance import Provenance

__all__ = ["OUTPUT_FORMATS", "atomic_file", "output_format", "flat_row", "write_output",
           "write_failures", "failures_path", "output_record", "remove_stale_temp", "require_writer",
           "INPUT_PREFIX", "RESULT_PREFIX", "EVIDENCE_KEYS", "PROVENANCE_KEYS", "InputNames", "arrow_table",
           "provenance_columns"]

OUTPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
FIXED_COLUMNS = ("id", "status", "reason", "error")
USAGE_COLUMNS = ("prompt_tokens", "output_tokens", "thoughts_tokens", "cost_usd", "cached", "service_tier")
# A grounded answer's evidence (settle.evidence), after the result: lists in JSONL, JSON text in CSV
# and Parquet. flashlane's own names in every run, so an input column named so is always input.NAME.
EVIDENCE_KEYS = ("sources", "citations", "search_queries")
# Where each extracted value was found (tasks/provenance.py), in runs that ask for it: the map of
# field path -> where, and the fields not found (to check by hand). JSON text in CSV and Parquet.
PROVENANCE_KEYS = ("provenance", "unverified")
RECORD_KEYS = (*FIXED_COLUMNS, "result", *EVIDENCE_KEYS, *PROVENANCE_KEYS, "usage", "cost_usd", "cached", "service_tier")
RESERVED = frozenset(RECORD_KEYS) | frozenset(USAGE_COLUMNS)
INPUT_PREFIX = "input."
RESULT_PREFIX = "result."
PARQUET_BATCH_ROWS = 10_000
WRITE_BUFFER = 1 << 20

Records = Callable[[], Iterable[dict[str, Any]]]  # called once per pass over the store


def output_format(path: str | Path) -> str:
    fmt = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the output format of {path} from its extension",
                         hint="name the output .jsonl, .csv or .parquet")
    return fmt


def require_writer(path: str | Path) -> None:
    """Refuse, before any request, an output this installation cannot write."""
    if output_format(path) == "parquet":
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise InputError("writing Parquet needs pyarrow", hint="pip install 'flashlane[parquet]', or name the "
                                                                   "output .jsonl or .csv") from None


def failures_path(output: str | Path) -> Path:
    return Path(f"{output}.failures.jsonl")


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


def remove_stale_temp(path: str | Path) -> list[Path]:
    """Temporary files a killed writer left beside ``path`` (the caller holds the run)."""
    target = Path(path)
    gone = []
    if target.parent.is_dir():
        for p in target.parent.glob(f"{_temp_prefix(target)}*.tmp"):
            with contextlib.suppress(OSError):
                p.unlink()
                gone.append(p)
    return gone


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file that appears at ``path`` whole (fsynced, renamed) or not at all."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs should look like any other file
        with os.fdopen(fd, "wb", buffering=WRITE_BUFFER) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename itself is durable only once the directory entry is on disk.
    with contextlib.suppress(OSError):
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------- records


class InputNames:
    """Output names of input columns: clashes with flashlane's own columns get ``input.``."""

    def __init__(self, id_column: str | None) -> None:
        self.id_column = id_column
        self._names: dict[str, str | None] = {}

    def __call__(self, column: str) -> str | None:
        name = self._names.get(column, "")
        if name == "":
            if column == "id" and self.id_column == "id":
                name = None  # the id column is the id
            elif column in RESERVED:
                name = INPUT_PREFIX + column
            else:
                name = column
            if len(self._names) < 100_000:
                self._names[column] = name
        return name


def provenance_columns(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """A record's ``PROVENANCE_KEYS`` (none when the run did not ask for provenance)."""
    if data is None:
        return {}
    return {"provenance": dict(data), "unverified": Provenance.from_dict(data).unverified}


def output_record(srow: StoredRow, inputs: InputNames | None) -> dict[str, Any]:
    """One output record (JSON-shaped: the result nested), input columns after the id."""
    r = srow.result
    rec: dict[str, Any] = {"id": r.item_id}
    if inputs is not None and srow.row:
        for k, v in srow.row.items():
            name = inputs(k)
            if name is not None:
                rec[name] = v
    rec.update({
        "status": r.status,
        "reason": r.reason,
        "error": r.error,
        "result": r.value,
        **({k: r.evidence.get(k, []) for k in EVIDENCE_KEYS} if r.evidence is not None else {}),
        **provenance_columns(r.provenance),
        "usage": {"prompt_tokens": r.usage.prompt_tokens, "output_tokens": r.usage.output_tokens,
                  "thoughts_tokens": r.usage.thoughts_tokens, "cached_tokens": r.usage.cached_tokens},
        "cost_usd": round(r.cost_usd, 10) if r.cost_usd is not None else None,  # None: price unknown
        "cached": r.cached,
        # The tier that served it: a request with no tier recorded went standard (store/run/requests.record, tier=).
        "service_tier": r.service_tier or (STANDARD if r.request_id is not None else None),
    })
    return rec


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = json.dumps(value, ensure_ascii=False)
    else:
        out[prefix] = value


def _scalar(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (dict, list, tuple)) else value


def flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record for tables: result fields as columns (nested ones dotted, lists as JSON);
    input columns (any key that is not one of flashlane's) kept, nested values as JSON."""
    out: dict[str, Any] = {"id": row["id"]}
    extra = [k for k in row if k not in RECORD_KEYS]
    for k in extra:
        out[k] = _scalar(row[k])
    for k in FIXED_COLUMNS[1:]:
        out[k] = row[k]
    fields: dict[str, Any] = {}
    value = row.get("result")
    if isinstance(value, Mapping):
        _flatten(value, "", fields)
    elif value is not None:
        fields["result"] = value if not isinstance(value, (list, tuple)) else json.dumps(value, ensure_ascii=False)
    for k, v in fields.items():
        clash = k in FIXED_COLUMNS or k in USAGE_COLUMNS or k in out or \
            (k in EVIDENCE_KEYS + PROVENANCE_KEYS and k in row)
        out[RESULT_PREFIX + k if clash else k] = v
    for k in EVIDENCE_KEYS + PROVENANCE_KEYS:
        if k in row:
            out[k] = json.dumps(row[k], ensure_ascii=False)
    out.update(row["usage"])
    out["cost_usd"] = row["cost_usd"]
    out["cached"] = row["cached"]
    out["service_tier"] = row.get("service_tier")
    return out


def _columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        if len(cols) < len(r) or any(k not in cols for k in r):
            cols.update(dict.fromkeys(r))
    usage = [c for c in cols if c in USAGE_COLUMNS]
    return [c for c in cols if c not in USAGE_COLUMNS] + usage


# ---------------------------------------------------------------------------- formats


def _write_jsonl(f: IO[bytes], rows: Iterable[Mapping[str, Any]]) -> None:
    buf: list[str] = []
    for r in rows:
        buf.append(json.dumps(r, ensure_ascii=False, default=str))
        if len(buf) >= 1000:
            f.write(("\n".join(buf) + "\n").encode("utf-8"))
            buf = []
    if buf:
        f.write(("\n".join(buf) + "\n").encode("utf-8"))


def _write_csv(f: IO[bytes], records: Records) -> None:
    columns = _columns(flat_row(r) for r in records())
    text = io.TextIOWrapper(f, encoding="utf-8", newline="", write_through=False)
    try:
        writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat_row(r) for r in records())
        text.flush()
    finally:
        text.detach()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "str"
    if isinstance(value, float):
        return "float"
    return "str" if isinstance(value, str) else "other"


def _arrow_type(pa: Any, kinds: set[str]) -> Any:
    if not kinds:
        return pa.null()
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()  # text, or mixed types in one column: kept as text


def _arrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise InputError("writing Parquet needs pyarrow", hint="pip install 'flashlane[parquet]'") from None
    return pa


class ArrowShape:
    """The Arrow schema of flat rows, learnt from them: a column per key (usage last), each typed
    by every value it holds (mixed kinds become text). One pass to learn, then ``batch`` per chunk."""

    def __init__(self, pa: Any, flat_rows: Iterable[Mapping[str, Any]]) -> None:
        kinds: dict[str, set[str]] = {}
        for r in flat_rows:
            for k, v in r.items():
                s = kinds.setdefault(k, set())
                if v is not None:
                    s.add(_kind(v))
        usage = [c for c in kinds if c in USAGE_COLUMNS]
        self.pa, self.cols = pa, [c for c in kinds if c not in USAGE_COLUMNS] + usage
        self.schema = pa.schema([(c, _arrow_type(pa, kinds[c])) for c in self.cols])
        self._as_text = {c for c in self.cols if self.schema.field(c).type == pa.string()}

    def batch(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        arrays = []
        for c in self.cols:
            values = [r.get(c) for r in rows]
            if c in self._as_text:
                values = [v if v is None or isinstance(v, str) else str(v) for v in values]
            arrays.append(self.pa.array(values, type=self.schema.field(c).type))
        return self.pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def arrow_table(records: Iterable[Mapping[str, Any]]) -> Any:
    """Output records (``output_record``) as one ``pyarrow.Table`` with the columns and types the
    Parquet output has (for an engine that takes tables, e.g. Ray Data's ``map_batches``)."""
    pa = _arrow()
    flat = [flat_row(r) for r in records]
    shape = ArrowShape(pa, flat)
    return pa.Table.from_batches([shape.batch(flat)], schema=shape.schema)


def _write_parquet(f: IO[bytes], records: Records) -> None:
    pa = _arrow()
    import pyarrow.parquet as pq

    shape = ArrowShape(pa, (flat_row(r) for r in records()))
    with pq.ParquetWriter(f, shape.schema) as writer:
        pending: list[dict[str, Any]] = []
        for r in records():
            pending.append(flat_row(r))
            if len(pending) >= PARQUET_BATCH_ROWS:
                writer.write_batch(shape.batch(pending))
                pending = []
        if pending or not shape.cols:
            writer.write_batch(shape.batch(pending))


def write_output(path: str | Path, records: Records | list[dict[str, Any]]) -> None:
    """Write ``records`` (a list, or a callable giving a fresh iterable per pass) to ``path``."""
    if isinstance(records, list):
        records = functools.partial(iter, records)  # a fresh pass over the list each time
    fmt = output_format(path)
    with atomic_file(path) as f:
        if fmt == "jsonl":
            _write_jsonl(f, records())
        elif fmt == "csv":
            _write_csv(f, records)
        else:
            _write_parquet(f, records)


def write_failures(output: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """The failures file: one ``{"id", "reason", "error"}`` line per failed row."""
    path = failures_path(output)
    with atomic_file(path) as f:
        _write_jsonl(f, ({"id": r["id"], "reason": r["reason"], "error": r["error"]}
                         for r in rows if r["status"] == "failed"))
    return path
