"""Built-in and custom tasks through the emulator, on every path: success, re-ask, larger cap, safety."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

import flashlane as fl
from flashlane.clock import TestClock
from flashlane.models import cost_of
from tests.conftest import control, scenario

LABELS = ["positive", "negative", "neutral"]


class Invoice(BaseModel):
    number: str
    total: float
    currency: str


@pytest.fixture
def lane(gemini_emulator):  # type: ignore[no-untyped-def]
    with fl.Lane(base_url=gemini_emulator.base_url, clock=TestClock()) as lane:
        yield lane


def _requests(base_url: str) -> list[dict]:
    log = control(base_url, "/_emulator/requests")
    return log["requests"] if isinstance(log, dict) else log


def _cap(entry: dict) -> int:
    cfg = entry["generation_config"]
    return int(cfg.get("maxOutputTokens") or cfg.get("max_output_tokens"))


def test_classify_single_and_multi_label(lane: fl.Lane) -> None:
    c = lane.classify("Fast shipping, great quality.", labels=LABELS)
    assert isinstance(c, fl.Classification) and c.label in LABELS and 0 <= c.confidence <= 1
    m = lane.classify("Great screen, awful battery.", labels=["screen", "battery", "price"], multi_label=True)
    assert set(m.labels) <= {"screen", "battery", "price"}


def test_classify_prompt_is_small_and_budgeted(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    lane.classify("Fast shipping, great quality.", labels=LABELS)
    entry = _requests(gemini_emulator.base_url)[-1]
    assert _cap(entry) < 512  # a label needs few tokens; the cap still leaves room for thinking
    assert entry["generation_config"].get("responseJsonSchema") or entry["generation_config"].get("response_json_schema")


def test_classify_rejects_one_label(lane: fl.Lane) -> None:
    with pytest.raises(fl.InputError, match="at least two labels"):
        lane.classify("x", labels=["only"])


def test_extract_with_model_json_schema_file_and_module(lane: fl.Lane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = lane.extract("Invoice INV-7 total 120.50 EUR", schema=Invoice)
    assert isinstance(inv, Invoice)
    schema_file = tmp_path / "invoice.json"
    schema_file.write_text(json.dumps(Invoice.model_json_schema()))
    as_dict = lane.extract("Invoice INV-7 total 120.50 EUR", schema=str(schema_file))
    assert set(as_dict) >= {"number", "total", "currency"}
    (tmp_path / "billing_models.py").write_text(
        "from pydantic import BaseModel\nclass Bill(BaseModel):\n    amount: float\n    payee: str\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    bill = lane.extract("Pay 10 to Bob", schema="billing_models:Bill")
    assert type(bill).__name__ == "Bill"


def test_translate_and_summarize(lane: fl.Lane) -> None:
    t = lane.translate("The weather is great today.", to="fr", glossary={"weather": "météo"}, formality="formal")
    assert isinstance(t, fl.Translation) and t.text and t.detected_source
    s = lane.summarize("Rivers carry water to the sea. " * 40, max_words=30)
    assert isinstance(s, fl.Summary) and 0 < len(s.text.split()) <= 30


def test_streaming_free_text_tasks(lane: fl.Lane) -> None:
    chunks = list(lane.stream_task("summarize", text="Rivers carry water to the sea. " * 40, max_words=40))
    assert len(chunks) >= 1 and "".join(chunks).strip()
    assert "".join(lane.stream_task("translate", text="Good morning", to="de")).strip()
    with pytest.raises(fl.ConfigError, match="cannot stream"):
        list(lane.stream_task("classify", text="x", labels=LABELS))


def test_schema_violation_once_reasks_once_and_ends_on_a_user_turn(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"schema_violation": True}, "times": 1})
    c = lane.classify("Fast shipping, great quality.", labels=LABELS)
    assert c.label in LABELS
    entries = _requests(gemini_emulator.base_url)
    assert len(entries) == 2
    reask = entries[-1]["contents"]
    assert [t["role"] for t in reask] == ["user", "model", "user"]
    assert "not valid" in reask[-1]["text"]


def test_schema_violation_twice_raises_with_raw_text(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"schema_violation": True}})
    with pytest.raises(fl.SchemaViolation) as info:
        lane.classify("Fast shipping, great quality.", labels=LABELS)
    assert info.value.raw_text and "re-ask" in str(info.value)
    assert len(_requests(gemini_emulator.base_url)) == 2
    # both answers were paid for: the error says what they used and cost, as a Result would
    e, billed = info.value, control(gemini_emulator.base_url, "/_emulator/stats")["tokens"]
    assert e.attempts == 2 and e.usage.prompt_tokens == billed["prompt"] > 0
    assert (e.usage.output_tokens, e.usage.thoughts_tokens) == (billed["candidates"], billed["thoughts"])
    assert e.cost_usd == pytest.approx(cost_of(lane.settings.model, e.usage)) and e.cost_usd > 0


def test_malformed_json_is_reasked(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"malformed_json": True}, "times": 1})
    assert lane.classify("ok product", labels=LABELS).label in LABELS


def test_max_tokens_without_parts_retries_with_a_larger_cap(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"finish": "MAX_TOKENS"}, "times": 1})
    c = lane.classify("Fast shipping, great quality.", labels=LABELS)
    assert c.label in LABELS
    first, second = _requests(gemini_emulator.base_url)[-2:]
    assert _cap(second) > _cap(first)


def test_max_tokens_twice_is_output_truncated_naming_the_setting(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"finish": "MAX_TOKENS"}})
    with pytest.raises(fl.OutputTruncated) as info:
        lane.classify("Fast shipping, great quality.", labels=LABELS)
    assert "max_output_tokens" in str(info.value) and "FLASHLANE_MAX_OUTPUT_TOKENS" in (info.value.hint or "")


def test_real_thinking_overflow_is_retried_with_a_larger_cap(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    # "high" thinking spends more than a tiny cap: the emulator ends in MAX_TOKENS with no parts.
    with fl.Lane(base_url=gemini_emulator.base_url, thinking="high", clock=TestClock()) as lane:
        r = lane.generate("hi", max_output_tokens=1000)
    assert r.text and r.attempts == 2


@pytest.mark.parametrize(("action", "stage", "reason"), [
    ({"finish": "SAFETY"}, "answer", "SAFETY"),
    ({"finish": "RECITATION"}, "answer", "RECITATION"),
    ({"block": "SAFETY"}, "prompt", "SAFETY"),
])
def test_safety_outcomes_are_typed_and_named(gemini_emulator, lane: fl.Lane, action: dict, stage: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": action})
    with pytest.raises(fl.SafetyBlocked) as info:
        lane.classify("some text", labels=LABELS)
    assert info.value.stage == stage and info.value.reason == reason and reason in str(info.value)
    assert len(_requests(gemini_emulator.base_url)) == 1  # safety is never retried by default


def test_reframe_retry_is_opt_in(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"finish": "SAFETY"}, "times": 1})
    with fl.Lane(base_url=gemini_emulator.base_url, reframe_on_block=True) as lane:
        assert lane.classify("a violent threat", labels=["threat", "ok"]).label in ("threat", "ok")
    assert "trust-and-safety" in _requests(gemini_emulator.base_url)[-1]["system"]


def test_empty_stop_is_never_success(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"text": ""}})
    with pytest.raises(fl.EmptyAnswer):
        lane.generate("hi")


def test_custom_task_from_toml_and_python(lane: fl.Lane, tmp_path: Path) -> None:
    f = tmp_path / "aspects.toml"
    f.write_text('''
name = "aspects"
instructions = "List the product aspects the review mentions."
template = "Review of {product}:\\n{text}"
answer_tokens = 200
[defaults]
product = "a phone"
[output]
type = "object"
required = ["aspects"]
[output.properties.aspects]
type = "array"
items = {type = "string"}
''')
    out = lane.run_task(str(f), text="Battery is weak but the screen is lovely.")
    assert isinstance(out["aspects"], list)

    class Tone(BaseModel):
        tone: str

    task = fl.Task(name="tone", instructions="Describe the tone.", item_template="{text}", output=Tone)
    assert isinstance(lane.run_task(task, text="Hooray!"), Tone)


def test_custom_task_file_errors_are_clear(lane: fl.Lane, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntemplat: '{text}'\n")
    with pytest.raises(fl.InputError, match="unknown key 'templat'"):
        lane.run_task(str(bad), text="hi")
    task = fl.Task(name="needs", item_template="{title}: {text}")
    with pytest.raises(fl.InputError, match="title"):
        lane.run_task(task, text="hi")


async def test_async_task_twins(lane: fl.Lane) -> None:
    c = await lane.aclassify("Fast shipping, great quality.", labels=LABELS)
    s = await lane.asummarize("Rivers carry water to the sea. " * 10, max_words=20)
    t = await lane.atranslate("Hello", to="es")
    assert c.label in LABELS and s.text and t.text


def test_the_example_custom_task_runs(lane: fl.Lane) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "aspects.toml"
    out = lane.run_task(str(example), text="Battery died fast, but delivery was quick.", rating=3)
    assert all(a["sentiment"] in ("positive", "negative", "mixed") for a in out["aspects"])


def test_lane_map_takes_a_task_files_run_table_and_an_argument_still_wins(gemini_emulator, lane: fl.Lane,  # type: ignore[no-untyped-def]
                                                                           tmp_path: Path) -> None:
    chosen = tmp_path / "chosen.yaml"  # what `flashlane eval --write-task` writes
    chosen.write_text("task: classify\ndefaults: {labels: 'positive,negative,neutral'}\n"
                      "run: {model: gemini-2.5-flash-lite, service_tier: flex, pack: 5}\n")
    items = [f"review {i}: {'great' if i % 2 else 'awful'}" for i in range(20)]
    before = len(_requests(gemini_emulator.base_url))
    res = lane.map(str(chosen), items, cache=False)
    assert all(r.ok for r in res) and res.report["requests_by_tier"] == {"flex": 4}  # packs of 5, on flex
    sent = [e for e in _requests(gemini_emulator.base_url)[before:] if e["method"] == "generateContent"]
    assert len(sent) == 4 and {e["model"] for e in sent} == {"gemini-2.5-flash-lite"}
    before = len(_requests(gemini_emulator.base_url))
    res = lane.map(str(chosen), items, cache=False, pack=1, service_tier="standard", model="gemini-3.1-flash-lite")
    assert all(r.ok for r in res) and res.report["requests_by_tier"] == {}  # standard: not listed
    sent = [e for e in _requests(gemini_emulator.base_url)[before:] if e["method"] == "generateContent"]
    assert len(sent) == 20 and {e["model"] for e in sent} == {"gemini-3.1-flash-lite"}


@pytest.mark.parametrize(("line", "named"), [("service_tier: cheap", "'service_tier'"), ("pack: most", "'pack'"),
                                             ("pack: 0", "'pack'"), ("cache_prefix: yes", "'cache_prefix'"),
                                             ("modle: x", "unknown key 'modle'")])
def test_a_bad_run_table_is_refused_when_the_file_is_read(lane: fl.Lane, tmp_path: Path, line: str,
                                                          named: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"task: classify\ndefaults: {{labels: 'a,b'}}\nrun: {{{line}}}\n")
    with pytest.raises(fl.InputError, match=named):
        lane.map(str(bad), ["x"])
