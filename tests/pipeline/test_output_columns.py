"""Output keeps the input; the `id` column is the id; mistakes caught before any request."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from .conftest import LABELS, read_jsonl, run_cli, subprocess_env, write_csv

ROWS = [{"id": "A1", "text": "Fast shipping, great quality.", "stars": "5"},
        {"id": "B2", "text": "Broke after a week.", "stars": "1"},
        {"id": "C3", "text": "It is fine.", "stars": "3"}]
RESULT_FIELDS = {"label", "labels", "confidence", "reasoning"}


def _run(capsys: pytest.CaptureFixture[str], src: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = run_cli("run", "classify", str(src), "--column", "text", "--labels", LABELS, "-q", *extra)
    return code, capsys.readouterr().err


def _table(out: Path) -> list[dict[str, Any]]:
    if out.suffix == ".jsonl":
        return read_jsonl(out)
    if out.suffix == ".csv":
        with open(out, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    return list(pq.read_table(out).to_pylist())


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_input_columns_are_kept_and_id_is_the_id(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str],
                                                 ext: str) -> None:
    src = write_csv(tmp_path / "r.csv", ROWS)
    out = tmp_path / f"o.{ext}"
    code, err = _run(capsys, src, "-o", str(out))
    assert code == 0, err
    got = _table(out)
    assert [r["id"] for r in got] == ["A1", "B2", "C3"]
    assert [r["text"] for r in got] == [r["text"] for r in ROWS]
    assert [str(r["stars"]) for r in got] == ["5", "1", "3"]
    names = list(got[0])
    assert names[:3] == ["id", "text", "stars"] and names[3] == "status"
    assert [r["service_tier"] for r in got] == ["standard"] * 3  # the tier that served each row
    if ext == "jsonl":
        assert set(got[0]["result"]) >= RESULT_FIELDS
    else:
        assert set(names) >= RESULT_FIELDS


def test_no_input_columns_writes_id_and_results(tmp_path: Path, cli_env: Any,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", ROWS)
    out = tmp_path / "o.csv"
    code, err = _run(capsys, src, "-o", str(out), "--no-input-columns")
    assert code == 0, err
    got = _table(out)
    assert [r["id"] for r in got] == ["A1", "B2", "C3"]
    assert "text" not in got[0] and "stars" not in got[0] and "label" in got[0]


def test_name_clashes(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{**r, "label": "mine", "status": "shipped"} for r in ROWS]
    src = write_csv(tmp_path / "r.csv", rows)
    out = tmp_path / "o.csv"
    code, err = _run(capsys, src, "-o", str(out), "--labels", "good,bad")
    assert code == 0, err
    got = _table(out)[0]
    assert got["label"] == "mine" and got["result.label"] in ("good", "bad")  # the input keeps its name
    assert got["input.status"] == "shipped" and got["status"] == "ok"  # flashlane's own columns keep theirs
    jl = tmp_path / "o.jsonl"
    code, err = _run(capsys, src, "-o", str(jl), "--labels", "good,bad")
    first = read_jsonl(jl)[0]
    assert first["label"] == "mine" and first["result"]["label"] in ("good", "bad")
    assert first["input.status"] == "shipped" and first["status"] == "ok"


def test_id_column_must_be_unique_or_rows_numbered(tmp_path: Path, cli_env: Any,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", [*ROWS, {"id": "A1", "text": "again", "stars": "2"}])
    out = tmp_path / "o.jsonl"
    code, err = _run(capsys, src, "-o", str(out))
    assert code == 2
    assert "rows 1 and 4 share the id 'A1' (column 'id'" in err and "--id-column ''" in err
    code, err = _run(capsys, src, "-o", str(out), "--id-column", "")
    assert code == 0, err
    assert [r["id"].split("-")[0] for r in read_jsonl(out)] == ["1", "2", "3", "4"]


@pytest.mark.parametrize("model,message", [
    ("gemini-9-flash-nope", "model 'gemini-9-flash-nope' was not found"),
    ("gemini-3.1-flash-lite-preview", "was shut down"),
])
def test_wrong_model_fails_before_the_run_and_blocks_nothing(tmp_path: Path, cli_env: Any,
                                                             capsys: pytest.CaptureFixture[str], model: str,
                                                             message: str) -> None:
    src = write_csv(tmp_path / "r.csv", ROWS)
    out = tmp_path / "o.jsonl"
    code, err = _run(capsys, src, "-o", str(out), "--model", model)
    assert code != 0 and err.startswith("error: ") and message in err.splitlines()[0]
    assert not any(e.get("prompt") for e in cli_env.requests())  # no row was sent
    assert not out.exists()
    code, err = _run(capsys, src, "-o", str(out))  # the corrected command, no --fresh
    assert code == 0, err


def test_a_run_that_did_nothing_is_replaced(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", ROWS)
    out = tmp_path / "o.jsonl"
    code, _ = _run(capsys, src, "-o", str(out), "--budget-usd", "0.000000001")  # stops before the first request
    assert code == 1 and {r["status"] for r in read_jsonl(out)} == {"pending"}
    code, err = _run(capsys, src, "-o", str(out), "--labels", "good,bad")  # changed options, no --fresh
    assert code == 0, err
    assert {r["result"]["label"] for r in read_jsonl(out)} <= {"good", "bad"}


def test_parquet_output_without_pyarrow_fails_before_any_request(tmp_path: Path, cli_env: Any) -> None:
    shim = tmp_path / "shim" / "pyarrow"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('no pyarrow here')\n")
    src = write_csv(tmp_path / "r.csv", ROWS)
    env = subprocess_env(cli_env.base_url, PYTHONPATH=os.pathsep.join([str(shim.parent), *sys.path]))
    done = subprocess.run([sys.executable, "-m", "flashlane", "run", "classify", str(src), "--column", "text",
                           "--labels", LABELS, "-o", str(tmp_path / "o.parquet"), "-q"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: writing Parquet needs pyarrow")
    assert cli_env.stats()["requests_total"] == 0


def test_report_on_a_file_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, data in (("notes.txt", b"hello\n"), ("other.db", b"SQLite format 3\x00" + b"\x00" * 200)):
        path = tmp_path / name
        path.write_bytes(data)
        capsys.readouterr()
        assert run_cli("report", str(path)) == 2
        err = capsys.readouterr().err
        assert "not a flashlane run database" in err and "flashlane.db" in err
        assert "--run-db" not in err and "--fresh" not in err and "Traceback" not in err
