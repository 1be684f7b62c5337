"""Batch job records in the run database: what makes a batch run crash-safe.

A job is recorded in three steps, each its own transaction:

1. the intent (``intend``): its display name (which carries the run id), the keys of its
   requests and the items each carries, written *before* ``batches.create``;
2. the name (``named``), written right after ``batches.create`` answers;
3. its end (``collected``), written in the same transaction as its results.

A process killed between 1 and 2 leaves an intent without a name: the next run looks the job
up by its display name (``batches.list``) before it submits anything again, so a job is never
created twice. Items of a job not yet collected are "in flight": they are not sent again.
Tables: ``batch_jobs``, ``batch_requests``, ``batch_items`` (run database migration 3).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...errors import InputError
from .items import IN_BATCH_JOBS, IN_LIVE_REQUESTS
from .repos import Repo

__all__ = ["JobRecord", "BatchJobs"]


@dataclass(frozen=True)
class JobRecord:
    id: int
    display_name: str
    name: str | None
    state: str | None
    mode: str
    file_name: str | None
    model: str
    n_requests: int
    n_items: int
    reserved_usd: float
    created: float
    stats: dict[str, int]
    collected: bool
    error: str | None

    @property
    def short_state(self) -> str:
        return (self.state or ("CREATING" if self.name is None else "PENDING")).removeprefix(
            "BATCH_STATE_").removeprefix("JOB_STATE_")


_COLS = ("id, display_name, name, state, mode, file_name, model, n_requests, n_items, reserved_usd, created, stats, "
         "collected, error")


def _record(row: Sequence[Any]) -> JobRecord:
    return JobRecord(int(row[0]), str(row[1]), row[2], row[3], str(row[4] or "inline"), row[5], str(row[6] or ""),
                     int(row[7] or 0), int(row[8] or 0), float(row[9] or 0.0), float(row[10] or 0.0),
                     json.loads(row[11]) if row[11] else {}, bool(row[12]), row[13])


class BatchJobs(Repo):
    """The batch tables of one run store."""

    def next_seq(self) -> int:
        """The number the next job will get (its display name carries it before it is recorded)."""
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM batch_jobs").fetchone()[0])

    def intend(self, *, display_name: str, mode: str, model: str, requests: Iterable[tuple[str, list[str]]],
               reserved_usd: float) -> int:
        """Record a job about to be created: its requests (key -> item ids), before ``create``."""
        now = self.store.now()
        with self.store.transaction():
            cur = self.db.execute(
                "INSERT INTO batch_jobs (display_name, mode, model, n_requests, n_items, reserved_usd, created, "
                "updated) VALUES (?, ?, ?, 0, 0, ?, ?, ?)", (display_name, mode, model, reserved_usd, now, now))
            jid = int(cur.lastrowid or 0)
            n_req = n_items = 0
            for key, ids in requests:
                self.db.execute("INSERT INTO batch_requests VALUES (?, ?, ?, NULL)", (jid, key, json.dumps(ids)))
                self.db.executemany("INSERT INTO batch_items VALUES (?, ?, ?)", [(i, jid, key) for i in ids])
                n_req += 1
                n_items += len(ids)
            self.db.execute("UPDATE batch_jobs SET n_requests=?, n_items=? WHERE id=?", (n_req, n_items, jid))
        return jid

    def set_file(self, jid: int, file_name: str) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE batch_jobs SET file_name=?, updated=? WHERE id=?", (file_name, self.store.now(), jid))

    def file_of(self, jid: int) -> str | None:
        row = self.db.execute("SELECT file_name FROM batch_jobs WHERE id=?", (jid,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def named(self, jid: int, name: str, state: str | None) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE batch_jobs SET name=?, state=?, updated=? WHERE id=?",
                            (name, state, self.store.now(), jid))

    def update(self, jid: int, state: str | None, stats: dict[str, int]) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE batch_jobs SET state=?, stats=?, updated=? WHERE id=?",
                            (state, json.dumps(stats), self.store.now(), jid))

    def forget(self, jid: int) -> None:
        """An intent whose job was never created (looked up and not found): its items are free."""
        with self.store.transaction():
            self.db.execute("DELETE FROM batch_items WHERE job_id=?", (jid,))
            self.db.execute("DELETE FROM batch_requests WHERE job_id=?", (jid,))
            self.db.execute("DELETE FROM batch_jobs WHERE id=?", (jid,))

    def mark_collected(self, jid: int, state: str | None, error: str | None = None) -> None:
        """Inside the caller's transaction (with the job's results)."""
        self.db.execute("UPDATE batch_jobs SET collected=1, state=COALESCE(?, state), error=?, updated=? WHERE id=?",
                        (state, error, self.store.now(), jid))

    def set_outcome(self, jid: int, key: str, outcome: str) -> None:
        """Inside the caller's transaction."""
        self.db.execute("UPDATE batch_requests SET outcome=? WHERE job_id=? AND key=?", (outcome, jid, key))

    # ------------------------------------------------------------------ reading

    def all(self) -> list[JobRecord]:
        return [_record(r) for r in self.db.execute(f"SELECT {_COLS} FROM batch_jobs ORDER BY id")]  # noqa: S608

    def active(self) -> list[JobRecord]:
        return [_record(r) for r in self.db.execute(
            f"SELECT {_COLS} FROM batch_jobs WHERE collected=0 ORDER BY id")]  # noqa: S608

    def done_keys(self, jid: int) -> set[str]:
        """Keys of the job's requests already recorded (by a run that stopped while collecting)."""
        return {str(k) for (k,) in self.db.execute(
            "SELECT key FROM batch_requests WHERE job_id=? AND outcome IS NOT NULL", (jid,))}

    def requests_of(self, jid: int) -> dict[str, list[str]]:
        return {k: json.loads(ids) for k, ids in self.db.execute(
            "SELECT key, item_ids FROM batch_requests WHERE job_id=?", (jid,))}

    def reserved_usd(self) -> float:
        """What the jobs not yet collected may still cost (reserved when they were submitted)."""
        row = self.db.execute("SELECT COALESCE(SUM(reserved_usd), 0) FROM batch_jobs WHERE collected=0").fetchone()
        return float(row[0])

    def times_sent(self, item_id: str) -> int:
        row = self.db.execute("SELECT COUNT(*) FROM batch_items WHERE item_id=?", (item_id,)).fetchone()
        return int(row[0])

    def free_pending(self, after: int, limit: int, max_sent: int | None = None) -> list[tuple[int, str, str, str | None]]:
        """Pending items not in flight (in a job not yet collected, or in a live request not yet
        answered) and, with ``max_sent``, sent in fewer jobs than that: (idx, item_id, hash, row)."""
        sent = ("" if max_sent is None else
                " AND (SELECT COUNT(*) FROM batch_items b2 WHERE b2.item_id=items.item_id) < ?")
        args: tuple[Any, ...] = (after, limit) if max_sent is None else (after, max_sent, limit)
        return self.db.execute(
            f"SELECT idx, item_id, hash, row FROM items WHERE idx > ? AND status='pending' AND item_id NOT IN "
            f"({IN_BATCH_JOBS}) AND item_id NOT IN ({IN_LIVE_REQUESTS}){sent} ORDER BY idx LIMIT ?", args).fetchall()

    def refuse_other_tier(self, service_tier: str) -> None:
        """A run with batch jobs in flight must collect them before another service tier sends those rows."""
        active = self.active()
        if active:
            raise InputError(f"this run has {len(active)} batch job(s) in flight; --service-tier {service_tier} would request "
                             "their rows again", hint="rerun with --service-tier batch to collect them, or "
                             "'flashlane batch cancel' them first")
