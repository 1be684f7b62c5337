"""flashlane classify | extract | translate | summarize: the built-in tasks on one text.

Every command here is built from its task's declared options (``Task.params``, tasks/option.py),
and ``flashlane run`` builds its task options from the same declarations (run.py): a new task
option is one edit, in the task.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

from ..errors import ConfigError, InputError
from ..lane import Lane
from ..tasks import CLASSIFY, EXTRACT, SUMMARIZE, TRANSLATE, Extraction, Task
from ..tasks.option import Option
from .common import echo_json, lane_options, make_lane

__all__ = ["check_free", "click_option", "task_command", "task_values"]

Show = Callable[[Any, Mapping[str, Any]], str]  # (answer, the task's options) -> what to print


def click_option(opt: Option, help_prefix: str = "") -> click.Option:
    """The command-line option for a declared task option. Required options are checked by the
    task (Task.check_options), so the error names the flag and the Python keyword alike."""
    help_text = help_prefix + opt.help + ("  [required]" if opt.required else "")
    if opt.type == "flag":
        return click.Option([opt.flag, opt.name], is_flag=True, default=False, help=help_text)
    kind: click.ParamType = click.STRING
    if opt.type == "int":
        kind = click.IntRange(min=opt.minimum)
    elif opt.type == "choice":
        kind = click.Choice(opt.choices)
    # No click default: an option not given is left out, and the task's defaults apply (shown here).
    shown = str(opt.default) if opt.default is not None else False
    return click.Option([opt.flag, opt.name], type=kind, default=None, show_default=shown, metavar=opt.metavar,
                        help=help_text)


def task_values(params: Iterable[Option], given: Mapping[str, Any]) -> dict[str, Any]:
    """The task's option dict from the parsed command line: every declared option that was
    given, turned into its value by its type. An option not given (or a flag not set) is left
    out, so the task's own defaults apply and a run's fingerprint is what it always was."""
    out: dict[str, Any] = {}
    for opt in params:
        raw = given.get(opt.name)
        if raw is None or raw is False:
            continue
        value = opt.parse(raw)
        if value is not None:
            out[opt.name] = value
    return out


def check_free(task: Task, params: Iterable[click.Parameter], command: str) -> None:
    """A task option must not reuse a name or flag the command already has."""
    seen: set[str] = set()
    for p in params:
        keys = {p.name or "", *p.opts}
        clash = sorted(keys & seen)
        if clash:
            raise ConfigError(f"task '{task.name}' declares an option {clash[0]}, which {command} already has",
                              hint="rename the option in the task")
        seen |= keys


def _text(text: str) -> str:
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise InputError("the input text is empty", hint="pass the text as an argument or '-' to read stdin")
    return text


def _jsonable(value: Any) -> Any:
    if isinstance(value, Extraction):  # --provenance: the value, where each field was found, what to check
        return value.as_dict()
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


def _show_any(value: Any, options: Mapping[str, Any]) -> str:
    data = _jsonable(value)
    return data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, indent=2)


def _run(lane: Lane, task: Task, as_json: bool, show: Show, values: Mapping[str, Any]) -> None:
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
        click.echo(show(value, values))


def _stream(lane: Lane, task: Task, values: Mapping[str, Any]) -> None:
    for chunk in lane.stream_task(task, **values):
        click.echo(chunk, nl=False)
        sys.stdout.flush()
    click.echo()


def task_command(task: Task, doc: str | None = None, show: Show = _show_any) -> click.Command:
    """The one-shot command for a task: TEXT, the task's declared options, --stream when the
    task can stream, --json, and the options every command that calls Gemini takes."""
    params: list[click.Parameter] = [click.Argument(["text"]), *(click_option(o) for o in task.all_params)]
    if task.streamable:
        params.append(click.Option(["--stream"], is_flag=True, help="Print the answer as it arrives."))
    params.append(click.Option(["--json", "as_json"], is_flag=True, help="Print the result, usage and cost as JSON."))

    def callback(text: str, as_json: bool, stream: bool = False, **kw: Any) -> None:
        values = task_values(task.all_params, kw)
        task.check_options(task.options(values))  # a missing option: exit 2 before reading stdin or calling
        values["text"] = _text(text)
        lane_kw = {k: v for k, v in kw.items() if k not in {o.name for o in task.all_params}}
        with make_lane(**lane_kw) as lane:
            if stream and not as_json:
                _stream(lane, task, values)
            else:
                _run(lane, task, as_json, show, values)

    command = click.command(task.name, params=params, help=doc or f"{task.name}: {task.description}")(
        lane_options(callback))
    check_free(task, command.params, f"flashlane {task.name}")
    return command


def _label(c: Any, options: Mapping[str, Any]) -> str:
    return (", ".join(c.labels) if options.get("multi_label") else c.label) + f"\t{c.confidence:.2f}"


classify_command = task_command(CLASSIFY, "Classify TEXT into one of --labels.", _label)
extract_command = task_command(EXTRACT, "Extract the fields of --schema from TEXT (prints JSON).")
translate_command = task_command(TRANSLATE, "Translate TEXT into --to.", lambda t, _: t.text)
summarize_command = task_command(SUMMARIZE, "Summarize TEXT ('-' reads stdin).", lambda s, _: s.text)
