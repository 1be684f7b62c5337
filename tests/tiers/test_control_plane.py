"""Control-plane calls (batch jobs, files, context caches) are retried in the transport: a 503
while polling, uploading or creating never fails a run by itself, and no row is paid twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flashlane import Lane
from flashlane.clock import TestClock
from flashlane.tasks import Task
from tests.conftest import scenario
from tests.pipeline.conftest import read_jsonl, reviews, run_cli, write_csv
from tests.pipeline.test_context_cache import generate_log, guideline

LABELS = ["positive", "negative", "neutral"]


def test_a_batch_whose_get_answers_503_ten_times_finishes_every_row_once(emu: Any) -> None:
    scenario(emu.base_url, {"match": {"method": "batches.get"}, "times": 10, "action": {"error": 503}})
    texts = [f"review {i}: {'great' if i % 2 else 'awful'} kettle" for i in range(30)]
    # The test clock: the transport's backoff and the batch poll wait in virtual time.
    with Lane(base_url=emu.base_url, limits="off", clock=TestClock()) as lane:
        res = lane.map("classify", texts, labels=LABELS, service_tier="batch", cache=False)
    assert [r.index for r in res] == list(range(30)) and all(r.ok for r in res)
    stats = emu.batches(keys=True)
    assert sum(stats["jobs_created"].values()) == 1 and stats["keys_answered_twice"] == {}
    assert emu.stats()["by_status"].get("503") == 10


def test_a_file_upload_answering_503_twice_is_retried(cli_env: Any, tmp_path: Path) -> None:
    scenario(cli_env.base_url, {"match": {"method": "files.upload"}, "times": 2, "action": {"error": 503}})
    inp = write_csv(tmp_path / "in.csv", reviews(20))
    out = tmp_path / "out.jsonl"
    assert run_cli("run", "classify", str(inp), "--column", "text", "--labels", ",".join(LABELS), "-o", str(out),
                   "-q", "--no-cache", "--service-tier", "batch", "--batch-inline-max-bytes", "2000") == 0
    rows = read_jsonl(out)
    assert len(rows) == 20 and all(r["status"] == "ok" for r in rows)
    stats = cli_env.batches(keys=True)
    assert sum(stats["jobs_created"].values()) == 1 and stats["keys_answered_twice"] == {}
    assert cli_env.stats()["by_method"].get("files.upload") == 1  # the two refused starts never finished


def test_a_cache_creation_answering_503_twice_is_retried_and_used(emu: Any) -> None:
    emu.caches(implicit_rate=0.0)
    scenario(emu.base_url, {"match": {"method": "cachedContents.create"}, "times": 2, "action": {"error": 503}})
    task = Task(name="tone", item_template="{text}", reference=guideline(3000),
                output={"type": "object", "properties": {"tone": {"type": "string"}}, "required": ["tone"]})
    with Lane(base_url=emu.base_url, limits="off", clock=TestClock()) as lane:
        res = lane.map(task, [f"text {i}" for i in range(30)], pack=5)
    assert all(r.ok for r in res)
    c = emu.caches()
    assert (c["created"], c["deleted"]) == (1, 1)
    assert {r["cached_content"] for r in generate_log(emu)} == set(c["references"])  # no request went inline
