"""Media sent through the Files API (``uploads``, run database migration 10): one row per content
hash, what makes uploading crash-safe and lets reruns reuse a file.

A file is recorded in steps, each its own transaction:

1. the intent (``intend``): the hash and the name the file will have, written *before* the upload;
2. the file (``active``): its name, uri and expiry, written when the upload answers;
3. its end (``ended``): deleted by the run, or found gone (expired, deleted elsewhere).

A process killed between 1 and 2 leaves an intent: the next run asks the Files API for that name
(``files.get``) before it uploads anything, so a file still alive is never uploaded twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .repos import Repo

__all__ = ["UploadRecord", "UploadsRepo"]

UPLOADING, ACTIVE, DELETED, GONE = "uploading", "active", "deleted", "gone"


@dataclass(frozen=True)
class UploadRecord:
    sha256: str
    name: str | None
    uri: str | None
    mime_type: str
    size: int
    state: str
    expires: float | None

    @property
    def live(self) -> bool:
        return self.state in (UPLOADING, ACTIVE)


_COLS = "sha256, name, uri, mime_type, size, state, expires"


def _record(row: Sequence[Any]) -> UploadRecord:
    return UploadRecord(str(row[0]), row[1], row[2], str(row[3] or ""), int(row[4] or 0), str(row[5]),
                        None if row[6] is None else float(row[6]))


class UploadsRepo(Repo):
    """The run's uploaded media, by content hash."""

    def get(self, sha256: str) -> UploadRecord | None:
        row = self.db.execute(f"SELECT {_COLS} FROM uploads WHERE sha256=?", (sha256,)).fetchone()  # noqa: S608
        return None if row is None else _record(row)

    def intend(self, sha256: str, name: str, mime_type: str, size: int, at: float) -> None:
        """Before the upload: the name it will have (a rerun looks it up by that name)."""
        with self.store.transaction():
            self.db.execute(
                "INSERT OR REPLACE INTO uploads (sha256, name, uri, mime_type, size, state, intended) "
                "VALUES (?, ?, NULL, ?, ?, 'uploading', ?)", (sha256, name, mime_type, size, at))

    def active(self, sha256: str, name: str, uri: str, expires: float, at: float) -> None:
        with self.store.transaction():
            self.db.execute("UPDATE uploads SET name=?, uri=?, state='active', uploaded=?, expires=?, ended=NULL "
                            "WHERE sha256=?", (name, uri, at, expires, sha256))

    def ended(self, sha256: str, at: float, *, deleted: bool) -> None:
        """Deleted by the run, or found gone (expired or deleted elsewhere)."""
        with self.store.transaction():
            self.db.execute("UPDATE uploads SET state=?, ended=? WHERE sha256=? AND state IN ('uploading', 'active')",
                            (DELETED if deleted else GONE, at, sha256))

    def live(self) -> list[UploadRecord]:
        """Files uploaded (or maybe uploaded) and not known to be gone, oldest first."""
        return [_record(r) for r in self.db.execute(
            f"SELECT {_COLS} FROM uploads WHERE state IN ('uploading', 'active') ORDER BY intended")]  # noqa: S608

    def live_bytes(self) -> int:
        row = self.db.execute("SELECT COALESCE(SUM(size), 0) FROM uploads WHERE state IN ('uploading', 'active')"
                              ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        """Uploads by state (the report's figures)."""
        return {str(s): int(n) for s, n in self.db.execute("SELECT state, COUNT(*) FROM uploads GROUP BY state")}
