"""Options shared by the commands that call Gemini, and how they build a Lane."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from ..call.client import Client
from ..config import Settings, load_settings
from ..lane import Lane
from ..limits import BACKENDS

__all__ = ["lane_options", "lane_settings", "make_client", "make_lane", "echo_json", "note", "wants_emulator"]


def lane_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    decorators = [
        click.option("--emulator", is_flag=True, default=False,
                     help="Run against the built-in emulator (offline; synthetic answers)."),
        click.option("--model", "-m", default=None, help="Model ID (default gemini-3.1-flash-lite; FLASHLANE_MODEL)."),
        click.option("--thinking", default=None, help="Thinking level minimal|low|medium|high, or a budget for 2.5 models."),
        click.option("--max-output-tokens", type=click.IntRange(min=1), default=None,
                     help="Cap on output tokens, thinking included."),
        click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.001), default=None,
                     help="Per-request timeout in seconds (default 30)."),
        click.option("--limits", default=None,
                     help="Quota to pace under: adaptive (default), a quota tier (free, tier1..tier3), or "
                          "rpm=N,tpm=N,rpd=N[,window=S]."),
        click.option("--limiter", type=click.Choice(list(BACKENDS)), default=None,
                     help="Where the limiter keeps state: memory, sqlite (shared by processes), redis (machines), "
                          "ray (a Ray cluster, with --ray)."),
        click.option("--base-url", default=None,
                     help="Send requests to this server (an emulator, a gateway, a proxy; GOOGLE_GEMINI_BASE_URL)."),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def note(message: str) -> None:
    click.echo(message, err=True)


def wants_emulator(flag: bool) -> bool:
    """The command's own --emulator, or the group's (`flashlane --emulator COMMAND`)."""
    ctx = click.get_current_context(silent=True)
    return flag or bool(ctx and ctx.find_root().params.get("emulator"))


def make_lane(*, emulator: bool, model: str | None = None, thinking: str | None = None,
              max_output_tokens: int | None = None, timeout_s: float | None = None, limits: str | None = None,
              limiter: str | None = None, defaults: dict[str, Any] | None = None, **extra: Any) -> Lane:
    """The Lane for a task command, from its options (one line when it runs on the emulator)."""
    return _announce(Lane(_settings(emulator, model, thinking, max_output_tokens, timeout_s, limits, limiter,
                                    defaults, extra)))


def make_client(*, emulator: bool, model: str | None = None, thinking: str | None = None,
                max_output_tokens: int | None = None, timeout_s: float | None = None, limits: str | None = None,
                limiter: str | None = None, defaults: dict[str, Any] | None = None, **extra: Any) -> Client:
    """The call path alone, for the commands that hand it to the pipeline (run, batch)."""
    return _announce(Client(_settings(emulator, model, thinking, max_output_tokens, timeout_s, limits, limiter,
                                      defaults, extra)))


def lane_settings(*, emulator: bool, model: str | None = None, thinking: str | None = None,
                  max_output_tokens: int | None = None, timeout_s: float | None = None, limits: str | None = None,
                  limiter: str | None = None, defaults: dict[str, Any] | None = None, **extra: Any) -> Settings:
    """The settings ``make_client`` builds a client from (``flashlane run --ray`` sends them to its actors)."""
    return _settings(emulator, model, thinking, max_output_tokens, timeout_s, limits, limiter, defaults, extra)


def _settings(emulator: bool, model: str | None, thinking: str | None, max_output_tokens: int | None,
              timeout_s: float | None, limits: str | None, limiter: str | None, defaults: dict[str, Any] | None,
              extra: dict[str, Any]) -> Settings:
    if extra.get("base_url"):
        extra["base_url_from"] = "--base-url"
    return load_settings(emulator=wants_emulator(emulator), model=model, thinking=thinking,
                         max_output_tokens=max_output_tokens, timeout_s=timeout_s, limits=limits,
                         limiter=limiter, defaults=defaults, **extra)


def _announce(client: Any) -> Any:
    if client.settings.backend == "emulator":
        note(f"flashlane: using the built-in emulator at {client.emulator_url} (offline; answers are synthetic)")
    return client


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    sys.stdout.flush()
