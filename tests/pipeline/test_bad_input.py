"""Bad input: one clear line, exit 2, nothing done lost; a too-large row is a recorded failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .conftest import LABELS, read_jsonl, reviews, run_cli, write_csv


def _run(capsys: pytest.CaptureFixture[str], src: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = run_cli("run", "classify", str(src), "--labels", LABELS, "-q", *extra)
    return code, capsys.readouterr().err


def test_malformed_csv_line(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.csv"
    src.write_text('id,text\n1,fine\n2,"unterminated "quote" here\n3,ok\n', encoding="utf-8")
    code, err = _run(capsys, src, "--column", "text")
    assert code == 2
    assert "line 3" in err and "malformed CSV" in err
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err


def test_too_many_fields(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "bad.csv"
    src.write_text("id,text\n1,fine\n2,a,b,c\n", encoding="utf-8")
    code, err = _run(capsys, src, "--column", "text")
    assert code == 2 and "line 3" in err and "4 fields but the header has 2" in err


def test_missing_column_lists_available(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", [{"id": "1", "body": "x", "title": "y"}])
    code, err = _run(capsys, src, "--column", "text")
    assert code == 2
    assert "column 'text' is not in the input; available columns: id, body, title" in err


def test_template_field_missing(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", [{"id": "1", "body": "x"}])
    code, err = _run(capsys, src, "--template", "{title}: {body}")
    assert code == 2 and "'title'" in err and "available columns: id, body" in err


@pytest.mark.parametrize("name,content", [("e.csv", b""), ("e2.csv", b"id,text\n"), ("e.jsonl", b"\n\n"),
                                          ("e.json", b"[]")])
def test_empty_file(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str], name: str,
                    content: bytes) -> None:
    src = tmp_path / name
    src.write_bytes(content)
    code, err = _run(capsys, src, "--column", "text")
    assert code == 2 and "is empty" in err


def test_non_utf8_names_offset_and_encoding_option(tmp_path: Path, cli_env: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "latin.csv"
    src.write_bytes("id,text\n1,fine\n2,caf\xe9 cr\xe8me\n".encode("latin-1"))
    code, err = _run(capsys, src, "--column", "text")
    assert code == 2
    assert "not valid utf-8" in err and "line 3" in err and "byte offset 20" in err and "--encoding" in err
    out = tmp_path / "o.jsonl"
    code, err = _run(capsys, src, "--column", "text", "--encoding", "latin-1", "-o", str(out))
    assert code == 0, err
    assert [r["status"] for r in read_jsonl(out)] == ["ok", "ok"]


def test_unknown_extension_and_missing_file(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(capsys, tmp_path / "nope.csv", "--column", "text")
    assert code == 2 and "does not exist" in err
    (tmp_path / "x.dat").write_text("a")
    code, err = _run(capsys, tmp_path / "x.dat", "--column", "text")
    assert code == 2 and "--format" in err


def test_too_large_row_is_a_failure_and_run_goes_on(tmp_path: Path, cli_env: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rows = reviews(4)
    rows[2]["text"] = "word " * 850_000  # ~4.25M chars, past the 1,048,576-token context
    src = write_csv(tmp_path / "big.csv", rows)
    out = tmp_path / "o.jsonl"
    code, err = _run(capsys, src, "--column", "text", "-o", str(out), "--pack", "auto")
    assert code == 1  # a row failed
    got = read_jsonl(out)
    assert [r["status"] for r in got] == ["ok", "ok", "failed", "ok"]
    assert got[2]["reason"] == "too_large" and "input limit" in got[2]["error"]
    fails = read_jsonl(Path(f"{out}.failures.jsonl"))
    assert [f["reason"] for f in fails] == ["too_large"]
    assert all("word word" not in (e["prompt"] or "") for e in cli_env.requests())


def test_input_error_after_work_keeps_it(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(6))
    out = tmp_path / "o.jsonl"
    code, _ = _run(capsys, src, "--column", "text", "-o", str(out))
    assert code == 0
    before = out.read_bytes()
    code, err = _run(capsys, src, "--column", "nope", "-o", str(out))
    assert code == 2
    assert out.read_bytes() == before
