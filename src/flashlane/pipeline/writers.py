"""Output files: JSONL, CSV or Parquet in input order, plus the failures file.

Every file is written to a temporary sibling, fsynced and moved into place with
``os.replace``, so a crash leaves either the previous file or the new one, never half of
one. The run database, not the output, is the checkpoint: output is rewritten from it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .items import Item
from .store import StoredResult

__all__ = ["OUTPUT_FORMATS", "atomic_write", "output_format", "output_rows", "flat_row", "write_output",
           "write_failures", "failures_path"]

OUTPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
FIXED_COLUMNS = ("id", "status", "reason", "error")
USAGE_COLUMNS = ("prompt_tokens", "output_tokens", "thoughts_tokens", "cost_usd", "cached")


def output_format(path: str | Path) -> str:
    fmt = OUTPUT_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the output format of {path} from its extension",
                         hint="name the output .jsonl, .csv or .parquet")
    return fmt


def failures_path(output: str | Path) -> Path:
    return Path(f"{output}.failures.jsonl")


def atomic_write(path: str | Path, data: bytes) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs should look like any other file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
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


def output_rows(items: Sequence[Item], results: Mapping[str, StoredResult]) -> list[dict[str, Any]]:
    """One record per input row, in input order (JSON-shaped: the result nested)."""
    rows = []
    for it in sorted(items, key=lambda i: i.index):
        r = results.get(it.id) or StoredResult(it.id, "pending")
        rows.append({
            "id": it.id,
            "status": r.status,
            "reason": r.reason,
            "error": r.error,
            "result": r.value,
            "usage": {"prompt_tokens": r.usage.prompt_tokens, "output_tokens": r.usage.output_tokens,
                      "thoughts_tokens": r.usage.thoughts_tokens},
            "cost_usd": round(r.cost_usd, 10),
            "cached": r.cached,
        })
    return rows


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = json.dumps(value, ensure_ascii=False)
    else:
        out[prefix] = value


def flat_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record for tables: result fields as columns (nested ones dotted, lists as JSON)."""
    out: dict[str, Any] = {k: row[k] for k in FIXED_COLUMNS}
    fields: dict[str, Any] = {}
    value = row.get("result")
    if isinstance(value, Mapping):
        _flatten(value, "", fields)
    elif value is not None:
        fields["result"] = value if not isinstance(value, (list, tuple)) else json.dumps(value, ensure_ascii=False)
    for k, v in fields.items():
        out[f"result.{k}" if k in FIXED_COLUMNS or k in USAGE_COLUMNS else k] = v
    out.update(row["usage"])
    out["cost_usd"] = row["cost_usd"]
    out["cached"] = row["cached"]
    return out


def _columns(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    usage = [c for c in cols if c in USAGE_COLUMNS]
    return [c for c in cols if c not in USAGE_COLUMNS] + usage


def _jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=_columns(rows), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("writing Parquet needs pyarrow", hint="pip install 'flashlane[parquet]'") from None
    cols = _columns(rows)
    table = pa.table({c: _arrow_column(pa, [r.get(c) for r in rows]) for c in cols})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _arrow_column(pa: Any, values: list[Any]) -> Any:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one column: keep them as text
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def write_output(path: str | Path, rows: list[dict[str, Any]]) -> None:
    fmt = output_format(path)
    if fmt == "jsonl":
        atomic_write(path, _jsonl(rows))
    elif fmt == "csv":
        atomic_write(path, _csv([flat_row(r) for r in rows]))
    else:
        atomic_write(path, _parquet([flat_row(r) for r in rows]))


def write_failures(output: str | Path, rows: list[dict[str, Any]]) -> Path:
    path = failures_path(output)
    atomic_write(path, _jsonl({"id": r["id"], "reason": r["reason"], "error": r["error"]}
                              for r in rows if r["status"] == "failed"))
    return path
