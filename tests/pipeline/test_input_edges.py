"""Input edge cases: very wide files, deep JSON, a CSV cut mid-row, nested values as text."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import LABELS, read_jsonl, run_cli


def _run(capsys: pytest.CaptureFixture[str], src: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = run_cli("run", "classify", str(src), "--labels", LABELS, "-q", *extra)
    return code, capsys.readouterr().err


def test_hundred_thousand_columns(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    names = [f"c{i}" for i in range(100_000)]
    src = tmp_path / "wide.csv"
    src.write_text(",".join(names) + "\n" + ",".join("x" for _ in names) + "\n", encoding="utf-8")
    t0 = time.monotonic()
    code, err = _run(capsys, src, "--column", "nope", "-o", str(tmp_path / "o.jsonl"))
    assert code == 2 and "column 'nope' is not in the input" in err
    dup = tmp_path / "dup.csv"
    dup.write_text(",".join([*names, "c5"]) + "\n", encoding="utf-8")
    code, err = _run(capsys, dup, "--column", "c1", "-o", str(tmp_path / "o2.jsonl"))
    assert code == 2 and "repeated column name 'c5'" in err
    assert time.monotonic() - t0 < 60  # was 82 s for the duplicate check alone (quadratic)


@pytest.mark.parametrize("name,content", [
    ("deep.jsonl", '{"text": "ok"}\n{"text": ' + "[" * 100_000 + "]" * 100_000 + "}\n"),
    ("deep.json", "[" * 100_000 + "]" * 100_000),
])
def test_deeply_nested_json_is_an_input_error(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str],
                                              name: str, content: str) -> None:
    src = tmp_path / name
    src.write_text(content, encoding="utf-8")
    code, err = _run(capsys, src, "-o", str(tmp_path / "o.jsonl"))
    assert code == 2, err
    assert "nested too deeply" in err and "Traceback" not in err and "RecursionError" not in err


def test_csv_cut_mid_row_warns_once(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "cut.csv"
    src.write_text("id,text,stars\n1,fine,5\n2,also fine,4\n3,cut he", encoding="utf-8")  # no final newline
    out = tmp_path / "o.jsonl"
    code, err = _run(capsys, src, "--column", "text", "-o", str(out))
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "line 4" in warnings[0] and "2 of 3 fields" in warnings[0] and "cut off" in warnings[0]
    assert len(read_jsonl(out)) == 3
    whole = tmp_path / "whole.csv"
    whole.write_text("id,text,stars\n1,fine,5\n2,short\n", encoding="utf-8")  # short but ends with a newline
    code, err = _run(capsys, whole, "--column", "text", "-o", str(tmp_path / "o2.jsonl"))
    assert code == 0 and "warning" not in err


def test_list_and_dict_values_are_sent_as_json(tmp_path: Path, cli_env: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "nested.jsonl"
    rows = [{"text": ["great", "fast shipping"]}, {"text": {"title": "Broke", "body": "after a week"}}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, err = _run(capsys, src, "-o", str(tmp_path / "o.jsonl"), "--no-cache")
    assert code == 0, err
    prompts = "\n".join(e["prompt"] or "" for e in cli_env.requests())
    assert '["great", "fast shipping"]' in prompts and '{"title": "Broke", "body": "after a week"}' in prompts
    assert "['great'" not in prompts and "{'title'" not in prompts


def test_binary_input_is_not_text(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "photo.csv"
    src.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    code, err = _run(capsys, src, "--column", "text", "-o", str(tmp_path / "o.jsonl"))
    assert code == 2
    assert "is not text" in err and "--encoding" not in err.splitlines()[0]
    pq_named_csv = tmp_path / "data.csv"
    pq_named_csv.write_bytes(b"PAR1" + b"\x00" * 64)
    code, err = _run(capsys, pq_named_csv, "--column", "text", "-o", str(tmp_path / "o.jsonl"))
    assert code == 2 and "looks like a Parquet file" in err and "--format parquet" in err
