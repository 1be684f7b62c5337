"""Large media through the Files API (issue 22, deliverable 3): decided per request, uploaded once
per content hash, recorded before uploading, reused across rows and reruns, re-uploaded when the
server says a file is gone, deleted when the run is done. Real SDK over real HTTP against
``flashlane emulator`` (a child process); files generated here, the inline limit lowered through
FLASHLANE_INLINE_MAX_BYTES so they stay small."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfWriter

import flashlane as fl
from flashlane.call.uploads import upload_name
from flashlane.media import inline_file_budget
from flashlane.store.run import RunStore

from .conftest import EmulatorProcess, finished_items, read_jsonl, run_cli, scenario, subprocess_env, wait_for

INLINE_MAX = 300_000  # request bytes: files over inline_file_budget(INLINE_MAX) (~28 KB) are uploaded
N_FILES = 200
LARGE = (0, 5)  # files whose number ends so are over the inline limit: PNGs and PDFs alike
SCHEMA = {"type": "object", "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
          "required": ["vendor", "total"]}


def _png(i: int, large: bool) -> bytes:
    buf = io.BytesIO()
    if large:  # noise does not compress: ~43 KB
        Image.frombytes("RGB", (120, 120), os.urandom(120 * 120 * 3)).save(buf, "PNG")
    else:
        Image.new("RGB", (40 + i % 50, 30), (i % 256, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def _pdf(i: int, large: bool) -> bytes:
    w = PdfWriter()
    for _ in range(1 + i % 2):
        w.add_blank_page(612, 792)
    w.add_metadata({"/Title": f"invoice {i}"})
    if large:
        w.add_attachment("scan.bin", os.urandom(40_000))
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def make_folder(root: Path) -> dict[str, bytes]:
    """200 invoices, PDFs and PNGs alternately, one in five over the inline limit: rel path -> bytes."""
    files = {}
    for i in range(N_FILES):
        large = i % 10 in LARGE
        rel = f"{'pdf' if i % 2 else 'png'}/{i:03d}.{'pdf' if i % 2 else 'png'}"
        data = _pdf(i, large) if i % 2 else _png(i, large)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        files[rel] = data
    budget = inline_file_budget(INLINE_MAX)
    assert sum(len(d) > budget for d in files.values()) == N_FILES // 5
    return files


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


def _paid(emu: EmulatorProcess) -> Counter[str]:
    """Answered generate requests per content sha256, read from the emulator's request log:
    inline parts by the hash of their bytes, fileData parts by the hash their upload name carries."""
    out: Counter[str] = Counter()
    for r in _get(emu.base_url + "/_emulator/requests")["requests"]:
        if r["method"] != "generateContent" or r["status"] != 200:
            continue
        for c in r["contents"]:
            for p in c.get("parts") or []:
                blob = p.get("inlineData") or p.get("inline_data")
                ref = p.get("fileData") or p.get("file_data")
                if blob:
                    raw = blob["data"].replace("-", "+").replace("_", "/")
                    out[hashlib.sha256(base64.b64decode(raw + "=" * (-len(raw) % 4))).hexdigest()] += 1
                elif ref:
                    uri = ref.get("fileUri") or ref.get("file_uri")
                    out["name:" + uri.rsplit("/", 1)[1]] += 1
    return out


def _uploads(emu: EmulatorProcess) -> Counter[str]:
    """Files created by a finished upload, by name (the log keeps the upload's stat, not the name: the
    names come from files.list while they live; here every upload's name is its content's)."""
    stats = _get(emu.base_url + "/_emulator/stats")["by_method"]
    return Counter({"files.upload": stats.get("files.upload", 0), "files.delete": stats.get("files.delete", 0)})


def _listed(emu: EmulatorProcess) -> list[str]:
    from google import genai
    from google.genai import types

    sdk = genai.Client(api_key="dummy", http_options=types.HttpOptions(base_url=emu.base_url))
    return [str(f.name) for f in sdk.files.list(config=types.ListFilesConfig(page_size=100))]


def _cmd(src: Path, out: Path) -> list[str]:
    schema = src.parent / "invoice.json"
    schema.write_text(json.dumps(SCHEMA))
    return [sys.executable, "-m", "flashlane", "run", "extract", str(src), "--schema", str(schema),
            "-o", str(out), "--no-cache", "--quiet", "--concurrency", "8"]


@pytest.fixture
def slow_emu() -> Any:
    emu = EmulatorProcess("--latency-scale", "0.02")
    yield emu
    emu.stop()


def test_a_folder_run_uploads_large_files_once_and_survives_sigkill(tmp_path: Path, slow_emu: Any) -> None:
    files = make_folder(tmp_path / "invoices")
    large = {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items() if len(d) > inline_file_budget(INLINE_MAX)}
    out = tmp_path / "out.jsonl"
    db = Path(f"{out}.flashlane.db")
    env = subprocess_env(slow_emu.base_url, FLASHLANE_INLINE_MAX_BYTES=str(INLINE_MAX))
    proc = subprocess.Popen(_cmd(tmp_path / "invoices", out), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: len(finished_items(db)) >= 70 or proc.poll() is not None, timeout=120)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    alive = _listed(slow_emu)
    assert alive, "no large file was uploaded before the kill"
    assert all(n in {upload_name(h) for h in large.values()} for n in alive)  # named by their content
    assert len(alive) < len(large)

    final = subprocess.run(_cmd(tmp_path / "invoices", out), env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr

    # Every file once in the output, answered.
    rows = read_jsonl(out)
    assert sorted(r["path"] for r in rows) == sorted(files)
    assert all(r["status"] == "ok" for r in rows), [r for r in rows if r["status"] != "ok"][:2]
    # Each large file uploaded once (a file alive at the kill is found by its name, not uploaded
    # again), and every upload deleted at the end.
    counts = _uploads(slow_emu)
    assert counts["files.upload"] == len(large), counts
    assert counts["files.delete"] == len(large), counts
    assert _listed(slow_emu) == []
    # No row paid twice, but for the requests in flight at the kill (their answers were lost):
    # the ledger knows them, and the emulator served no other row twice.
    paid = _paid(slow_emu)
    def content(key: str) -> str:  # an upload's name carries a prefix of its content's hash
        if not key.startswith("name:fl-"):
            return key
        return next(h for h in large.values() if h.startswith(key.removeprefix("name:fl-").split("-")[0]))

    per_file: Counter[str] = Counter()
    for key, n in paid.items():
        per_file[content(key)] += n
    assert set(per_file) == {hashlib.sha256(d).hexdigest() for d in files.values()}
    twice = sum(n - 1 for n in per_file.values())
    con = __import__("sqlite3").connect(db)
    unanswered = con.execute("SELECT COUNT(*) FROM requests WHERE outcome IN ('sent', 'unanswered')").fetchone()[0]
    con.close()
    assert twice <= unanswered <= 8, (twice, unanswered)


def test_one_upload_per_content_reused_across_calls_and_deleted_on_close(gemini_emulator: Any) -> None:
    emu = gemini_emulator
    data = _png(0, large=True)
    with fl.Lane(base_url=emu.base_url, limits="off", inline_max_bytes=INLINE_MAX) as lane:
        first = lane.generate([fl.File(data), "what is this?"])
        lane.generate([fl.File(data), "and again?"])  # the same bytes: the same upload
        lane.generate([fl.File(_png(1, large=False)), "small: inline"])
        assert first.usage.prompt_tokens > 1000  # the image is billed from the uploaded file (Gemini 3: 1,120)
        assert emu.stats()["by_method"].get("files.upload") == 1
    assert emu.stats()["by_method"].get("files.delete") == 1  # the lane's uploads go when it closes
    refs = [p for r in emu.requests() if r["method"] == "generateContent" for c in r["contents"]
            for p in c.get("parts") or [] if p.get("fileData") or p.get("file_data")]
    assert len(refs) == 2


def test_a_file_the_server_lost_is_uploaded_again(gemini_emulator: Any) -> None:
    emu = gemini_emulator
    data = _pdf(3, large=True)
    with fl.Lane(base_url=emu.base_url, limits="off", inline_max_bytes=INLINE_MAX) as lane:
        lane.generate([fl.File(data), "total?"])
        emu.advance_clock(48 * 3600 + 60)  # past the Files API's 48 h: the file is gone
        lane.generate([fl.File(data), "total again?"])
    assert emu.stats()["by_method"].get("files.upload") == 2
    # The server's 403 for the expired file (the API's answer), then the same request with a new upload.
    statuses = [r["status"] for r in emu.requests() if r["method"] == "generateContent"]
    assert statuses == [200, 403, 200]


def test_a_batch_run_references_uploaded_files_and_joins_results_by_key(
        cli_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = cli_env
    monkeypatch.setenv("FLASHLANE_INLINE_MAX_BYTES", str(INLINE_MAX))
    files = make_folder(tmp_path / "invoices")
    large = {hashlib.sha256(d).hexdigest() for d in files.values() if len(d) > inline_file_budget(INLINE_MAX)}
    schema = tmp_path / "invoice.json"
    schema.write_text(json.dumps(SCHEMA))
    plain, shuffled = tmp_path / "plain.jsonl", tmp_path / "shuffled.jsonl"
    run = ["run", "extract", str(tmp_path / "invoices"), "--schema", str(schema), "--no-cache", "-q",
           "--service-tier", "batch", "--batch-inline-max-bytes", "1000"]  # a file job: its JSONL uploaded
    # Submitted and left (--detach): the job's lines can be read before it is collected.
    assert run_cli(*run, "-o", str(plain), "--detach") == 0
    assert emu.stats()["by_method"].get("files.upload") == len(large) + 1  # the large media, then the JSONL
    store = RunStore(Path(f"{plain}.flashlane.db"), create=False)
    try:
        (job_file,) = [r.file_name for r in store.batch.all()]
    finally:
        store.close()
    from google import genai
    from google.genai import types

    sdk = genai.Client(api_key="dummy", http_options=types.HttpOptions(base_url=emu.base_url))
    lines = [json.loads(x) for x in sdk.files.download(file=str(job_file)).splitlines() if x.strip()]
    parts = [p for line in lines for c in line["request"]["contents"] for p in c["parts"]]
    refs = [p.get("fileData") or p.get("file_data") for p in parts if p.get("fileData") or p.get("file_data")]
    inline = [p for p in parts if p.get("inlineData") or p.get("inline_data")]
    assert len(lines) == N_FILES and len(refs) == len(large) and len(inline) == N_FILES - len(large)
    uploaded = {str(f.name) for f in sdk.files.list(config=types.ListFilesConfig(page_size=100))}
    assert {"files/" + (r.get("fileUri") or r.get("file_uri")).rsplit("/files/", 1)[1] for r in refs} <= uploaded
    assert run_cli(*run, "-o", str(plain)) == 0  # collected
    assert [str(f.name) for f in sdk.files.list()] == []  # media, job file and results file deleted
    # The same folder again, the job's results shuffled: each row still gets its own answer (joined by key).
    emu.reset()
    scenario(emu.base_url, {"match": {"method": "batchGenerateContent"}, "action": {"shuffle": True}})
    assert run_cli(*run, "-o", str(shuffled)) == 0
    a = {r["id"]: r["result"] for r in read_jsonl(plain)}
    b = {r["id"]: r["result"] for r in read_jsonl(shuffled)}
    assert sorted(a) == sorted(files) and a == b
    assert len({json.dumps(v, sort_keys=True) for v in a.values()}) > N_FILES // 2  # a position join would show
    usage = {r["id"]: r["usage"]["prompt_tokens"] for r in read_jsonl(plain)}
    assert min(usage.values()) > 560  # every row billed its file's pages or image (uploaded ones too)


def test_uploads_stay_under_the_storage_quota(gemini_emulator: Any) -> None:
    emu = gemini_emulator
    with fl.Lane(base_url=emu.base_url, limits="off", inline_max_bytes=INLINE_MAX, files_quota_bytes=100_000) as lane:
        for i in range(3):  # ~43 KB each: the third needs room, and the first is in no request's way
            lane.generate([fl.File(_png(i, large=True)), "what is it?"])
        methods = emu.stats()["by_method"]
        assert methods.get("files.upload") == 3 and methods.get("files.delete") == 1
        big = io.BytesIO()
        Image.frombytes("RGB", (200, 200), os.urandom(200 * 200 * 3)).save(big, "PNG")  # ~120 KB: never fits
        with pytest.raises(fl.InputError, match="larger than the Files API storage") as e:
            lane.generate([fl.File(big.getvalue()), "and this?"])
        assert "FLASHLANE_FILES_QUOTA_BYTES" in (e.value.hint or "")
