"""One writer per run: a lock beside the run database (``<run db>.lock``).

The lock is ``flock`` on that file, so the kernel releases it when its holder exits for any
reason, SIGKILL included: a dead holder never blocks the next run, which simply takes the
lock over. The file also says who holds it (pid, host, start time) so a refused second run
can name the holder.

The holder removes the file when it lets go, while still holding the lock. A process that was
waiting on the old file then holds a lock on a file no longer at that path, so after locking it
checks that the path still names the file it locked (same inode) and starts over if not: two
processes never hold two different files of one name. (The usual pattern for removable flock
files; a SIGKILLed holder leaves its file, which the next run takes over.)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import IO, Any

from ..errors import InputError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLock", "RunBusy", "LOCK_SUFFIX"]

LOCK_SUFFIX = ".lock"


class RunBusy(InputError):
    """Another live process is running this run database."""


def _holder_text(info: dict[str, Any]) -> str:
    started = info.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if isinstance(started, (int, float)) else "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {when}"


class RunLock:
    def __init__(self, run_db: str | Path) -> None:
        self.path = Path(f"{run_db}{LOCK_SUFFIX}")
        self._file: IO[str] | None = None

    def acquire(self) -> RunLock:
        if fcntl is None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                break
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = None
            if current == os.fstat(f.fileno()).st_ino:
                return self._hold(f)
            f.close()  # its holder removed it between our open and our lock: lock the new one
        f.seek(0)
        try:
            info = json.loads(f.read() or "{}")
        except ValueError:
            info = {}
        f.close()
        db = str(self.path)[: -len(LOCK_SUFFIX)]
        raise RunBusy(f"run database {db} is in use by another flashlane run ({_holder_text(info)})",
                      hint="wait for it to finish (rerunning then resumes), or pass another -o / --run-db")

    def _hold(self, f: IO[str]) -> RunLock:
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}))
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # still locked: see the module docstring
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
