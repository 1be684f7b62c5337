"""Task options are data: a task declares them, and the command line is built from the declarations.

An option added to a task (here a task file's ``[options.NAME]`` table) appears in ``flashlane
run``'s help and in the task's one-shot command's, and reaches the task's options, with no CLI
edit; a wrong value is a one-line usage error (exit 2) before anything is sent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flashlane.cli.tasks import task_command
from flashlane.errors import InputError
from flashlane.tasks import Task, load_task_file
from flashlane.tasks.option import Option
from tests.conftest import cli
from tests.test_cli import REVIEWS, first_error_line

TASK_FILE = '''
name = "pitch"
instructions = "Rewrite the text as a pitch for {audience} in at most {max_items} sentences."
template = "Text: {text}"

[options.audience]
help = "Who the pitch is for."
required = true

[options.max_items]
type = "int"
minimum = 1
help = "Sentences at most."
default = 3
'''


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "pitch.toml"
    path.write_text(TASK_FILE, encoding="utf-8")
    return path


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What reached the task, for `flashlane run` and the one-shot command, with nothing sent."""
    got: dict[str, Any] = {}

    def fake_run_file(lane: Any, task: Task, cfg: Any) -> Any:
        got["run"] = task.options(cfg.task_options)
        raise SystemExit(0)

    def fake_run_task(lane: Any, task: Task, **values: Any) -> str:  # Lane.run_task
        got["one-shot"] = task.options(values)
        return "ok"

    monkeypatch.setattr("flashlane.cli.run.run_file", fake_run_file)
    monkeypatch.setattr("flashlane.lane.Lane.run_task", fake_run_task)
    return got


def test_a_declared_option_is_in_both_helps_and_reaches_the_task(task_file: Path, seen: dict[str, Any],
                                                                 tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "run", str(task_file), "--help")
    assert code == 0 and "--audience" in out and "Who the pitch is for." in out and "--max-items" in out
    one_shot = task_command(load_task_file(task_file))
    help_out = CliRunner().invoke(one_shot, ["--help"]).output
    assert "--audience" in help_out and "Who the pitch is for." in help_out and "--max-items" in help_out

    code, _, err = cli(capsys, "run", str(task_file), REVIEWS, "--column", "text", "--audience", "investors",
                       "--max-items", "2", "--emulator", "-o", str(tmp_path / "out.jsonl"))
    assert code == 0, err
    assert seen["run"]["audience"] == "investors" and seen["run"]["max_items"] == 2  # typed by the declaration
    result = CliRunner().invoke(one_shot, ["A kettle.", "--audience", "kids", "--emulator"])
    assert result.exit_code == 0, result.output
    assert seen["one-shot"]["audience"] == "kids" and seen["one-shot"]["max_items"] == 3  # the declared default


def test_a_new_option_on_a_python_task_needs_no_cli_edit(seen: dict[str, Any]) -> None:
    task = Task(name="tag", item_template="{text}", params=(
        Option("tags", type="list", help="Comma-separated tags."),
        Option("weights", type="map", help="tag=weight pairs."),
        Option("tone", type="choice", choices=("dry", "warm"), help="The tone."),
    ))
    result = CliRunner().invoke(task_command(task), ["x", "--tags", "a, b", "--weights", "a=1,b=2", "--tone", "warm",
                                                     "--emulator"])
    assert result.exit_code == 0, result.output
    assert seen["one-shot"] == {"tags": ["a", "b"], "weights": {"a": "1", "b": "2"}, "tone": "warm", "text": "x"}


@pytest.mark.parametrize(("args", "names"), [
    (("--nope", "x"), "--nope"),  # not an option of the task
    (("--max-items", "many"), "--max-items"),  # not a whole number
    (("--max-items", "0"), "--max-items"),  # under the declared minimum
    ((), "--audience"),  # required, missing
])
def test_a_wrong_task_option_is_one_line_exit_2(task_file: Path, seen: dict[str, Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                                               names: str) -> None:
    base = ("--audience", "kids") if names != "--audience" else ()
    code, _, err = cli(capsys, "run", str(task_file), REVIEWS, "--column", "text", "--emulator",
                       "-o", str(tmp_path / "out.jsonl"), *base, *args)
    line = first_error_line(err)
    assert code == 2 and line.startswith("error: ") and names in line, err
    assert len([ln for ln in err.splitlines() if ln.strip() and not ln.startswith("flashlane: using")]) <= 2, err
    assert "run" not in seen and not (tmp_path / "out.jsonl").exists()  # refused before any work


def test_a_bad_builtin_option_value_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "translate", "Good morning", "--to", "fr", "--glossary", "Morgen", "--emulator")
    assert code == 2 and first_error_line(err).startswith("error: --glossary"), err
    code, _, err = cli(capsys, "summarize", "x", "--max-words", "lots", "--emulator")
    assert code == 2 and "--max-words" in first_error_line(err), err


def test_a_task_option_may_not_take_a_run_option_name(task_file: Path, seen: dict[str, Any], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    task_file.write_text(TASK_FILE + '\n[options.column]\nhelp = "clashes"\n', encoding="utf-8")
    code, _, err = cli(capsys, "run", str(task_file), REVIEWS, "--audience", "kids", "--emulator",
                       "-o", str(tmp_path / "out.jsonl"))
    assert code == 2 and "--column" in first_error_line(err), err
    assert "run" not in seen


def test_bad_option_declarations_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown type 'float'"):
        Option("ratio", type="float", help="x")
    with pytest.raises(InputError, match="choices"):
        Option("tone", type="choice", help="x")
    path = tmp_path / "t.toml"
    path.write_text('template = "{text}"\n[options.tone]\nhelpp = "typo"\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown key 'helpp'"):
        load_task_file(path)
