"""The Files API through the official Python SDK (and raw HTTP where the SDK hides the wire):
resumable upload, get, list with paging, delete, download, expiry, size limit, projects."""

from __future__ import annotations

import hashlib
import io
from base64 import b64decode
from pathlib import Path

import httpx2 as httpx
import pytest
from google import genai
from google.genai import errors

from flashlane.emulator import Emulator
from flashlane.emulator.files import FILE_TTL_S

from .conftest import make_client

KEY = {"x-goog-api-key": "test-key"}


def test_upload_get_list_download_delete(client: genai.Client, tmp_path: Path) -> None:
    src = tmp_path / "requests.jsonl"
    src.write_bytes(b'{"key": "a", "request": {}}\n' * 3)
    f = client.files.upload(file=src, config={"display_name": "my input", "mime_type": "application/jsonl"})
    assert f.name.startswith("files/") and f.display_name == "my input"
    assert f.size_bytes == src.stat().st_size and f.state.value == "ACTIVE" and f.source.value == "UPLOADED"
    assert b64decode(f.sha256_hash).decode() == hashlib.sha256(src.read_bytes()).hexdigest()
    assert (f.expiration_time - f.create_time).total_seconds() == FILE_TTL_S
    got = client.files.get(name=f.name)
    assert got.name == f.name and got.uri.endswith(f"/v1/{f.name}")
    assert [x.name for x in client.files.list()] == [f.name]
    assert client.files.download(file=f.name) == src.read_bytes()
    client.files.delete(name=f.name)
    with pytest.raises(errors.ClientError) as ei:
        client.files.get(name=f.name)
    assert ei.value.code == 403 and "or it may not exist" in ei.value.message
    assert list(client.files.list()) == []


def test_multi_chunk_upload_spools_to_disk(emu: Emulator, client: genai.Client) -> None:
    # a million-line JSONL (about 24 MB: three 8 MiB chunks) must not be held in memory
    data = b"".join(b'{"key": "k%07d"}\n' % i for i in range(1_000_000))
    f = client.files.upload(file=io.BytesIO(data), config={"mime_type": "application/jsonl"})
    assert f.size_bytes == len(data)
    stored = emu.app.files.store.files[f.name.removeprefix("files/")]
    assert stored.data._rolled  # on disk in a temporary file, not in RAM
    assert hashlib.sha256(client.files.download(file=f.name)).digest() == hashlib.sha256(data).digest()
    uploads = [r for r in emu.requests() if r["method"] == "files.upload"]
    assert len(uploads) == 1  # one finalize; the two "active" chunks are not logged as calls


def test_list_pages(client: genai.Client) -> None:
    names = {client.files.upload(file=io.BytesIO(b"x%d" % i), config={"mime_type": "text/plain"}).name
             for i in range(5)}
    pager = client.files.list(config={"page_size": 2})
    assert len(pager.page) == 2
    assert {f.name for f in pager} == names


def test_raw_wire_node_style_and_download_path(emu: Emulator) -> None:
    base = emu.base_url
    start = httpx.post(
        f"{base}/upload/v1beta/files",
        json={"file": {"mimeType": "text/plain", "displayName": "n", "sizeBytes": "5"}},
        headers={**KEY, "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
                 "X-Goog-Upload-Header-Content-Length": "5", "X-Goog-Upload-Header-Content-Type": "text/plain"},
    )
    assert start.status_code == 200
    url = start.headers["x-goog-upload-url"]
    assert url.startswith(f"{base}/upload/v1beta/files?upload_id=")
    part = httpx.post(url, content=b"hel", headers={**KEY, "X-Goog-Upload-Command": "upload",
                                                   "X-Goog-Upload-Offset": "0"})
    assert part.status_code == 200 and part.headers["x-goog-upload-status"] == "active"
    bad = httpx.post(url, content=b"lo", headers={"X-Goog-Upload-Command": "upload, finalize",
                                                  "X-Goog-Upload-Offset": "1"})
    assert bad.status_code == 400 and bad.headers["x-goog-upload-status"] == "final"
    done = httpx.post(url, content=b"lo", headers={"X-Goog-Upload-Command": "upload, finalize",
                                                   "X-Goog-Upload-Offset": "3"})
    assert done.headers["x-goog-upload-status"] == "final"
    resource = done.json()["file"]
    assert resource["sizeBytes"] == "5" and resource["mimeType"] == "text/plain"
    assert set(resource) == {"name", "displayName", "mimeType", "sizeBytes", "createTime", "updateTime",
                             "expirationTime", "sha256Hash", "uri", "state", "source"}
    fid = resource["name"].removeprefix("files/")
    for path in (f"/v1beta/files/{fid}:download?alt=media", f"/download/v1beta/files/{fid}:download?alt=media"):
        r = httpx.get(base + path, headers=KEY)
        assert r.status_code == 200 and r.content == b"hello"
    assert httpx.get(f"{base}/v1beta/files/{fid}").status_code == 403  # no key: unregistered caller


def test_size_limit_is_the_real_400(emu: Emulator, client: genai.Client) -> None:
    emu.configure(file_max_bytes=100)
    with pytest.raises(errors.ClientError) as ei:
        client.files.upload(file=io.BytesIO(b"x" * 101), config={"mime_type": "text/plain"})
    assert ei.value.code == 400 and ei.value.status == "INVALID_ARGUMENT"
    assert ei.value.message == "File size 101 bytes exceeds the maximum allowed size of 100 bytes."
    assert client.files.upload(file=io.BytesIO(b"x" * 100), config={"mime_type": "text/plain"}).size_bytes == 100


def test_expiry_and_projects(emu: Emulator, client: genai.Client) -> None:
    emu.configure(projects={"other": {"keys": ["other-key"]}})
    f = client.files.upload(file=io.BytesIO(b"abc"), config={"mime_type": "text/plain"})
    other = make_client(emu, api_key="other-key")
    with pytest.raises(errors.ClientError) as ei:
        other.files.get(name=f.name)
    assert ei.value.code == 403
    assert list(other.files.list()) == []
    emu.advance_clock(FILE_TTL_S - 60)  # a minute short (real seconds pass between these calls on a busy machine)
    assert client.files.get(name=f.name).size_bytes == 3
    emu.advance_clock(61)
    with pytest.raises(errors.ClientError):
        client.files.get(name=f.name)
    assert list(client.files.list()) == []
