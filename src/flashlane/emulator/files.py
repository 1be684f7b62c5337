"""The Files API: resumable upload as the SDKs do it, get, list, delete, download.

What a client sees (paths, paging, 48 h expiry, the size limit, the 403) is in docs/emulator.md
(Files API). Wire (``gemini-api-wire.md`` §1.3, recorded sample 30): the start call sends
``X-Goog-Upload-Protocol: resumable``, ``X-Goog-Upload-Command: start``,
``X-Goog-Upload-Header-Content-Length/-Type`` and ``{"file": {...}}`` (Python snake_case, Node
camelCase); the bytes follow with ``X-Goog-Upload-Command: upload`` (last: ``upload, finalize``) and
``X-Goog-Upload-Offset``, every answer carrying ``x-goog-upload-status`` (``active``, then ``final``
with ``{"file": File}``). Python sends no API key on these, Node does: the upload id in the URL is
the credential. Bytes go to a ``SpooledTemporaryFile``, so a million-line JSONL never sits in RAM.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ..media import FILE_TTL_S  # "Files are stored for 48 hours" (media.py cites the Files API docs)
from .caches import format_time
from .errors import ApiError, api_error, invalid_argument
from .wire import JSON_HEADERS, camel_keys, dumps_json, new_id, parse_json_body

if TYPE_CHECKING:
    from .app import EmulatorApp

SPOOL_BYTES = 8 * 1024 * 1024  # above this a file's bytes live on disk, not in memory
CHUNK_GRANULARITY = 8 * 1024 * 1024  # what the live API advertises; the SDKs send 8 MiB chunks
DOWNLOAD_CHUNK = 1024 * 1024
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
_ID_LENGTH = 12
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


def file_not_found(file_id: str) -> ApiError:
    return api_error(403, f"You do not have permission to access the File {file_id} or it may not exist.")


def too_large(size: int, limit: int) -> ApiError:
    # No recorded body for this case; the shape is the API's INVALID_ARGUMENT.
    return invalid_argument(f"File size {size} bytes exceeds the maximum allowed size of {limit} bytes.")


def page_bounds(query: str, default_size: int, max_size: int) -> tuple[int, int]:
    """(start, size) of a list call's page from its ``pageToken``/``pageSize`` (either spelling)."""
    q = parse_qs(query)
    try:
        size = int(q.get("pageSize", q.get("page_size", [default_size]))[0]) or default_size
        start = int(q.get("pageToken", q.get("page_token", ["0"]))[0] or 0)
    except ValueError:
        raise invalid_argument("Invalid page token or page size.") from None
    return start, min(max(size, 1), max_size)


@dataclass
class StoredFile:
    id: str
    project: str
    display_name: str
    mime_type: str
    create_time: float
    source: str = "UPLOADED"  # "GENERATED" for batch output files
    declared_size: int | None = None
    size: int = 0
    done: bool = False
    update_time: float = 0.0
    data: Any = field(default=None, repr=False)
    pins: int = 0  # batch jobs still reading this file: deleting it then closes it after them
    closing: bool = False
    digest: Any = field(default_factory=hashlib.sha256, repr=False)

    def __post_init__(self) -> None:
        if self.data is None:
            # closed by FileStore on delete, expiry or reset, not by a with-block
            self.data = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self.update_time = self.update_time or self.create_time

    @property
    def name(self) -> str:
        return f"files/{self.id}"

    @property
    def expire_time(self) -> float:
        return self.create_time + FILE_TTL_S

    def write(self, chunk: bytes) -> None:
        self.data.seek(0, os.SEEK_END)
        self.data.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)

    def read_at(self, offset: int, n: int) -> bytes:
        self.data.seek(offset)
        chunk: bytes = self.data.read(n)
        return chunk

    def lines(self) -> Iterator[bytes]:
        """The content line by line, never the whole file in memory. Each read seeks to where
        the last one ended, so a consumer may pause between lines (awaits) while others read
        or append to the same file."""
        pos = 0
        while True:
            self.data.seek(pos)
            line: bytes = self.data.readline()
            if not line:
                return
            pos = self.data.tell()
            yield line

    def count_lines(self) -> int:
        """Non-blank lines (a cheap pass: no parsing)."""
        return sum(1 for line in self.lines() if line.strip())

    def close(self) -> None:
        """Close now, or once the last reader (a batch job) unpins it."""
        if self.pins:
            self.closing = True
        else:
            self.data.close()

    def unpin(self) -> None:
        self.pins -= 1
        if self.pins <= 0 and self.closing:
            self.pins = 0
            self.data.close()

    def resource(self, base_url: str, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.display_name:
            out["displayName"] = self.display_name
        out.update(
            {
                "mimeType": self.mime_type,
                "sizeBytes": str(self.size),
                "createTime": format_time(self.create_time),
                "updateTime": format_time(self.update_time),
                "expirationTime": format_time(self.expire_time),
                # the live API's sha256Hash is the base64 of the hex digest
                "sha256Hash": base64.b64encode(self.digest.hexdigest().encode()).decode(),
                "uri": f"{base_url}/{version}/{self.name}",
                "state": "ACTIVE",
                "source": self.source,
            }
        )
        if self.source == "GENERATED":
            out["downloadUri"] = f"{base_url}/download/{version}/{self.name}:download?alt=media"
        return out


class FileStore:
    """Every file, by id; uploads in progress by upload id. One event loop: no locks."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self.uploads: dict[str, StoredFile] = {}

    def reset(self) -> None:
        for f in [*self.files.values(), *self.uploads.values()]:
            f.pins = 0
            f.close()
        self.files.clear()
        self.uploads.clear()

    def sweep(self, now: float) -> None:
        for fid in [fid for fid, f in self.files.items() if f.expire_time <= now]:
            self.files.pop(fid).close()
        for uid in [uid for uid, f in self.uploads.items() if f.expire_time <= now]:
            self.uploads.pop(uid).close()

    def create(self, project: str, file_id: str | None, display_name: str, mime: str, now: float,
               source: str = "UPLOADED") -> StoredFile:
        if file_id is None:
            file_id = new_id(_ID_LENGTH)
        elif not _NAME.match(file_id):
            raise invalid_argument(
                f"Invalid file name 'files/{file_id}': use 1-40 lowercase letters, digits or dashes."
            )
        elif file_id in self.files:
            raise api_error(409, f"File files/{file_id} already exists.", "ALREADY_EXISTS")
        return StoredFile(file_id, project, display_name, mime, now, source)

    def add(self, f: StoredFile) -> None:
        f.done = True
        self.files[f.id] = f

    def get(self, project: str, name: str, now: float) -> StoredFile:
        file_id = name.removeprefix("files/")
        f = self.files.get(file_id)
        if f is None or f.project != project or f.expire_time <= now:
            raise file_not_found(file_id)
        return f

    def delete(self, project: str, name: str, now: float) -> None:
        f = self.get(project, name, now)
        self.files.pop(f.id).close()

    def page(self, project: str, query: str, now: float) -> tuple[list[StoredFile], str | None]:
        start, size = page_bounds(query, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        self.sweep(now)
        mine = sorted((f for f in self.files.values() if f.project == project),
                      key=lambda f: (-f.create_time, f.id))  # newest first
        nxt = str(start + size) if start + size < len(mine) else None
        return mine[start : start + size], nxt


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for n, v in scope["headers"]:
        if n == name:
            return str(v.decode("latin-1"))
    return None


def base_url(scope: dict[str, Any]) -> str:
    """Where the client reached us, so upload URLs and ``uri``s point back at this emulator."""
    host = _header(scope, b"host")
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host}"


class FilesApi:
    """HTTP handlers for the Files API; the routing in ``app`` sends files paths here."""

    def __init__(self, app: EmulatorApp):
        self.app = app
        self.store = FileStore()

    def resolver(self, project: str) -> Any:
        """What a generate request's ``fileData`` parts read (wire.content_files): a file of
        ``project``'s by name -> (its MIME type, its bytes); the API's 403 if it does not exist or
        expired (``file_not_found``, the answer files.get gives)."""
        def resolve(name: str) -> tuple[str, bytes]:
            f = self.store.get(project, name, self.app.clock.now())
            return f.mime_type, f.read_at(0, f.size)
        return resolve

    def _project(self, scope: dict[str, Any]) -> str:
        return self.app.authorized_project(scope)

    async def _error(self, send: Any, e: ApiError, stat: str, project: str | None,
                     upload: bool = False) -> None:
        headers = list(JSON_HEADERS)
        if upload:  # the SDKs retry (sleeping 1, 2, 4 s) while this header is missing
            headers.append((b"x-goog-upload-status", b"final"))
        await self.app._send_bytes(send, e.code, dumps_json(e.body), headers)
        self.app.stats.record(self.app.clock.now(), stat, None, project, e.code)

    # ---------------------------------------------------------------- upload
    async def upload(self, scope: dict[str, Any], receive: Any, send: Any, version: str) -> None:
        q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        upload_id = (q.get("upload_id") or [None])[0]
        if upload_id:
            await self._chunk(scope, receive, send, upload_id)
            return
        now = self.app.clock.now()
        project: str | None = None
        try:
            project = self._project(scope)
            if scope["method"] != "POST":
                raise api_error(404, f"Method not found: {scope['method']} {scope['path']}")
            await self.app.control_fault(scope, receive, send, "files.upload", project)
            command = (_header(scope, b"x-goog-upload-command") or "").lower()
            if command != "start":
                raise invalid_argument(
                    "Only resumable uploads are supported: send X-Goog-Upload-Protocol: resumable and "
                    "X-Goog-Upload-Command: start."
                )
            raw = await self.app._read_body(receive)
            if raw is None:
                raise invalid_argument("Request payload size exceeds the limit.")
            body = camel_keys(parse_json_body(raw, lenient=True))
            meta = camel_keys(body.get("file") or {})
            if not isinstance(meta, dict):
                raise invalid_argument("Invalid value at 'file' (type.googleapis.com/google.ai.generativelanguage.v1beta.File)")
            declared = _header(scope, b"x-goog-upload-header-content-length") or meta.get("sizeBytes")
            declared_size = int(declared) if declared is not None and str(declared).isdigit() else None
            limit = self.app.config.file_max_bytes
            if declared_size is not None and declared_size > limit:
                raise too_large(declared_size, limit)
            mime = (_header(scope, b"x-goog-upload-header-content-type") or meta.get("mimeType")
                    or "application/octet-stream")
            name = meta.get("name")
            f = self.store.create(project, str(name).removeprefix("files/") if name else None,
                                  str(meta.get("displayName") or ""), str(mime), now)
            f.declared_size = declared_size
            upload_id = new_id(2 * _ID_LENGTH)
            self.store.uploads[upload_id] = f
        except ApiError as e:
            await self._error(send, e, "files.create", project)
            return
        url = f"{base_url(scope)}/upload/{version}/files?upload_id={upload_id}&upload_protocol=resumable"
        headers = [
            *JSON_HEADERS,
            (b"x-goog-upload-url", url.encode()),
            (b"x-goog-upload-status", b"active"),
            (b"x-goog-upload-chunk-granularity", str(CHUNK_GRANULARITY).encode()),
        ]
        await self.app._send_bytes(send, 200, b"", headers)
        self.app.stats.record(now, "files.create", None, project, 200)

    async def _chunk(self, scope: dict[str, Any], receive: Any, send: Any, upload_id: str) -> None:
        f = self.store.uploads.get(upload_id)
        command = {c.strip() for c in (_header(scope, b"x-goog-upload-command") or "").lower().split(",")}
        try:
            if f is None:
                raise api_error(404, "Upload not found (unknown or finished upload id).")
            if "cancel" in command:
                self.store.uploads.pop(upload_id).close()
                await self.app._send_bytes(send, 200, b"", [(b"x-goog-upload-status", b"cancelled")])
                return
            offset = _header(scope, b"x-goog-upload-offset")
            if "upload" in command and offset is not None and offset.strip() != str(f.size):
                raise invalid_argument(f"Invalid upload offset {offset}: {f.size} bytes received so far.")
            limit = self.app.config.file_max_bytes
            while True:  # stream the chunk to the file: never the whole upload in memory
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                chunk = msg.get("body", b"")
                if chunk and "upload" in command:
                    if f.size + len(chunk) > limit:
                        self.store.uploads.pop(upload_id).close()
                        raise too_large(f.size + len(chunk), limit)
                    f.write(chunk)
                if not msg.get("more_body"):
                    break
            if "finalize" not in command:
                headers = [(b"x-goog-upload-status", b"active"),
                           (b"x-goog-upload-size-received", str(f.size).encode())]
                await self.app._send_bytes(send, 200, b"", headers)
                return
            if f.declared_size is not None and f.size != f.declared_size:
                self.store.uploads.pop(upload_id).close()
                raise invalid_argument(
                    f"Upload finalized with {f.size} bytes but {f.declared_size} were declared."
                )
        except ApiError as e:
            await self._error(send, e, "files.upload", f.project if f else None, upload=True)
            return
        self.store.uploads.pop(upload_id)
        f.update_time = self.app.clock.now()
        self.store.add(f)
        body = dumps_json({"file": f.resource(base_url(scope), _version_of(scope))})
        await self.app._send_bytes(send, 200, body, [*JSON_HEADERS, (b"x-goog-upload-status", b"final")])
        self.app.stats.record(self.app.clock.now(), "files.upload", None, f.project, 200)

    # ---------------------------------------------------------------- get / list / delete
    async def resource(self, scope: dict[str, Any], receive: Any, send: Any, version: str,
                       rest: list[str]) -> None:
        method = scope["method"]
        name = "/".join(rest)
        if method == "GET" and name.endswith(":download"):
            await self.download(scope, receive, send, version, name.removesuffix(":download"))
            return
        op = {("GET", False): "list", ("GET", True): "get", ("DELETE", True): "delete"}.get((method, bool(name)))
        stat = f"files.{op or method.lower()}"
        now = self.app.clock.now()
        project: str | None = None
        try:
            project = self._project(scope)
            if op is None:
                raise api_error(404, f"Method not found: {method} {scope['path']}")
            base = base_url(scope)
            if op == "list":
                page, nxt = self.store.page(project, scope.get("query_string", b"").decode("latin-1"), now)
                out: dict[str, Any] = {}
                if page:
                    out["files"] = [f.resource(base, version) for f in page]
                if nxt:
                    out["nextPageToken"] = nxt
            elif op == "get":
                out = self.store.get(project, name, now).resource(base, version)
            else:
                self.store.delete(project, name, now)
                out = {}
        except ApiError as e:
            await self._error(send, e, stat, project)
            return
        await self.app._send_json(send, 200, out)
        self.app.stats.record(now, stat, None, project, 200)

    async def download(self, scope: dict[str, Any], receive: Any, send: Any, version: str,
                       name: str) -> None:
        now = self.app.clock.now()
        project: str | None = None
        try:
            project = self._project(scope)
            await self.app.control_fault(scope, receive, send, "files.download", project)
            f = self.store.get(project, name.removeprefix("files/"), now)
        except ApiError as e:
            await self._error(send, e, "files.download", project)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", f.mime_type.encode("latin-1", "replace")),
                                (b"content-length", str(f.size).encode())]})
        offset = 0
        while offset < f.size:
            chunk = f.read_at(offset, DOWNLOAD_CHUNK)
            if not chunk:
                break
            offset += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": offset < f.size})
        if offset == 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        self.app.stats.record(now, "files.download", None, project, 200)


def _version_of(scope: dict[str, Any]) -> str:
    parts = scope["path"].strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "upload" else "v1beta"
