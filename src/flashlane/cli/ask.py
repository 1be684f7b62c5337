"""flashlane ask: one prompt, one answer."""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import echo_json, lane_options, make_lane, note


@click.command("ask")
@click.argument("prompt")
@click.option("--stream", is_flag=True, help="Print the answer as it arrives.")
@click.option("--system", default=None, help="System instruction.")
@click.option("--json", "as_json", is_flag=True, help="Print text, usage and cost as JSON.")
@lane_options
def ask_command(prompt: str, stream: bool, system: str | None, as_json: bool, emulator: bool, model: str | None,
                thinking: str | None, max_output_tokens: int | None, timeout_s: float | None,
                **lane_kw: Any) -> None:
    """Ask PROMPT and print the answer ('-' reads the prompt from stdin)."""
    if prompt == "-":
        prompt = sys.stdin.read()
    with make_lane(emulator=emulator, model=model, thinking=thinking, max_output_tokens=max_output_tokens,
                   timeout_s=timeout_s, **lane_kw) as lane:
        if stream:
            s = lane.stream(prompt, system=system)
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
        else:
            result = lane.generate(prompt, system=system)
            if as_json:
                echo_json(result.as_dict())
            else:
                click.echo(result.text)
        if result.truncated:
            note("warning: the answer was cut off at max_output_tokens; raise --max-output-tokens for the rest")
