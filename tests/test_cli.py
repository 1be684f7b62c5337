"""The CLI: exit codes, one-line errors, --json output, offline --emulator runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import cli

LABELS = "positive,negative,neutral"


def run_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "flashlane", *args], capture_output=True, text=True, env=full_env,
                          timeout=60)


def test_ask_with_emulator_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "ask", "hi", "--emulator")
    assert code == 0 and out.strip()
    assert "emulator" in err


def test_ask_json_has_text_usage_and_cost(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "ask", "hi", "--emulator", "--json", "--max-output-tokens", "500")
    data = json.loads(out)
    assert code == 0 and data["text"] and data["usage"]["prompt_tokens"] > 0 and data["cost_usd"] > 0


def test_ask_stream(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "ask", "Write a paragraph about rivers.", "--stream", "--emulator")
    assert code == 0 and len(out.strip()) > 20


def test_retired_model_exits_1_naming_the_replacement() -> None:
    p = run_process("ask", "hi", "--emulator", env={"FLASHLANE_MODEL": "gemini-3.1-flash-lite-preview"})
    assert p.returncode == 1
    assert "gemini-3.1-flash-lite'" in p.stderr and "Traceback" not in p.stderr


def test_no_credentials_exit_2_two_lines_no_traceback() -> None:
    p = run_process("ask", "hi")
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert p.returncode == 2
    assert 1 <= len(lines) <= 2, p.stderr
    assert "Traceback" not in p.stderr and "GEMINI_API_KEY" in p.stderr and "--emulator" in p.stderr


def test_debug_shows_traceback() -> None:
    p = run_process("ask", "hi", env={"FLASHLANE_DEBUG": "1"})
    assert p.returncode != 0 and "Traceback" in p.stderr


def test_usage_error_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "ask")
    assert code == 2 and "PROMPT" in err
    code, _, err = cli(capsys, "ask", "hi", "--emulator", "--max-output-tokens", "zero")
    assert code == 2


def test_classify_json_label_is_one_of_the_labels(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "classify", "Fast shipping, great quality.", "--labels", LABELS, "--emulator", "--json")
    data = json.loads(out)
    assert code == 0 and data["label"] in LABELS.split(",") and "cost_usd" in data


def test_extract_translate_summarize(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                                  "required": ["name", "age"]}))
    code, out, _ = cli(capsys, "extract", "Bob is 42.", "--schema", str(schema), "--emulator", "--json")
    data = json.loads(out)
    assert code == 0 and isinstance(data["name"], str) and isinstance(data["age"], int)
    code, out, _ = cli(capsys, "translate", "Good morning", "--to", "fr", "--emulator", "--json")
    assert code == 0 and json.loads(out)["text"]
    code, out, _ = cli(capsys, "summarize", "Rivers carry water to the sea. " * 20, "--max-words", "20", "--emulator")
    assert code == 0 and 0 < len(out.split()) <= 20
    code, out, _ = cli(capsys, "summarize", "Rivers carry water. " * 20, "--stream", "--emulator")
    assert code == 0 and out.strip()


def test_bad_schema_file_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli(capsys, "extract", "x", "--schema", str(tmp_path / "nope.json"), "--emulator")
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) <= 2


def test_models_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "models", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0
    assert rows["gemini-3.1-flash-lite-preview"]["replacement"] == "gemini-3.1-flash-lite"
    assert rows["gemini-3.1-flash-lite"]["input_per_1m"] == 0.25
    code, out, _ = cli(capsys, "models", "--emulator")
    assert code == 0 and "NOT listed by the API" in out  # the retired preview


def test_models_json_has_the_new_flash_lite_with_prices_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--emulator", "models", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    lite = rows["gemini-3.5-flash-lite"]
    assert code == 0 and lite["status"] == "ga" and lite["listed_by_api"] is True
    assert (lite["input_per_1m"], lite["output_per_1m"]) == (0.30, 2.50)
    assert (lite["batch_input_per_1m"], lite["batch_output_per_1m"]) == (0.15, 1.25)
    assert (lite["flex_input_per_1m"], lite["flex_output_per_1m"]) == (0.15, 1.25)
    assert lite["cached_per_1m"] is None  # not published where we looked: unknown, not guessed
    assert "models/gemini-3.5-flash-lite" in lite["source"] and "api-evangelist/deepmind" in lite["source"]
    assert rows["gemini-3.1-flash-lite-preview"]["listed_by_api"] is False  # group-level --emulator honoured
    assert rows["gemini-3.8-flash"]["input_per_1m"] is None  # no invented prices
    assert "unconfirmed" in rows["gemini-2.5-flash-lite"]["note"]


@pytest.mark.parametrize("width", [80, 60])
def test_models_table_fits_the_terminal_and_never_cuts_an_id(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch, width: int) -> None:
    from flashlane.models import CATALOG

    monkeypatch.setenv("COLUMNS", str(width))
    code, out, err = cli(capsys, "models", "--emulator")
    lines = out.splitlines()
    assert code == 0 and lines
    assert max(len(ln) for ln in lines) <= width, out
    for model_id in CATALOG:
        assert any(f" {model_id} " in ln for ln in lines), (model_id, out)
    assert "--json has every field" in err


def test_doctor_offline_and_with_emulator(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "doctor", "--offline")
    # no key: doctor fails the way every command does (exit 2, the same first line)
    assert code == 2 and "FAIL" in out and "credentials" in out
    assert err.startswith("error: no Gemini credentials")
    code, out, _ = cli(capsys, "doctor", "--emulator")
    assert code == 0, out
    code, out, _ = cli(capsys, "--emulator", "doctor")  # the group-level flag works too
    assert code == 0 and "emulator backend" in out, out
    for needle in ("google-genai", "timeout", "Pacific", "thinking", "model on the API"):
        assert needle in out


def test_doctor_flags_the_retired_model(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHLANE_MODEL", "gemini-3.1-flash-lite-preview")
    code, out, _ = cli(capsys, "doctor", "--emulator")
    assert code == 1 and "FLASHLANE_MODEL=gemini-3.1-flash-lite" in out


def test_emulator_bad_files_are_one_line_exit_2(capsys: pytest.CaptureFixture[str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "projects.yaml"
    bad.write_text("projects: [1, 2\n")
    code, _, err = cli(capsys, "emulator", "--projects", str(bad))
    assert code == 2 and "line 2" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "emulator", "--scenario", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml" in err


REVIEWS = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "reviews.csv")


def first_error_line(err: str) -> str:
    """The first line flashlane itself printed (the emulator notice is not an error)."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("flashlane: using")]
    return lines[0] if lines else ""


@pytest.mark.parametrize(("args", "flag"), [
    (("run", "extract", REVIEWS, "--column", "text", "--emulator"), "--schema"),
    (("run", "translate", REVIEWS, "--column", "text", "--emulator"), "--to"),
    (("run", "classify", REVIEWS, "--column", "text", "--emulator"), "--labels"),
    (("extract", "Bob is 42.", "--emulator"), "--schema"),
    (("classify", "Great!", "--emulator"), "--labels"),
    (("translate", "Good morning", "--emulator"), "--to"),
])
def test_missing_task_option_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str], tmp_path, args,
                                                        flag) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(capsys, *args, "-o", str(tmp_path / "out.jsonl")) if args[0] == "run" else cli(capsys, *args)
    line = first_error_line(err)
    assert code == 2, err
    assert line.startswith("error: ") and flag in line, err
    assert "Traceback" not in err and "KeyError" not in err
    assert not (tmp_path / "out.jsonl").exists()  # refused before any work


def test_missing_task_option_in_python_names_the_keyword(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    import flashlane as fl
    from flashlane.errors import ConfigError

    with fl.Lane(base_url=gemini_emulator.base_url, api_key="k") as lane:
        with pytest.raises(ConfigError, match=r"schema="):
            lane.map("extract", ["Bob is 42."])
        with pytest.raises(ConfigError, match=r"to="):
            lane.run_task("translate", text="Good morning")
    assert gemini_emulator.requests() == []  # refused before anything was sent


@pytest.mark.parametrize("env", [{"FLASHLANE_LIMITS": "fast"}, {"FLASHLANE_MAX_OUTPUT_TOKENS": "100000"},
                                 {"FLASHLANE_THINKING": "extreme"}])
def test_doctor_fails_what_every_command_refuses(env: dict[str, str]) -> None:
    """doctor runs the commands' own validation: same exit code (2), same first line."""
    ask = run_process("ask", "hi", "--emulator", env=env)
    doctor = run_process("doctor", "--offline", env=env)
    assert ask.returncode == doctor.returncode == 2, (ask.stderr, doctor.stdout, doctor.stderr)
    first = first_error_line(ask.stderr)
    assert first.startswith("error: ") and first == first_error_line(doctor.stderr)
    assert "FAIL" in doctor.stdout and "PASS  rate limits" not in doctor.stdout
    assert "Traceback" not in ask.stderr + doctor.stderr


def test_report_on_a_file_that_is_not_a_run_database(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    code, _, err = cli(capsys, "report", REVIEWS)
    assert code == 2 and first_error_line(err).startswith("error: ") and "not a flashlane run database" in err
    suggested = set(re.findall(r"--[a-z][a-z-]+", err))
    assert suggested <= {"--json"}, f"report suggests options it does not take: {suggested}"
    assert "Traceback" not in err
