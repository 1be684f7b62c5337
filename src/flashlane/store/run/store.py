"""``RunStore``: one run database, opened, migrated, and its repositories on one connection.

The repositories, one per concern: ``metadata`` (the run's facts), ``items`` (rows in, results
out), ``sessions`` (one per invocation), ``requests`` (the request ledger and what each request
settles), ``context_caches`` (explicit context caches), ``batch`` (Batch API jobs), ``uploads`` (media
sent through the Files API) and ``totals`` (the
report's figures). They share the connection and the two facts of this process: its session and
whether it changed any item (so the output on disk is stale).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from ...errors import InputError
from ..db import connect, transaction
from ..migrate import applied, found_version, migrate
from .batch_jobs import BatchJobs
from .items import ItemsRepo
from .repos import ContextCachesRepo, MetaRepo, SessionsRepo, TotalsRepo
from .requests import RequestsRepo
from .schema import RUN_SCHEMA
from .uploads import UploadsRepo

__all__ = ["RunStore", "NOT_A_RUN_DB_HINT"]

NOT_A_RUN_DB_HINT = "pass another --run-db, or --fresh to start over"
# What a reset forgets: the run's input and answers. The ledger (requests and the items they
# carried, usage, sessions, tiers, context caches and batch jobs: all paid for, or maybe) stays,
# so the report of the corrected run still counts what the replaced one was charged.
_RUN_TABLES = ("items", "results", "failures")

class RunStore:
    def __init__(self, path: str | Path = ":memory:", *, not_a_run_db_hint: str = NOT_A_RUN_DB_HINT,
                 create: bool = True, now: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        # The clock its timestamps are read from (requests' ends, sessions, batch jobs): the run's own,
        # so durations against the times the engine passes in (a request's start) are on one clock.
        self.now = now
        try:
            self.db = connect(self.path)
            if not create and found_version(self.db, RUN_SCHEMA) == 0:
                self.db.close()
                raise InputError(f"{self.path} is not a flashlane run database", hint=not_a_run_db_hint)
            self.schema_version = migrate(self.db, RUN_SCHEMA, self.path)
        except sqlite3.DatabaseError as e:
            raise InputError(f"{self.path} is not a flashlane run database ({e})", hint=not_a_run_db_hint) from None
        self.session: int | None = None
        self.changed = False  # did this process change any item's state (so the output is stale)?
        self.metadata = MetaRepo(self)
        self.items = ItemsRepo(self)
        self.sessions = SessionsRepo(self)
        self.requests = RequestsRepo(self)
        self.context_caches = ContextCachesRepo(self)
        self.batch = BatchJobs(self)
        self.uploads = UploadsRepo(self)
        self.totals = TotalsRepo(self)

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """``with store.transaction():`` groups repository writes into one commit."""
        return transaction(self.db)

    def mark_changed(self) -> None:
        """Item states changed, so the output on disk is stale. The first change of a process
        also forgets the recorded output signature (in the same transaction when called inside
        one), so a run killed before it rewrote the output rewrites it next time."""
        if not self.changed:
            self.metadata.forget_output()
        self.changed = True

    def migrations(self) -> list[tuple[int, str]]:
        """The schema steps applied to this file: (version, what), in order."""
        return applied(self.db, RUN_SCHEMA)

    def is_new(self) -> bool:
        return self.metadata.get("fingerprint") is None

    def reset(self) -> None:
        """Forget the run's items and answers (a run that finished nothing, replaced by a corrected
        command, or an ingest that was cut off); never its ledger."""
        with self.transaction():
            for table in _RUN_TABLES:
                self.db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self.metadata.clear()
            self.mark_changed()
