"""flashlane ask: one prompt, one answer; optionally grounded in Google Search (numbered citations),
reading given URLs (URL context) or computing with code execution."""

from __future__ import annotations

import sys
from typing import Any

import click

from ..call.result import Result
from ..call.tools import CodeExecution, GoogleSearch, UrlContext, cite, source_lines
from .common import echo_json, lane_options, make_lane, note


def _tools(search: bool, urls: tuple[str, ...], code: bool) -> list[Any] | None:
    tools: list[Any] = []
    if search:
        tools.append(GoogleSearch())
    if urls:
        tools.append(UrlContext())
    if code:
        tools.append(CodeExecution())
    return tools or None


def _with_urls(prompt: str, urls: tuple[str, ...]) -> str:
    # URL context reads the URLs named in the prompt (ai.google.dev url-context docs), so they go in it.
    return prompt + "\n\n" + "\n".join(urls) if urls else prompt


def _print_tool_parts(result: Result) -> None:
    for run in result.code:
        click.echo(f"\ncode ({run.language.lower()}, {run.outcome or 'no outcome'}):")
        click.echo("\n".join("    " + line for line in run.code.splitlines()))
        if run.output:
            click.echo("output:\n" + "\n".join("    " + line for line in run.output.rstrip("\n").splitlines()))
    if result.sources:
        click.echo("\nSources:")
        for line in source_lines(result.sources):
            click.echo(line)
    for u in result.url_statuses:
        if not u.ok:
            note(f"warning: {u.url} could not be read ({u.status})")


@click.command("ask")
@click.argument("prompt")
@click.option("--stream", is_flag=True, help="Print the answer as it arrives.")
@click.option("--system", default=None, help="System instruction.")
@click.option("--json", "as_json", is_flag=True,
              help="Print text, usage, cost and tool parts (sources, citations, URL statuses, code) as JSON.")
@click.option("--search", is_flag=True, help="Ground the answer in Google Search; prints numbered citations.")
@click.option("--url", "urls", multiple=True, metavar="URL", help="A URL the model should read (URL context); repeatable.")
@click.option("--code", is_flag=True, help="Let the model write and run Python (code execution).")
@lane_options
def ask_command(prompt: str, stream: bool, system: str | None, as_json: bool, search: bool, urls: tuple[str, ...],
                code: bool, emulator: bool, model: str | None, thinking: str | None, max_output_tokens: int | None,
                timeout_s: float | None, **lane_kw: Any) -> None:
    """Ask PROMPT and print the answer ('-' reads the prompt from stdin)."""
    if prompt == "-":
        prompt = sys.stdin.read()
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise click.BadParameter(f"{bad[0]!r} is not an http(s) URL", param_hint="--url")
    tools = _tools(search, urls, code)
    prompt = _with_urls(prompt, urls)
    with make_lane(emulator=emulator, model=model, thinking=thinking, max_output_tokens=max_output_tokens,
                   timeout_s=timeout_s, **lane_kw) as lane:
        if stream:
            s = lane.stream(prompt, system=system, tools=tools)
            for chunk in s:
                if not as_json:
                    click.echo(chunk, nl=False)
                    sys.stdout.flush()
            result = s.result
            assert result is not None
            if as_json:
                echo_json(result.as_dict())
            else:
                click.echo()
                _print_tool_parts(result)
        else:
            result = lane.generate(prompt, system=system, tools=tools)
            if as_json:
                echo_json(result.as_dict())
            else:
                click.echo(cite(result.text, result.citations) if result.citations else result.text)
                _print_tool_parts(result)
        if result.truncated:
            note("warning: the answer was cut off at max_output_tokens; raise --max-output-tokens for the rest")
