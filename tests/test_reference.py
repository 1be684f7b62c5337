"""Tasks with reference material: worked examples (validated against the output schema at load
time) and reference text (inline or from files), placed in a stable prefix and counted in sizing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import flashlane as fl
from flashlane.clock import TestClock
from flashlane.models import estimate_tokens
from flashlane.pipeline.job import Job
from flashlane.tasks import CLASSIFY, load_task_file
from flashlane.tasks.reference import REFERENCE_HEADING, Example
from tests.conftest import control, run_cli

SCHEMA = '''
[output]
type = "object"
required = ["queue"]
properties = { queue = { type = "string", enum = ["billing", "tech", "other"] } }
'''


@pytest.fixture
def lane(gemini_emulator: Any) -> Any:
    with fl.Lane(base_url=gemini_emulator.base_url, clock=TestClock()) as lane:
        yield lane


def _task_file(tmp_path: Path, body: str, suffix: str = ".toml") -> Path:
    p = tmp_path / f"triage{suffix}"
    p.write_text(body, encoding="utf-8")
    return p


def _generate_log(base_url: str) -> list[dict[str, Any]]:
    return [r for r in control(base_url, "/_emulator/requests")["requests"] if r["method"] == "generateContent"]


TOML = '''
name = "triage"
system = "You triage support tickets."
instructions = "Pick the queue."
template = "Ticket: {text}"
reference = "Refunds are billing."
reference_files = ["docs/guide.md"]
''' + SCHEMA + '''
[[examples]]
name = "double charge"
input = "I was charged twice"
output = { queue = "billing" }
[[examples]]
input = "The app crashes on start"
output = { queue = "tech" }
'''


def test_toml_task_prefix_system_then_example_turns(lane: Any, gemini_emulator: Any, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("Password resets are tech.\n", encoding="utf-8")
    task = load_task_file(_task_file(tmp_path, TOML))
    assert task.reference == "Refunds are billing.\n\nPassword resets are tech."
    assert [e.name for e in task.examples] == ["double charge", "example 2"]
    out = lane.run_task(task, text="my invoice is wrong")
    assert out["queue"] in ("billing", "tech", "other")
    (entry,) = _generate_log(gemini_emulator.base_url)
    assert entry["system"] == ("You triage support tickets.\n\nPick the queue.\n\n" + REFERENCE_HEADING
                               + "\nRefunds are billing.\n\nPassword resets are tech.")
    assert entry["contents"] == [
        {"role": "user", "text": "Ticket: I was charged twice"},
        {"role": "model", "text": '{"queue": "billing"}'},
        {"role": "user", "text": "Ticket: The app crashes on start"},
        {"role": "model", "text": '{"queue": "tech"}'},
        {"role": "user", "text": "Ticket: my invoice is wrong"},
    ]


def test_yaml_task_with_examples(lane: Any, tmp_path: Path) -> None:
    p = _task_file(tmp_path, """
name: triage
template: "Ticket: {text}"
reference: Refunds are billing.
output: {type: object, required: [queue], properties: {queue: {type: string}}}
examples:
  - input: charged twice
    output: {queue: billing}
""", ".yaml")
    task = load_task_file(p)
    assert task.examples == (Example("charged twice", {"queue": "billing"}, "example 1"),)
    assert lane.run_task(task, text="refund")["queue"]


@pytest.mark.parametrize(("example", "message"), [
    ('input = "x"\noutput = { queue = "sales" }', "example 1 of task file .* does not match the output schema: "
                                                  "at queue: 'sales' is not one of"),
    ('name = "bad one"\ninput = "x"\noutput = { }', "bad one of task file .* does not match the output schema"),
    ('input = "x"', "example 1 in task file .* has no output"),
    ('input = "x"\noutput = { queue = "tech" }\nexpected = 1', "unknown key 'expected' in example 1"),
    ('input = "x"\noutput = "tech"', "must be a table matching the output schema, not text"),
])
def test_bad_examples_name_the_example(tmp_path: Path, example: str, message: str) -> None:
    p = _task_file(tmp_path, 'name = "t"\ntemplate = "{text}"\n' + SCHEMA + "[[examples]]\n" + example + "\n")
    with pytest.raises(fl.InputError, match=message):
        load_task_file(p)


def test_reference_file_errors_and_unknown_keys(tmp_path: Path) -> None:
    p = _task_file(tmp_path, 'name = "t"\ntemplate = "{text}"\nreference_files = ["nope.md"]\n')
    with pytest.raises(fl.InputError, match="reference file .*nope.md .* does not exist") as ei:
        load_task_file(p)
    assert "relative to the task file" in (ei.value.hint or "")
    p = _task_file(tmp_path, 'name = "t"\ntemplate = "{text}"\nreferences = "x"\n')
    with pytest.raises(fl.InputError, match="unknown key 'references'"):
        load_task_file(p)


def test_python_task_examples_validated_at_construction() -> None:
    schema = {"type": "object", "properties": {"tone": {"type": "string"}}, "required": ["tone"]}
    fl.Task(name="ok", output=schema, examples=[{"input": "yay", "output": {"tone": "glad"}}])
    with pytest.raises(fl.InputError, match="example 1 of task 'bad' does not match the output schema"):
        fl.Task(name="bad", output=schema, examples=[{"input": "yay", "output": {"mood": "glad"}}])
    with pytest.raises(fl.InputError, match="free text, so the output must be text"):
        fl.Task(name="free", examples=[Example("yay", {"tone": "glad"})])


def test_builtin_classify_takes_examples_and_reference_as_options(lane: Any, gemini_emulator: Any) -> None:
    good = {"reasoning": "praise", "label": "positive", "confidence": 0.9}
    c = lane.classify("Lovely!", labels=["positive", "negative"], reference="Sarcasm is negative.",
                      examples=[{"input": "Great, broken again.", "output": {**good, "label": "negative"}}])
    assert c.label in ("positive", "negative")
    (entry,) = _generate_log(gemini_emulator.base_url)
    assert entry["system"].endswith(REFERENCE_HEADING + "\nSarcasm is negative.")
    assert [t["role"] for t in entry["contents"]] == ["user", "model", "user"]
    with pytest.raises(fl.InputError, match="example 1 of task 'classify' does not match the output schema"):
        lane.classify("x", labels=["positive", "negative"], examples=[{"input": "y", "output": {**good, "label": "meh"}}])


def test_prefix_counted_in_sizing_and_fingerprint(lane: Any, tmp_path: Path) -> None:
    guide = "word " * 4000
    plain = Job.create(lane._client, CLASSIFY, {"labels": "a,b"})
    rich = Job.create(lane._client, CLASSIFY, {"labels": "a,b", "reference": guide})
    assert rich.prefix is not None and rich.prefix_tokens >= estimate_tokens(guide)
    assert rich.shared_tokens - plain.shared_tokens >= estimate_tokens(guide)
    # without reference material the prefix is the instructions alone (issue 20), as the system instruction
    assert plain.prefix is not None and plain.prefix.turns == () and plain.prefix.system.startswith("Classify the text")
    assert plain.prefix_tokens == estimate_tokens(plain.prefix.system)
    assert rich.single_call(_item()).est_tokens >= estimate_tokens(guide)
    other = Job.create(lane._client, CLASSIFY, {"labels": "a,b", "reference": guide + "more"})
    src = {"column": None}
    assert rich.fingerprint([], source=src) != other.fingerprint([], source=src)
    assert plain.fingerprint([], source=src) == Job.create(lane._client, CLASSIFY, {"labels": "a,b"}).fingerprint([], source=src)


def _item() -> Any:
    from flashlane.pipeline.items import Item

    return Item(index=0, id="1", values={"text": "hi"}, rendered="Text:\nhi", hash="h")


def test_cli_builtin_task_takes_reference_and_examples_files(tmp_path: Path, gemini_emulator: Any,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini_emulator.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "dummy")
    (tmp_path / "guide.md").write_text("Sarcasm is negative.", encoding="utf-8")
    good = {"reasoning": "sarcasm", "label": "negative", "confidence": 0.8}
    (tmp_path / "ex.jsonl").write_text(json.dumps({"input": "Great, broken again.", "output": good}) + "\n")
    (tmp_path / "rows.csv").write_text("text\nLovely\nAwful\n", encoding="utf-8")

    def run(*extra: str) -> int:
        return run_cli("run", "classify", str(tmp_path / "rows.csv"), "--labels", "positive,negative", "-q",
                       "-o", str(tmp_path / "o.jsonl"), "--no-cache", *extra)

    assert run("--reference", str(tmp_path / "guide.md"), "--examples", str(tmp_path / "ex.jsonl")) == 0
    entry = _generate_log(gemini_emulator.base_url)[0]
    assert entry["system"].endswith(REFERENCE_HEADING + "\nSarcasm is negative.")
    assert entry["contents"][0] == {"role": "user", "text": "Text:\nGreat, broken again."}
    (tmp_path / "bad.jsonl").write_text(json.dumps({"input": "x", "output": {**good, "label": "meh"}}) + "\n")
    capsys.readouterr()
    assert run("--examples", str(tmp_path / "bad.jsonl"), "--fresh") == 2
    assert "example 1 of task 'classify' does not match the output schema" in capsys.readouterr().err
