"""flashlane run end to end: formats in and out, budget, cache, parking, report."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import LABELS, read_jsonl, reviews, run_cli, scenario, write_csv


def _classify(src: Path, *extra: str) -> int:
    return run_cli("run", "classify", str(src), "--labels", LABELS, "-q", *extra)


@pytest.mark.parametrize("fmt", ["jsonl", "json", "tsv", "parquet"])
def test_input_formats(tmp_path: Path, cli_env: Any, fmt: str) -> None:
    rows = reviews(5)
    src = tmp_path / f"in.{fmt}"
    if fmt == "jsonl":
        src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif fmt == "json":
        src.write_text(json.dumps(rows))
    elif fmt == "tsv":
        src.write_text("id\ttext\n" + "".join(f"{r['id']}\t{r['text']}\n" for r in rows))
    else:
        pq.write_table(pa.Table.from_pylist(rows), src)
    assert _classify(src, "--column", "text", "--id-column", "id") == 0
    out = read_jsonl(tmp_path / "in.classify.jsonl")  # the default output name
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    assert all(r["result"]["label"] in LABELS.split(",") for r in out)


def test_stdin_input(tmp_path: Path, cli_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = "".join(json.dumps(r) + "\n" for r in reviews(3)).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "o.jsonl"
    assert run_cli("run", "classify", "-", "--format", "jsonl", "--labels", LABELS, "-q", "-o", str(out)) == 0
    assert len(read_jsonl(out)) == 3


def test_csv_output_is_flat_and_multiline_safe(tmp_path: Path, cli_env: Any) -> None:
    rows = reviews(4)
    rows[1]["text"] = 'line one\nline "two", with comma — and ünïcode'
    src = write_csv(tmp_path / "r.csv", rows)
    out = tmp_path / "r.out.csv"
    assert _classify(src, "--column", "text", "-o", str(out), "--pack", "2") == 0
    with open(out, newline="", encoding="utf-8") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 4
    assert {"id", "status", "label", "labels", "confidence", "reasoning", "prompt_tokens", "cost_usd"} <= set(got[0])
    assert json.loads(got[0]["labels"]) == [got[0]["label"]]


def test_parquet_output(tmp_path: Path, cli_env: Any) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(6))
    out = tmp_path / "r.parquet"
    assert _classify(src, "--column", "text", "-o", str(out), "--template", "Review: {text}") == 0
    table = pq.read_table(out).to_pylist()
    assert len(table) == 6 and all(r["status"] == "ok" for r in table)
    assert table[0]["label"] in LABELS.split(",")


def test_budget_stops_before_passing_it_and_resumes(tmp_path: Path, cli_env: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(40))
    out = tmp_path / "o.jsonl"
    budget = 0.002
    code = _classify(src, "--column", "text", "-o", str(out), "--budget-usd", str(budget), "--concurrency", "4")
    assert code == 1
    assert "budget" in capsys.readouterr().err
    rows = read_jsonl(out)
    spent = sum(r["cost_usd"] for r in rows)
    done = [r for r in rows if r["status"] == "ok"]
    assert 0 < len(done) < 40 and spent <= budget
    assert all(r["status"] in ("ok", "pending") for r in rows)
    assert _classify(src, "--column", "text", "-o", str(out), "--budget-usd", "1") == 0
    assert all(r["status"] == "ok" for r in read_jsonl(out))


def test_cache_makes_a_repeat_free(tmp_path: Path, cli_env: Any) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(10))
    assert _classify(src, "--column", "text", "-o", str(tmp_path / "a.jsonl"), "--pack", "5") == 0
    before = cli_env.stats()["requests_total"]
    assert _classify(src, "--column", "text", "-o", str(tmp_path / "b.jsonl")) == 0  # new run db, no packing
    assert cli_env.stats()["requests_total"] == before
    b = read_jsonl(tmp_path / "b.jsonl")
    assert all(r["cached"] and r["cost_usd"] == 0 for r in b)
    a = read_jsonl(tmp_path / "a.jsonl")
    assert [r["result"] for r in a] == [r["result"] for r in b]
    assert _classify(src, "--column", "text", "-o", str(tmp_path / "c.jsonl"), "--no-cache") == 0
    assert cli_env.stats()["requests_total"] == before + 10


def test_per_day_quota_parks_the_run(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    scenario(cli_env.base_url, {"match": {"nth": [3, 4, 5, 6, 7, 8, 9, 10]}, "action": {"error": 429, "quota": "rpd"}})
    src = write_csv(tmp_path / "r.csv", reviews(8))
    out = tmp_path / "o.jsonl"
    code = _classify(src, "--column", "text", "-o", str(out), "--concurrency", "1", "--no-cache")
    err = capsys.readouterr().err
    assert code == 1
    assert "parked" in err and "Pacific" in err and "local" in err
    rows = read_jsonl(out)
    assert [r["status"] for r in rows] == ["ok", "ok"] + ["pending"] * 6  # never "failed"
    scenario(cli_env.base_url)  # the quota is back
    assert _classify(src, "--column", "text", "-o", str(out), "--concurrency", "1", "--no-cache") == 0
    assert all(r["status"] == "ok" for r in read_jsonl(out))


def test_row_failure_is_recorded_and_retry_failed(tmp_path: Path, cli_env: Any) -> None:
    scenario(cli_env.base_url, {"match": {"prompt_contains": "row-0002"}, "action": {"block": "SAFETY"}})
    src = write_csv(tmp_path / "r.csv", reviews(4))
    out = tmp_path / "o.jsonl"
    assert _classify(src, "--column", "text", "-o", str(out), "--no-cache") == 1
    rows = read_jsonl(out)
    assert rows[2]["status"] == "failed" and rows[2]["reason"] == "safety"
    assert read_jsonl(Path(f"{out}.failures.jsonl"))[0]["id"] == rows[2]["id"]
    scenario(cli_env.base_url)
    assert _classify(src, "--column", "text", "-o", str(out), "--no-cache") == 1  # failures stay failures
    assert _classify(src, "--column", "text", "-o", str(out), "--no-cache", "--retry-failed") == 0


def test_report_text_and_json(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(9))
    out = tmp_path / "o.jsonl"
    assert _classify(src, "--column", "text", "-o", str(out), "--pack", "3", "--no-cache") == 0
    capsys.readouterr()
    assert run_cli("report", f"{out}.flashlane.db") == 0
    text = capsys.readouterr().out
    for needle in ("9 total: 9 ok, 0 failed", "tokens", "cost", "requests  3 (3 packed, 3.0 items each)",
                   "429s 0", "retries 0", "items/min"):
        assert needle in text, needle
    assert run_cli("report", f"{out}.flashlane.db", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["items"]["ok"] == 9 and data["requests"] == 3 and data["api_calls"] == 3
    assert data["tokens"]["input"] > 0 and data["cost_usd"] > 0 and data["rate_limited"] == 0
    assert run_cli("report", str(tmp_path / "missing.db")) == 2
    # the latency percentiles, streamed from SQLite in order (memory flat in rows), are statistics.quantiles'
    import sqlite3
    import statistics

    con = sqlite3.connect(f"{out}.flashlane.db")
    per_item = [d for (d,) in con.execute("SELECT r.ended - r.started FROM results s JOIN requests r "
                                          "ON r.id = s.request_id")]
    con.close()
    q = statistics.quantiles(per_item, n=100, method="inclusive")
    assert len(per_item) == 9 and data["latency_per_item_s"] == {"p50": round(q[49], 4), "p95": round(q[94], 4)}


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 101, 2_345])
def test_percentiles_from_a_sorted_stream_are_statistics_quantiles(n: int) -> None:
    import random
    import statistics

    from flashlane.pipeline.report import percentiles

    rng = random.Random(n)
    xs = [rng.uniform(0, 9) for _ in range(n)]
    q = [xs[0]] * 99 if n == 1 else statistics.quantiles(xs, n=100, method="inclusive")
    assert percentiles(xs) == {"p50": round(q[49], 4), "p95": round(q[94], 4)}


def test_identical_rows_are_asked_once(tmp_path: Path, cli_env: Any) -> None:
    rows = reviews(4) + [{"id": "dup", "text": reviews(1)[0]["text"]}]
    src = write_csv(tmp_path / "r.csv", rows)
    out = tmp_path / "o.jsonl"
    assert _classify(src, "--column", "text", "-o", str(out)) == 0
    assert cli_env.stats()["requests_total"] == 4
    got = read_jsonl(out)
    assert got[4]["result"] == got[0]["result"] and got[4]["cached"] and got[4]["cost_usd"] == 0
