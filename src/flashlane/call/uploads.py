"""``Uploads``: media too large to go inline, sent once through the Files API and referenced.

A request's files that do not fit its inline limit (``request.by_reference``) are built as
``fileData`` parts with a placeholder uri naming their content hash. Just before the request is
sent, ``resolve``/``aresolve`` swaps each placeholder for the uri of the uploaded file:

- **once per content hash**: a file already uploaded (this run, an earlier session of it, another
  row with the same bytes) and alive for ``margin`` more seconds is reused; the hash is computed
  when the ``File`` is made, streamed (call/media.py);
- **crash-safe**: the upload is recorded in the run store (``store.run.uploads``) *before* it is
  made, under the name it will have (``files/fl-<hash>``, chosen by us: the Files API takes a
  name on create, 1-40 lowercase letters, digits or dashes, and refuses a second file of that
  name). A rerun after a kill asks ``files.get`` for a recorded intent before uploading, and an
  upload whose answer was lost finds its file by the name's 409 on the retry;
- **re-uploaded when gone**: a file past its 48 h, or one the server says is gone
  (``errors.FileNotFound`` on a request), is marked gone and uploaded again for the next request;
- **within the project's storage**: the Files API holds 20 GB per project (media.py); before an
  upload that would pass ``Settings.files_quota_bytes`` (counting this run's live uploads), files
  no request in flight references are deleted; if that is not enough, async callers wait for
  requests in flight to finish, and otherwise the upload is refused in one line naming the fix;
- **deleted when the run is done** (``finish``), or when the client closes (calls outside a run,
  whose uploads are recorded in an in-memory store of the client's own).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, replace
from typing import Any

from google.genai import types

from ..clock import Clock
from ..config import Settings
from ..errors import ConfigError, FileNotFound, FlashlaneError, InputError
from ..media import FILE_TTL_S
from ..store.run import RunStore, UploadRecord, UploadsRepo
from ..store.run.uploads import UPLOADING
from .media import File, uploaded_hash
from .request import Call
from .transport import Transport

__all__ = ["Uploads", "REUSE_MARGIN_S", "BATCH_REUSE_MARGIN_S", "upload_name"]

# A live request takes minutes at most (retries included); a file with less life left than this
# is uploaded again rather than risk expiring under a request.
REUSE_MARGIN_S = 3600.0
# A batch job may take up to 24 h to run its requests ("The target turnaround time is 24 hours",
# ai.google.dev/gemini-api/docs/batch-api): its files must outlive that.
BATCH_REUSE_MARGIN_S = 25 * 3600.0
_NAME_CHARS = 40  # "The ID ... can contain up to 40 characters that are lowercase alphanumeric or dashes"
_PREFIX = "fl-"
_CONFLICT_STATUS = 409  # ALREADY_EXISTS: a file of that name exists (our own upload, whose answer was lost)


def upload_name(sha256: str, attempt: int = 0) -> str:
    """The Files API name of a content hash's upload: ``files/fl-<hash>``; later uploads of the same
    bytes (the first expired, or was deleted while its name stays taken) add their number."""
    if attempt == 0:
        return "files/" + _PREFIX + sha256[: _NAME_CHARS - len(_PREFIX)]
    tail = f"-{attempt}"
    return "files/" + _PREFIX + sha256[: _NAME_CHARS - len(_PREFIX) - len(tail)] + tail


def _expires(f: Any, now: float) -> float:
    exp = getattr(f, "expiration_time", None)
    return exp.timestamp() if exp is not None else now + FILE_TTL_S


class Uploads:
    """The Files API uploads of one client, recorded in a run store (``attach``) or its own."""

    def __init__(self, transport: Transport, clock: Clock, settings: Settings) -> None:
        self.transport = transport
        self.clock = clock
        self.quota_bytes = settings.files_quota_bytes
        self.vertex = settings.backend == "vertex"
        self._run: UploadsRepo | None = None
        self._own: RunStore | None = None
        self._lock = threading.Lock()
        self._alocks: dict[str, asyncio.Lock] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._freed: asyncio.Event | None = None  # set when a request in flight releases its files
        self.in_use: Counter[str] = Counter()  # hash -> requests in flight that reference it
        self.uploaded = 0  # uploads this object made (files.upload calls that created a file)

    # ------------------------------------------------------------------ where uploads are recorded

    @property
    def records(self) -> UploadsRepo:
        if self._run is not None:
            return self._run
        if self._own is None:
            self._own = RunStore(":memory:")
        return self._own.uploads

    def attach(self, repo: UploadsRepo) -> None:
        """Record in a run's store from now on (a rerun then reuses what an earlier session uploaded)."""
        self._run = repo

    def finish(self, *, delete: bool) -> None:
        """The run ends: delete its uploads when it is done (``delete``), keep them for a rerun if not."""
        try:
            if delete:
                self.delete_all()
        finally:
            self._run = None

    def close(self) -> None:
        """The client closes: the uploads of its calls outside a run are deleted."""
        if self._own is not None:
            self._run = None
            self.delete_all()
            self._own.close()
            self._own = None

    def delete_all(self) -> int:
        """Delete every live upload recorded; those already gone are marked so. Returns how many."""
        return sum(self._delete(rec, tolerant=True) for rec in self.records.live())

    # ------------------------------------------------------------------ resolving a request

    def resolve(self, call: Call, margin: float = REUSE_MARGIN_S) -> Call:
        """``call`` with its placeholder parts pointing at uploaded files (uploading what must be)."""
        if not call.uploads:
            return call
        with self._lock:
            uris = {f.upload_digest: self._ensure(f, margin) for f in call.uploads}
        return _swap(call, uris)

    async def aresolve(self, call: Call, margin: float = REUSE_MARGIN_S) -> Call:
        if not call.uploads:
            return call
        uris = {}
        for f in call.uploads:
            async with self._alock(f.upload_digest):
                uris[f.upload_digest] = await self._aensure(f, margin)
        return _swap(call, uris)

    @contextlib.contextmanager
    def sending(self, call: Call, *, last: bool) -> Iterator[None]:
        """Around one send of ``call``: its files are held (not deleted to make room) while it is in
        flight; a file the server says is gone is marked so and the error swallowed, so the caller
        sends again (resolving uploads it anew), unless this was its ``last`` try."""
        self.hold(call)
        try:
            yield
        except FileNotFound as e:
            if last or not call.uploads:
                raise
            self.gone(e, call)
        finally:
            self.release(call)

    def hold(self, call: Call) -> None:
        """Requests in flight reference these files: they are not deleted to make room."""
        self.in_use.update({f.upload_digest for f in call.uploads})

    def release(self, call: Call) -> None:
        self.in_use.subtract({f.upload_digest for f in call.uploads})
        self.in_use += Counter()  # drop zero counts
        if self._freed is not None and call.uploads:
            with contextlib.suppress(RuntimeError):  # only on the loop that waits
                if asyncio.get_running_loop() is self._loop:
                    self._freed.set()

    def gone(self, error: FileNotFound, call: Call) -> None:
        """The server says a file the request referenced is gone: the next request uploads it again."""
        now = self.clock.time()
        for f in call.uploads:
            rec = self.records.get(f.upload_digest)
            if rec is not None and (error.file is None or rec.name == error.file):
                self.records.ended(f.upload_digest, now, deleted=False)

    # ------------------------------------------------------------------ one file

    def _usable(self, rec: UploadRecord | None, margin: float) -> str | None:
        if rec is not None and rec.state == "active" and rec.uri and (rec.expires or 0) - self.clock.time() > margin:
            return rec.uri
        return None

    def _next_name(self, f: File, rec: UploadRecord | None) -> str:
        """The name of the next upload of ``f``: the hash's own, unless an earlier upload took it."""
        if rec is None:
            return upload_name(f.upload_digest)
        taken = rec.name or upload_name(f.upload_digest)
        attempt = int(taken.rsplit("-", 1)[1]) + 1 if taken != upload_name(f.upload_digest) else 1
        return upload_name(f.upload_digest, attempt)

    def _adopt(self, f: File, found: Any, margin: float) -> str | None:
        """A file found under the recorded name: used if alive long enough, else None."""
        now = self.clock.time()
        expires = _expires(found, now)
        state = str(getattr(found.state, "value", found.state) or "ACTIVE")
        if state.endswith("FAILED") or expires - now <= margin:
            return None
        self.records.active(f.upload_digest, str(found.name), str(found.uri), expires, now)
        return str(found.uri)

    def _name_for(self, f: File, free: str | None) -> str:
        """The name to upload under: ``free`` (an intent whose upload never finished: the name was
        never taken), else the next one for this hash."""
        if self.vertex:
            raise ConfigError(f"{f.name} is too large to send inline, and Vertex AI has no Files API",
                              hint="use the Gemini Developer API (GEMINI_API_KEY) for large files, or split them")
        return free or self._next_name(f, self.records.get(f.upload_digest))

    def _config(self, f: File, name: str) -> types.UploadFileConfig:
        return types.UploadFileConfig(name=name, display_name=f"flashlane {f.upload_digest}", mime_type=f.mime_type)

    def _uploaded(self, f: File, up: Any) -> str:
        now = self.clock.time()
        self.uploaded += 1
        self.records.active(f.upload_digest, str(up.name), str(up.uri), _expires(up, now), now)
        return str(up.uri)

    def _over(self, f: File) -> int:
        """Bytes over the storage quota if ``f`` were uploaded now (<= 0: it fits)."""
        if f.size > self.quota_bytes:
            raise InputError(f"{f.name} ({f.size / 2**20:.1f} MiB) is larger than the Files API storage of "
                             f"{self.quota_bytes / 2**20:.1f} MiB this run may use",
                             hint="raise files_quota_bytes (FLASHLANE_FILES_QUOTA_BYTES; the API allows 20 GB "
                                  "per project) or split the file")
        return self.records.live_bytes() + f.size - self.quota_bytes

    def _evictable(self) -> list[UploadRecord]:
        return [r for r in self.records.live() if r.state == "active" and not self.in_use[r.sha256]]

    def _full(self, f: File) -> InputError:
        return InputError(f"uploading {f.name} would pass the Files API storage of {self.quota_bytes / 2**30:.2f} "
                          "GiB this run may use, and every uploaded file is in use",
                          hint="raise files_quota_bytes (FLASHLANE_FILES_QUOTA_BYTES), or lower --concurrency")

    # One file's way to a usable uri, written once as steps (``_Get``, ``_Upload``, ``_Delete``,
    # ``_Wait``) that ``_run`` (sync) and ``_arun`` (async) carry out against the Files API.

    def _steps(self, f: File, margin: float) -> Generator[Any, Any, str]:
        rec = self.records.get(f.upload_digest)
        if (uri := self._usable(rec, margin)) is not None:
            return uri
        free = None
        if rec is not None and rec.name and rec.live:  # an intent (a killed upload) or a file near its end
            found = yield _Get(rec.name)
            if found is not None and (uri := self._adopt(f, found, margin)) is not None:
                return uri
            if found is None and rec.state == UPLOADING:
                free = rec.name  # the upload never finished: its name was never taken
            self.records.ended(f.upload_digest, self.clock.time(), deleted=False)
        name = self._name_for(f, free)
        while (over := self._over(f)) > 0:
            spare = self._evictable()
            if not spare:
                if not any(self.in_use.values()):
                    raise self._full(f)
                yield _Wait(self._full(f))
                continue
            for old in spare:
                if over <= 0:
                    break
                yield _Delete(old)
                over -= old.size
        self.records.intend(f.upload_digest, name, f.mime_type, f.size, self.clock.time())
        up = yield _Upload(f, name)
        if up is not _CONFLICT:
            return self._uploaded(f, up)
        # A file of that name exists: our own upload whose answer was lost (or a twin run's).
        found = yield _Get(name)
        if found is not None and (uri := self._adopt(f, found, margin)) is not None:
            return uri
        self.records.ended(f.upload_digest, self.clock.time(), deleted=False)
        return (yield from self._steps(f, margin))

    def _deleted(self, rec: UploadRecord) -> None:
        self.records.ended(rec.sha256, self.clock.time(), deleted=True)

    def _ensure(self, f: File, margin: float) -> str:
        steps, value = self._steps(f, margin), None
        while True:
            try:
                step = steps.send(value)
            except StopIteration as done:
                return str(done.value)
            value = None
            if isinstance(step, _Get):
                with contextlib.suppress(FileNotFound):
                    value = self.transport.get_file(step.name)
            elif isinstance(step, _Upload):
                try:
                    value = self.transport.upload_file(step.file.source(), self._config(step.file, step.name))
                except FlashlaneError as e:
                    value = _conflict(e)
            elif isinstance(step, _Delete):
                self._delete(step.record)
            else:  # nothing frees room while this thread waits
                raise step.error

    async def _aensure(self, f: File, margin: float) -> str:
        steps, value = self._steps(f, margin), None
        while True:
            try:
                step = steps.send(value)
            except StopIteration as done:
                return str(done.value)
            value = None
            if isinstance(step, _Get):
                with contextlib.suppress(FileNotFound):
                    value = await self.transport.aget_file(step.name)
            elif isinstance(step, _Upload):
                try:
                    value = await self.transport.aupload_file(step.file.source(), self._config(step.file, step.name))
                except FlashlaneError as e:
                    value = _conflict(e)
            elif isinstance(step, _Delete):
                if step.record.name:
                    with contextlib.suppress(FileNotFound):
                        await self.transport.adelete_file(step.record.name)
                self._deleted(step.record)
            else:
                await self._wait_for_room()

    def _delete(self, rec: UploadRecord, *, tolerant: bool = False) -> bool:
        """Delete one upload (sync); False when it was already gone. ``tolerant`` (the run is over):
        one that cannot be deleted stays recorded and lapses after its 48 h, since a run that answered
        its rows must not fail for it; otherwise (making room) the error is raised."""
        gone = False
        if rec.name:
            try:
                self.transport.delete_file(rec.name)
            except FileNotFound:
                gone = True
            except FlashlaneError:
                if not tolerant:
                    raise
                return False
        self._deleted(rec)
        return bool(rec.name) and not gone

    async def _wait_for_room(self) -> None:
        assert self._freed is not None
        self._freed.clear()
        await self._freed.wait()

    def _alock(self, sha256: str) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (another lane.map): locks of the old one are void
            self._loop, self._alocks, self._freed = loop, {}, asyncio.Event()
        lock = self._alocks.get(sha256)
        if lock is None:
            lock = self._alocks[sha256] = asyncio.Lock()
        return lock


@dataclass(frozen=True)
class _Get:
    name: str


@dataclass(frozen=True)
class _Upload:
    file: File
    name: str


@dataclass(frozen=True)
class _Delete:
    record: UploadRecord


@dataclass(frozen=True)
class _Wait:
    error: InputError  # what a caller that cannot wait raises


_CONFLICT = object()  # the upload's answer: a file of that name exists


def _conflict(e: FlashlaneError) -> object:
    if e.status_code != _CONFLICT_STATUS:
        raise e
    return _CONFLICT


def _swap(call: Call, uris: dict[str, str]) -> Call:
    """``call`` with each placeholder ``fileData`` uri replaced by its upload's uri."""
    contents = []
    for c in call.contents:
        parts = c.parts or []
        if not any(uploaded_hash(p) for p in parts):
            contents.append(c)
            continue
        new = []
        for p in parts:
            h = uploaded_hash(p)
            if h is None:
                new.append(p)
            else:
                assert p.file_data is not None
                new.append(p.model_copy(update={"file_data": p.file_data.model_copy(update={"file_uri": uris[h]})}))
        contents.append(c.model_copy(update={"parts": new}))
    return replace(call, contents=contents)
