"""The gateway's usage ledger: one SQLite file, a row per (token label, project, model).

The file and its SQL (schema, version, additive upserts) live in ``flashlane.store.gateway_ledger``.
``label`` is a tokens-file entry name or, with ``--pass-keys``, ``key-`` + a SHA-256 prefix of
the key: no token or key is ever written here. Requests are added up in memory and flushed
every ``FLUSH_EVERY_S`` (and on shutdown) as additive upserts, so the hot path never waits on
the disk and several gateway processes on one machine may share one ledger file. A killed
gateway loses at most the last interval's counts.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models import Usage, cost_of
from ..store.gateway_ledger import (
    COUNTERS,
    LEDGER_KIND,
    LedgerRow,
    LedgerTables,
    OwnerTables,
    ledger_kind,
    read_rows,
)

__all__ = ["FLUSH_EVERY_S", "LEDGER_KIND", "Ledger", "LedgerRow", "Owners", "format_ledger", "is_ledger", "read_ledger"]

FLUSH_EVERY_S = 1.0
OWNERS_KEPT = 100_000  # owners remembered in memory (~100 bytes each)


class Ledger:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._tables = LedgerTables(self.path)
        except sqlite3.DatabaseError as e:
            raise InputError(f"{self.path} is not a flashlane gateway ledger ({e})",
                             hint="pass another --ledger path") from None
        self._lock = threading.Lock()  # the pending counts (event loop vs flusher)
        self._pending: dict[tuple[str, str, str], LedgerRow] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flashlane-gateway-ledger", daemon=True)
        self._thread.start()

    def record(self, label: str, project: str, model: str, *, ok: bool, usage: Usage | None = None,
               cost: float | None = None,
               absorbed: int = 0, retries: int = 0, upstream_error: bool = False, refused: bool = False,
               limiter_wait_s: float = 0.0, now: float | None = None) -> None:
        """Count one request (called on the event loop: only a dict update under a lock)."""
        now = time.time() if now is None else now
        key = (label, project, model)
        with self._lock:
            row = self._pending.get(key)
            if row is None:
                row = self._pending[key] = LedgerRow(first_ts=now)
            row.requests += 1
            row.ok += ok
            if usage is not None:
                row.prompt_tokens += usage.prompt_tokens
                row.output_tokens += usage.output_tokens
                row.thoughts_tokens += usage.thoughts_tokens
                row.cached_tokens += usage.cached_tokens
                # A model without a known price adds nothing here (flashlane models shows it as unknown).
                row.cost_usd += (cost if cost is not None else cost_of(model, usage)) or 0.0
            row.rate_limited_absorbed += absorbed
            row.retries += retries
            row.upstream_errors += upstream_error
            row.refused += refused
            row.limiter_wait_s += limiter_wait_s
            row.last_ts = now

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_EVERY_S):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        self._tables.add(pending)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(FLUSH_EVERY_S * 5)
        self.flush()
        self._tables.close()


def is_ledger(path: str | Path) -> bool:
    """True if ``path`` is a gateway ledger (decided by its schema, not its name)."""
    return Path(path).is_file() and ledger_kind(path) == LEDGER_KIND


def read_ledger(path: str | Path) -> list[dict[str, Any]]:
    return read_rows(path)


def _total(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
    for r in rows:
        for c in COUNTERS:
            out[c] += r[c]
    return out


def format_ledger(path: str | Path) -> str:
    """The ``flashlane report`` text for a ledger: one line per (label, project, model), a total."""
    rows = read_ledger(path)
    head = (f"{'label':<20} {'project':<18} {'model':<28} {'requests':>8} {'ok':>7} {'input':>10} "
            f"{'output':>9} {'thinking':>9} {'cached':>8} {'cost $':>10} {'429s':>6} {'retries':>7} {'errors':>6}")
    lines = [f"gateway ledger {path}", head, "-" * len(head)]

    def line(label: str, project: str, model: str, r: dict[str, Any], cost: str) -> str:
        return (f"{label:<20} {project:<18} {model:<28} {r['requests']:>8,} {r['ok']:>7,} {r['prompt_tokens']:>10,} "
                f"{r['output_tokens']:>9,} {r['thoughts_tokens']:>9,} {r['cached_tokens']:>8,} "
                f"{cost:>10} {r['rate_limited_absorbed']:>6,} {r['retries']:>7,} "
                f"{r['upstream_errors'] + r['refused']:>6,}")

    unpriced = False
    for r in rows:
        # Tokens of a model without a known price were not priced: say so rather than show $0.
        known = r["model"] == "-" or cost_of(r["model"], Usage(1, 1)) is not None or not r["prompt_tokens"]
        unpriced |= not known
        lines.append(line(r["label"], r["project"], r["model"], r, f"{r['cost_usd']:.6f}" if known else "unknown"))
    if not rows:
        lines.append("(no requests recorded yet)")
    else:
        lines.append("-" * len(head))
        total = _total(rows)
        lines.append(line("total", "", "", total, ("≥ " if unpriced else "") + f"{total['cost_usd']:.6f}"))
    lines.append("429s = upstream rate limits absorbed (waited out, never seen by clients); "
                 "errors = upstream errors passed on + requests the gateway refused")
    return "\n".join(lines)


class Owners:
    """Which token project created each cache, file and batch job (``OwnerTables``, in the ledger's
    file, or in memory for a gateway without one). Owners never change, so each one found is kept
    in memory (up to ``OWNERS_KEPT``) and asked of the file only once."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._tables = OwnerTables(path)
        self._known: dict[str, str] = {}

    def claim(self, name: str, project: str, now: float) -> None:
        self._known[name] = project
        self._tables.claim(name, project, now)

    def owner(self, name: str) -> str | None:
        who = self._known.get(name)
        if who is None:
            who = self._tables.owner(name)
            if who is not None and len(self._known) < OWNERS_KEPT:
                self._known[name] = who
        return who

    def close(self) -> None:
        self._tables.close()
