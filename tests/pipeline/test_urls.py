"""Media by URL (issue 22): ``fl.File("https://...")`` is fetched once per process, streamed to a
temporary file, typed and priced from its content, then sent like a local file (inline, or uploaded
when large). Offline: a local HTTP server serves the files, the emulator answers."""

from __future__ import annotations

import base64
import http.server
import threading
from collections import Counter
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import flashlane as fl
from flashlane.media import GEMINI3_PDF_PAGE_TOKENS
from tests.conftest import cli

from .conftest import read_jsonl, write_csv
from .test_uploads import INLINE_MAX, _pdf, _png


class _Site:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: Counter[str] = Counter()
        site = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                site.hits[self.path] += 1
                super().do_GET()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[_Site]:
    root = tmp_path / "site"
    root.mkdir()
    s = _Site(root)
    yield s
    s.server.shutdown()


def test_a_url_is_fetched_once_and_sent_like_a_local_file(emu: Any, site: _Site) -> None:
    (site.root / "inv.pdf").write_bytes(pdf := _pdf(1, large=False))
    (site.root / "scan.png").write_bytes(_png(2, large=True))
    with fl.Lane(base_url=emu.base_url, limits="off", inline_max_bytes=INLINE_MAX) as lane:
        doc = fl.File(f"{site.url}/inv.pdf")
        assert doc.mime_type == "application/pdf" and doc.info.pages == 2  # typed from the content
        first = lane.generate([doc, "total?"])
        lane.generate([fl.File(f"{site.url}/inv.pdf"), "vendor?"])  # the same URL: not fetched again
        lane.generate([fl.File(f"{site.url}/scan.png"), "what is it?"])  # large: uploaded, not inline
        assert emu.stats()["by_method"].get("files.upload") == 1
    assert site.hits == {"/inv.pdf": 1, "/scan.png": 1}
    assert first.usage.prompt_tokens >= 2 * GEMINI3_PDF_PAGE_TOKENS
    blob = next(p.get("inlineData") or p.get("inline_data") for r in emu.requests() if r["method"] == "generateContent"
                for c in r["contents"] for p in c.get("parts") or [] if p.get("inlineData") or p.get("inline_data"))
    raw = blob["data"].replace("-", "+").replace("_", "/")
    assert base64.b64decode(raw + "=" * (-len(raw) % 4)) == pdf  # the very bytes the server had


def test_a_run_over_a_column_of_urls_and_a_url_that_cannot_be_fetched(
        cli_env: Any, site: _Site, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(6):
        (site.root / f"{i}.pdf").write_bytes(_pdf(i, large=False))
    src = write_csv(tmp_path / "scans.csv", [{"id": str(i), "scan": f"{site.url}/{i}.pdf"} for i in range(6)])
    schema = tmp_path / "total.json"
    schema.write_text('{"type": "object", "properties": {"total": {"type": "number"}}, "required": ["total"]}')
    out = tmp_path / "out.jsonl"
    code, _, err = cli(capsys, "run", "extract", str(src), "--media-column", "scan", "--schema", str(schema),
                       "-o", str(out), "-q")
    assert code == 0, err
    assert sorted(r["id"] for r in read_jsonl(out)) == [str(i) for i in range(6)]
    assert all(r["status"] == "ok" for r in read_jsonl(out))
    bad = write_csv(tmp_path / "bad.csv", [{"id": "1", "scan": f"{site.url}/missing.pdf"}])
    before = cli_env.stats()["requests_total"]
    code, _, err = cli(capsys, "run", "extract", str(bad), "--media-column", "scan", "--schema", str(schema),
                       "-o", str(tmp_path / "bad.jsonl"), "-q")
    assert code == 2 and f"cannot fetch {site.url}/missing.pdf: 404" in err
    assert len(err.strip().splitlines()) <= 2  # one line, and the hint
    assert cli_env.stats()["requests_total"] == before  # refused before anything was sent
