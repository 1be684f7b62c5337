"""flashlane classify | extract | translate | summarize: the built-in tasks on one text."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..errors import InputError
from ..lane import Lane
from ..tasks import CLASSIFY, EXTRACT, SUMMARIZE, TRANSLATE, Task
from .common import echo_json, lane_options, make_lane


def _text(text: str) -> str:
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise InputError("the input text is empty", hint="pass the text as an argument or '-' to read stdin")
    return text


def _jsonable(value: Any) -> Any:
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _run(lane: Lane, task: Task, as_json: bool, show: Any, **values: Any) -> None:
    before_cost, before_usage, before_unpriced = lane.totals.cost_usd, lane.totals.usage, lane.totals.unpriced_calls
    value = lane.run_task(task, **values)
    if as_json:
        data = _jsonable(value)
        out = dict(data) if isinstance(data, dict) else {"result": data}
        used = lane.totals.usage
        out["usage"] = {
            "prompt_tokens": used.prompt_tokens - before_usage.prompt_tokens,
            "output_tokens": used.output_tokens - before_usage.output_tokens,
            "thoughts_tokens": used.thoughts_tokens - before_usage.thoughts_tokens,
        }
        unpriced = lane.totals.unpriced_calls > before_unpriced  # the model's price is unknown
        out["cost_usd"] = None if unpriced else round(lane.totals.cost_usd - before_cost, 8)
        out["model"] = lane.settings.model
        echo_json(out)
    else:
        click.echo(show(value))


def _stream(lane: Lane, task: Task, **values: Any) -> None:
    for chunk in lane.stream_task(task, **values):
        click.echo(chunk, nl=False)
        sys.stdout.flush()
    click.echo()


@click.command("classify")
@click.argument("text")
@click.option("--labels", required=True, help="Comma-separated labels, e.g. positive,negative,neutral.")
@click.option("--multi-label", is_flag=True, help="Allow any number of labels.")
@click.option("--json", "as_json", is_flag=True, help="Print the result, usage and cost as JSON.")
@lane_options
def classify_command(text: str, labels: str, multi_label: bool, as_json: bool, **lane_kw: Any) -> None:
    """Classify TEXT into one of --labels."""
    with make_lane(**lane_kw) as lane:
        _run(lane, CLASSIFY, as_json,
             lambda c: (", ".join(c.labels) if multi_label else c.label) + f"\t{c.confidence:.2f}",
             text=_text(text), labels=labels, multi_label=multi_label)


@click.command("extract")
@click.argument("text")
@click.option("--schema", required=True, help="A JSON Schema file or module:PydanticModel.")
@click.option("--json", "as_json", is_flag=True, help="Also print usage and cost.")
@lane_options
def extract_command(text: str, schema: str, as_json: bool, **lane_kw: Any) -> None:
    """Extract the fields of --schema from TEXT (prints JSON)."""
    from ..tasks import load_schema

    resolved = load_schema(schema)
    with make_lane(**lane_kw) as lane:
        _run(lane, EXTRACT, as_json, lambda v: __import__("json").dumps(_jsonable(v), ensure_ascii=False, indent=2),
             text=_text(text), schema=resolved)


def parse_glossary(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    out = {}
    for pair in value.split(","):
        if "=" not in pair:
            raise click.BadParameter("use term=translation pairs separated by commas", param_hint="--glossary")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@click.command("translate")
@click.argument("text")
@click.option("--to", "to", required=True, help="Target language, e.g. fr or 'Brazilian Portuguese'.")
@click.option("--source", default=None, help="Source language (detected when omitted).")
@click.option("--glossary", default=None, help="Fixed term translations: term=translation,term2=translation2.")
@click.option("--formality", default=None, help="formal | informal | ...")
@click.option("--stream", is_flag=True, help="Print the translation as it arrives.")
@click.option("--json", "as_json", is_flag=True, help="Print the result, usage and cost as JSON.")
@lane_options
def translate_command(text: str, to: str, source: str | None, glossary: str | None, formality: str | None,
                      stream: bool, as_json: bool, **lane_kw: Any) -> None:
    """Translate TEXT into --to."""
    values = dict(text=_text(text), to=to, source=source, glossary=parse_glossary(glossary), formality=formality)
    with make_lane(**lane_kw) as lane:
        if stream and not as_json:
            _stream(lane, TRANSLATE, **values)
        else:
            _run(lane, TRANSLATE, as_json, lambda t: t.text, **values)


@click.command("summarize")
@click.argument("text")
@click.option("--max-words", type=click.IntRange(min=1), default=None, help="Upper bound on summary length.")
@click.option("--style", default=None, help="e.g. bullet points, one sentence, executive")
@click.option("--stream", is_flag=True, help="Print the summary as it arrives.")
@click.option("--json", "as_json", is_flag=True, help="Print the result, usage and cost as JSON.")
@lane_options
def summarize_command(text: str, max_words: int | None, style: str | None, stream: bool, as_json: bool,
                      **lane_kw: Any) -> None:
    """Summarize TEXT ('-' reads stdin)."""
    values = dict(text=_text(text), max_words=max_words, style=style)
    with make_lane(**lane_kw) as lane:
        if stream and not as_json:
            _stream(lane, SUMMARIZE, **values)
        else:
            _run(lane, SUMMARIZE, as_json, lambda s: s.text, **values)
