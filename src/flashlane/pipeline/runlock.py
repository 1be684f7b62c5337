"""One writer per run: a lock beside the run database (``<run db>.lock``).

The lock is ``flock`` on that file, so the kernel releases it when its holder exits for any
reason, SIGKILL included: a dead holder never blocks the next run, which simply takes the
lock over. The file also says who holds it (pid, host, start time) so a refused second run
can name the holder. The file itself stays (removing it could let two processes lock two
different files of one name); it is a few bytes.
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
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            try:
                info = json.loads(f.read() or "{}")
            except ValueError:
                info = {}
            f.close()
            db = str(self.path)[: -len(LOCK_SUFFIX)]
            raise RunBusy(f"run database {db} is in use by another flashlane run ({_holder_text(info)})",
                          hint="wait for it to finish (rerunning then resumes), or pass another -o / --run-db") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}))
        f.flush()
        self._file = f
        return self

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.truncate(0)
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
