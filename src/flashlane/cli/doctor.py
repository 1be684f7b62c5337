"""flashlane doctor: every check pass / warn / fail, each with its fix.

Each check runs the validation the commands run (settings loading, the credentials check, the
thinking and limits parsers, ``models.get``), so doctor passes exactly what a command accepts.
Its exit code is the one a command would give: 2 when a check failed on a usage or
configuration error (printed on stderr exactly as every command prints it), 1 when another
check failed, 0 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click

from ..call.request import thinking_allowance
from ..config import Settings, load_settings
from ..errors import ConfigError, FlashlaneError, describe_reset, next_pacific_midnight
from ..models import lookup
from .common import echo_json, wants_emulator

MIN_GENAI_MAJOR = 1  # 1.x works; 3.x is what flashlane is tested with


@dataclass
class Check:
    name: str
    status: str  # pass | warn | fail | skip
    detail: str
    fix: str = ""
    error: FlashlaneError | None = None  # what a command would raise for this failure


def _failed(name: str, error: FlashlaneError) -> Check:
    return Check(name, "fail", error.message, error.hint or "", error)


def _pkg_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _checks(settings: Settings | None, load_error: FlashlaneError | None, offline: bool) -> list[Check]:
    out: list[Check] = []
    genai = _pkg_version("google-genai")
    if genai is None:
        out.append(Check("google-genai", "fail", "not installed", "pip install google-genai"))
    else:
        major = int(genai.split(".")[0])
        out.append(Check("google-genai", "pass" if major >= 3 else "warn", f"version {genai}",
                         "" if major >= 3 else "pip install -U google-genai (3.x is what flashlane is tested with)"))
    old = _pkg_version("google-generativeai")
    out.append(Check("deprecated SDK", "warn" if old else "pass",
                     f"google-generativeai {old} is installed" if old else "google-generativeai is not installed",
                     "pip uninstall google-generativeai (deprecated; flashlane uses google-genai)" if old else ""))
    if settings is None:
        assert load_error is not None
        out.append(_failed("configuration", load_error))
        return out
    out.append(Check("config file", "pass", settings.config_file or "none (environment and defaults)"))
    try:
        settings.require_credentials()
    except ConfigError as e:
        out.append(_failed("credentials", e))
    else:
        if settings.backend == "emulator":
            out.append(Check("credentials", "pass", "emulator backend (offline)"))
        elif settings.backend == "vertex":
            out.append(Check("credentials", "pass",
                             f"Vertex AI, project {settings.vertex_project or '(express mode, API key)'}, "
                             f"location {settings.vertex_location}"))
        else:
            where = "a local base URL" if settings.base_url else "Gemini API (AI Studio)"
            out.append(Check("credentials", "pass", f"API key set ({where}); the key is not shown"))
    info = lookup(settings.model)
    if info is None:
        out.append(Check("model (catalog)", "warn", f"{settings.model} is not in flashlane's catalog",
                         "run 'flashlane models'; prices and limits are unknown for it"))
    elif info.retired:
        out.append(Check("model (catalog)", "fail", f"{settings.model} was shut down on {info.shutdown}",
                         f"set FLASHLANE_MODEL={info.replacement}"))
    elif info.status == "deprecated":
        out.append(Check("model (catalog)", "warn", f"{settings.model} is deprecated ({info.note or 'superseded'})",
                         f"set FLASHLANE_MODEL={info.replacement}" if info.replacement else ""))
    elif info.reported_shutdown is not None:
        out.append(Check("model (catalog)", "warn", f"{settings.model}: {info.note}",
                         "check 'flashlane models' (it marks what the API lists) and plan a move to a 3.x model"))
    elif info.status == "preview":
        out.append(Check("model (catalog)", "warn", f"{settings.model} is a preview model (stricter limits, may be retired)",
                         "use a GA model such as gemini-3.1-flash-lite for production"))
    else:
        out.append(Check("model (catalog)", "pass", f"{settings.model} ({info.status})"))
    if info is not None:
        try:
            thinking_allowance(info, settings.thinking)  # the check every request's builder makes
        except ConfigError as e:
            out.append(_failed("thinking", e))
        else:
            shown = (settings.thinking or info.cheapest_thinking_level or "").lower() if info.uses_thinking_levels \
                else f"budget {settings.thinking or info.default_thinking_budget}"
            out.append(Check("thinking", "pass", f"{shown} for {info.id}"))
    out.append(Check("timeout", "pass", f"{settings.timeout_s:g} s per request (the SDK default is none)"))
    out.append(Check("output cap", "pass", f"max_output_tokens {settings.max_output_tokens} (thinking included), "
                                          f"ceiling {settings.output_ceiling}"))
    out.append(_limits(settings))
    reset = next_pacific_midnight(datetime.now(UTC))
    out.append(Check("daily quota reset", "pass", f"next requests-per-day reset: {describe_reset(reset)}"))
    out.append(_api_check(settings, offline, info is not None and info.retired))
    return out


def _limits(settings: Settings) -> Check:
    from ..limits import make_limiter

    # Built exactly as a Lane builds it (same backend, path and URL), so a limiter a command
    # could not create (e.g. redis without the package) fails here with the same error.
    try:
        limiter = make_limiter(settings.limits, settings.limiter, path=settings.limiter_path,
                               redis_url=settings.redis_url, model=settings.model)
    except ConfigError as e:
        return _failed("rate limits", e)
    return Check("rate limits", "pass", str(limiter.describe()))


def _api_check(settings: Settings, offline: bool, retired: bool) -> Check:
    if offline:
        return Check("model on the API", "skip", "skipped (--offline)")
    if not settings.has_credentials:
        return Check("model on the API", "skip", "skipped (no credentials)")
    from ..lane import Lane

    try:
        with Lane(settings) as lane:
            model = lane.get_model()
        limit = getattr(model, "output_token_limit", None)
        return Check("model on the API", "pass", f"models.get({settings.model}) ok; output limit {limit}")
    except FlashlaneError as e:
        return _failed("model on the API", e)


@click.command("doctor")
@click.option("--offline", is_flag=True, help="Skip the checks that call the API.")
@click.option("--emulator", is_flag=True, help="Check against the built-in emulator.")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor_command(offline: bool, emulator: bool, as_json: bool) -> None:
    """Check the installation, credentials, model and settings."""
    settings: Settings | None = None
    error: FlashlaneError | None = None
    try:
        settings = load_settings(emulator=wants_emulator(emulator))
    except ConfigError as e:
        error = e
    checks = _checks(settings, error, offline)
    if as_json:
        echo_json([{k: v for k, v in c.__dict__.items() if k != "error"} for c in checks])
    else:
        colors: dict[str, Any] = {"pass": "green", "warn": "yellow", "fail": "red", "skip": "blue"}
        for c in checks:
            click.echo(click.style(f"{c.status.upper():4}", fg=colors[c.status]) + f"  {c.name}: {c.detail}")
            if c.fix:
                click.echo(f"      fix: {c.fix}")
    failed = [c for c in checks if c.status == "fail"]
    usage = next((c.error for c in failed if isinstance(c.error, ConfigError)), None)
    if usage is not None:
        raise usage  # printed and exited (2) exactly as any command would
    if failed:
        raise SystemExit(1)
