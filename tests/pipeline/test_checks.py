"""Checked before paying (issue 20): malformed task files and inputs are refused with one line
naming the key or the line, exit 2, before any request, leaving no run database or lock; inputs
as people have them (semicolon and tab CSV) run without options; the messages say what is wrong."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli

from .conftest import LABELS, read_jsonl, reviews, scenario, write_csv

DEEP = 1000  # the schema "nested 1,000 deep"


def _deep_output_table() -> str:
    """An inline [output] table nested DEEP levels (dotted table headers: tomllib reads them without recursing)."""
    return "[output]\ntype = \"object\"\n[output." + ".".join(["properties.a"] * DEEP) + ']\ntype = "string"\n'


# The ten: (what, task file or None for classify, input file name, input content, what the line names)
CASES = [
    ("template = 7", 'template = 7\n', "in.csv", None, "'template'"),
    ("instructions = [1, 2]", 'template = "{text}"\ninstructions = [1, 2]\n', "in.csv", None, "'instructions'"),
    ("name = 5", 'name = 5\ntemplate = "{text}"\n', "in.csv", None, "'name'"),
    ("answer_tokens = -1", 'template = "{text}"\nanswer_tokens = -1\n', "in.csv", None, "'answer_tokens'"),
    ('answer_tokens = "many"', 'template = "{text}"\nanswer_tokens = "many"\n', "in.csv", None, "'answer_tokens'"),
    ('template = "{text"', 'template = "{text"\n', "in.csv", None, "'template'"),
    ("defaults = 3", 'template = "{text}"\ndefaults = 3\n', "in.csv", None, "'defaults'"),
    ("schema nested 1,000 deep", 'template = "{text}"\n' + _deep_output_table(), "in.csv", None, "[output] table"),
    ("5,000-digit integer in JSONL", None, "in.jsonl",
     '{"id": "1", "text": "fine"}\n{"id": "2", "text": "big", "n": ' + "9" * 5000 + "}\n", "line 2"),
    ("\\ud800 escape in JSONL", None, "in.jsonl", '{"id": "1", "text": "fine"}\n{"id": "2", "text": "\\ud800"}\n',
     "line 2"),
]


@pytest.mark.parametrize("what,task_file,name,content,names", CASES, ids=[c[0] for c in CASES])
def test_malformed_task_files_and_inputs_refused_before_any_request(
        tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str],
        what: str, task_file: str | None, name: str, content: str | None, names: str) -> None:
    src = tmp_path / name
    if content is None:
        write_csv(src, reviews(3))
    else:
        src.write_text(content, encoding="utf-8")
    task = ["classify", "--labels", LABELS] if task_file is None else [str(tmp_path / "task.toml")]
    if task_file is not None:
        (tmp_path / "task.toml").write_text(task_file, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, _, err = cli(capsys, "run", task[0], str(src), *task[1:], "-o", str(out), "-q")
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and names in errors[0], err
    assert len(err.strip().splitlines()) <= 2 and "Traceback" not in err  # the error line and its hint
    assert cli_env.stats()["requests_total"] == 0  # nothing sent, nothing paid
    assert not list(tmp_path.glob("out.jsonl*"))  # no output, no run database, no lock


def test_template_7_is_refused_naming_the_types(tmp_path: Path, cli_env: Any,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Before issue 20 it ran, sending "7" instead of each row, every row "ok"."""
    (tmp_path / "t.toml").write_text("template = 7\n", encoding="utf-8")
    code, _, err = cli(capsys, "run", str(tmp_path / "t.toml"), str(write_csv(tmp_path / "r.csv", reviews(2))), "-q")
    assert code == 2
    assert "'template' in task file" in err and "must be text, not an integer (7)" in err


def test_dangling_ref_in_a_schema_file_is_found_before_paying(tmp_path: Path, cli_env: Any,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"who": {"$ref": "#/$defs/Person"}}}))
    src = write_csv(tmp_path / "r.csv", reviews(16))
    code, _, err = cli(capsys, "run", "extract", str(src), "--schema", str(schema), "--column", "text", "-q")
    assert code == 2
    assert f"schema file {schema} at $.properties.who.$ref: '#/$defs/Person' points to nothing" in err
    assert f"hint: fix schema file {schema}" in err
    assert cli_env.stats()["requests_total"] == 0


def test_schema_errors_give_the_json_path_and_a_hint_for_where_it_is(tmp_path: Path, cli_env: Any,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    src = str(write_csv(tmp_path / "r.csv", reviews(2)))
    (tmp_path / "t.toml").write_text('template = "{text}"\n[output]\ntype = "object"\nproperties.label.type = "strng"\n')
    code, _, err = cli(capsys, "run", str(tmp_path / "t.toml"), src, "-q")
    assert code == 2
    assert "at $.properties.label.type: 'strng' is not valid" in err
    assert "hint: fix the [output] table of task file" in err and "schema file" not in err


def test_semicolon_and_tab_files_run_without_options(tmp_path: Path, cli_env: Any,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Excel in much of Europe writes semicolons (the comma is the decimal mark); texts hold commas.
    semi = tmp_path / "semi.csv"
    semi.write_text("id;text\n1;Sehr gut, danke\n2;Kaputt, leider\n3;Geht so\n", encoding="utf-8")
    tab = tmp_path / "tab.csv"  # tab-separated, saved under a .csv name
    tab.write_text("id\ttext\n1\tgood, really\n2\tbad; broke\n", encoding="utf-8")
    for src, n in ((semi, 3), (tab, 2)):
        out = tmp_path / f"{src.stem}.jsonl"
        code, _, err = cli(capsys, "run", "classify", str(src), "--labels", LABELS, "-o", str(out), "-q")
        assert code == 0, err
        rows = read_jsonl(out)
        assert [r["id"] for r in rows] == [str(i) for i in range(1, n + 1)]
        assert all(r["status"] == "ok" for r in rows) and "," in rows[0]["text"]


def test_the_hint_says_how_columns_were_split_and_delimiter_forces_one(tmp_path: Path, cli_env: Any,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "semi.csv"
    src.write_text("id;body\n1;fine\n", encoding="utf-8")
    code, _, err = cli(capsys, "run", "classify", str(src), "--labels", LABELS, "--column", "text", "-q")
    assert code == 2
    assert "available columns: id, body" in err and "split on semicolons (detected)" in err
    code, _, err = cli(capsys, "run", "classify", str(src), "--labels", LABELS, "--column", "text", "-q",
                       "--delimiter", ",")
    assert code == 2 and "available columns: id;body" in err and "split on commas (--delimiter)" in err
    code, _, err = cli(capsys, "run", "classify", str(src), "--labels", LABELS, "--column", "body", "-q",
                       "--delimiter", ";")
    assert code == 0, err


def test_output_equal_to_the_input_is_refused(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "r.csv", reviews(3))
    before = src.read_bytes()
    for out in (str(src), str(tmp_path / "." / "r.csv")):
        code, _, err = cli(capsys, "run", "classify", str(src), "--labels", LABELS, "-o", out, "-q")
        assert code == 2 and "is the input file" in err
    assert src.read_bytes() == before
    assert cli_env.stats()["requests_total"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv"]


def test_refused_runs_leave_nothing_and_the_lock_goes_with_the_run(tmp_path: Path, cli_env: Any,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.jsonl"
    src = write_csv(tmp_path / "r.csv", reviews(3))
    broken = tmp_path / "b.jsonl"
    broken.write_text('{"text": "a"}\n{"text": \n', encoding="utf-8")
    empty = tmp_path / "e.csv"
    empty.write_text("", encoding="utf-8")
    for args in ((str(tmp_path / "missing.csv"),), (str(src), "--column", "nope"), (str(empty),), (str(broken),)):
        code, _, err = cli(capsys, "run", "classify", *args, "--labels", LABELS, "-o", str(out), "-q")
        assert code == 2, err
        assert not list(tmp_path.glob("o.jsonl*")), (args, list(tmp_path.iterdir()))
    code, _, err = cli(capsys, "run", "classify", str(src), "--labels", LABELS, "-o", str(out), "-q")
    assert code == 0, err
    assert Path(f"{out}.flashlane.db").is_file() and not Path(f"{out}.flashlane.db.lock").exists()
    # A refused rerun of a run that did work keeps its database (it records what was paid for).
    code, _, err = cli(capsys, "run", "classify", str(src), "--labels", "pos,neg", "-o", str(out), "-q")
    assert code == 2 and f"labels: {LABELS} → pos,neg" in err
    assert Path(f"{out}.flashlane.db").is_file() and not Path(f"{out}.flashlane.db.lock").exists()


def test_report_accepts_the_output_file(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.jsonl"
    src = write_csv(tmp_path / "r.csv", reviews(3))
    assert cli(capsys, "run", "classify", str(src), "--labels", LABELS, "-o", str(out), "-q")[0] == 0
    code, stdout, err = cli(capsys, "report", str(out), "--json")
    assert code == 0, err
    assert json.loads(stdout)["items"]["ok"] == 3


def test_quiet_still_says_why_it_exits_1(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    scenario(cli_env.base_url, {"match": {"prompt_contains": "row-0001"}, "action": {"error": 400}})
    src = write_csv(tmp_path / "r.csv", reviews(3))
    code, _, err = cli(capsys, "run", "classify", str(src), "--labels", LABELS, "-q")
    assert code == 1
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        line for line in err.splitlines() if "1 of 3 rows failed" in line]


def test_refused_connection_fails_at_once_naming_url_and_source(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import time

    with socket.socket() as s:  # a port nobody listens on: bound, never listening, so connects are refused
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", url)
        started = time.monotonic()
        code, _, err = cli(capsys, "ask", "hello")
        assert time.monotonic() - started < 5
        assert code == 2 and f"cannot connect to {url} (set by GOOGLE_GEMINI_BASE_URL)" in err
        code, _, err = cli(capsys, "ask", "hello", "--base-url", url)
        assert code == 2 and f"cannot connect to {url} (set by --base-url)" in err
        monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL")
        config = tmp_path / "flashlane.toml"
        config.write_text(f'base_url = "{url}"\n', encoding="utf-8")
        monkeypatch.setenv("FLASHLANE_CONFIG", str(config))
        code, _, err = cli(capsys, "ask", "hello")
        assert code == 2 and f"(set by base_url in config file {config})" in err


def test_malformed_answers_are_no_outage_once_the_server_has_answered(tmp_path: Path, cli_env: Any,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """20 malformed answers in a row stopped a run as an "outage" after 16 requests before
    issue 20: a server that answers is not down. Here 12 in a row (the breaker opens at 10),
    two attempts per row so the test does not wait out long backoffs: 6 rows fail, the run goes on."""
    monkeypatch.setenv("FLASHLANE_MAX_ATTEMPTS", "2")
    garbled = {"raw_body": "<html>oops</html>", "content_type": "text/html"}
    scenario(cli_env.base_url, {"match": {"nth": list(range(2, 14))}, "action": garbled})
    src = write_csv(tmp_path / "r.csv", reviews(30))
    out = tmp_path / "o.jsonl"
    code, _, err = cli(capsys, "run", "classify", str(src), "--labels", LABELS, "--concurrency", "1", "-o", str(out))
    assert "outage" not in err
    assert code == 1, err
    assert [r["status"] for r in read_jsonl(out)].count("failed") == 6
    assert cli_env.stats()["requests_total"] == 30 + 6


def test_malformed_answers_from_the_first_are_an_outage(tmp_path: Path, cli_env: Any,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A URL that never answered properly (the wrong server, a proxy's error page) still stops the run."""
    monkeypatch.setenv("FLASHLANE_MAX_ATTEMPTS", "2")
    scenario(cli_env.base_url, {"action": {"raw_body": "<html>oops</html>", "content_type": "text/html"}})
    src = write_csv(tmp_path / "r.csv", reviews(30))
    code, _, err = cli(capsys, "run", "classify", str(src), "--labels", LABELS, "--concurrency", "1", "-q")
    assert code == 1 and "outage:" in err
    assert cli_env.stats()["requests_total"] < 30
