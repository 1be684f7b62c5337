"""``flashlane emulator``: serve the emulator until SIGINT/SIGTERM, then exit 0.

The base URL is the first line of stdout (flushed), so scripts can start it with ``--port 0``
and read where it listens. The server runs in a background thread; the main thread only
waits for a signal, which keeps shutdown clean (uvicorn's own handlers would re-raise it).
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click
import yaml

from .caches import DEFAULT_IMPLICIT_RATE
from .config import (
    DEFAULT_BATCH_TURNAROUND_S,
    DEFAULT_FILE_MAX_BYTES,
    DEFAULT_FLEX_LATENCY_FACTOR,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_WINDOW_SECONDS,
    EmulatorConfig,
    load_data_file,
    load_projects_file,
)


def _one_line(e: BaseException) -> str:
    """A parser's message spans several lines with a caret diagram; keep the gist and the place."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        return f"{e.problem} at line {e.problem_mark.line + 1}, column {e.problem_mark.column + 1}"
    return " ".join(str(e).split())[:200]


def _load_or_fail(option: str, path: str | None, load: Any) -> Any:
    if not path:
        return None
    try:
        return load(path)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as e:
        raise click.UsageError(f"cannot load {option} {path}: {_one_line(e)} (fix the file; formats are in "
                               f"'flashlane emulator --help' and docs/emulator.md)") from e


def _load_rules(path: str) -> list[dict[str, Any]]:
    """Read and check a scenario file (unknown keys and bad values fail here, not per request)."""
    from .scenario import Rule, rules_from_data

    rules = rules_from_data(load_data_file(path))
    for i, rule in enumerate(rules, 1):
        Rule.parse(rule, i)
    return rules


def _file_option(flag: str, dest: str, help_: str) -> Any:
    return click.option(flag, dest, type=click.Path(exists=True, dir_okay=False), help=help_)


@click.command("emulator")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port (0 picks a free one).")
@click.option("--rpm", default=0, type=click.IntRange(min=0), help="Requests per minute per project and model (0 = unlimited).")
@click.option(
    "--tpm", default=0, type=click.IntRange(min=0), help="Input tokens per minute per project and model (0 = unlimited)."
)
@click.option(
    "--rpd", default=0, type=click.IntRange(min=0), help="Requests per Pacific day per project and model (0 = unlimited)."
)
@click.option(
    "--window-seconds",
    default=DEFAULT_WINDOW_SECONDS,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=1e9),
    help="Length of the 'per minute' windows (scaled down for benchmarks).",
)
@click.option(
    "--latency-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, max=1e6),
    help="Multiply the modelled latency (0 = answer at once).",
)
@click.option(
    "--tier",
    default="free",
    show_default=True,
    type=click.Choice(["free", "tier1", "tier2", "tier3"]),
    help="Which quotaId names 429s use (free tier or paid).",
)
@_file_option("--scenario", "scenario_file", "YAML/JSON file of scenario rules (faults and scripted answers).")
@click.option(
    "--implicit-cache-rate",
    default=DEFAULT_IMPLICIT_RATE,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Share of requests repeating a long recent prefix that report it as cached (0 = never).",
)
@_file_option("--projects", "projects_file", "YAML/JSON file mapping API keys to projects and per-project quotas.")
@click.option(
    "--batch-turnaround",
    type=click.FloatRange(min=0, max=1e9),
    default=None,
    help=f"Seconds from batch creation to SUCCEEDED [default: {DEFAULT_BATCH_TURNAROUND_S:g} x --latency-scale].",
)
@click.option(
    "--batch-enqueued-tokens",
    type=click.IntRange(min=0),
    default=0,
    help="Batch API enqueued-token limit per project and model (0 = unlimited).",
)
@click.option(
    "--flex-latency-factor",
    type=click.FloatRange(min=0, max=1e6),
    default=DEFAULT_FLEX_LATENCY_FACTOR,
    show_default=True,
    help="Flex (service_tier flex) answers take this many times the standard latency.",
)
@click.option(
    "--flex-shed-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of flex requests shed with 503 UNAVAILABLE (deterministic: every 1/rate-th).",
)
@click.option(
    "--file-max-bytes",
    type=click.IntRange(min=1),
    default=DEFAULT_FILE_MAX_BYTES,
    show_default=True,
    help="Largest file the Files API accepts (bigger uploads get the 400).",
)
@click.option(
    "--extra-model",
    "extra_models",
    multiple=True,
    help="Also serve this model ID, which the catalog does not know (prices unknown); repeatable.",
)
def emulator_command(scenario_file: str | None, projects_file: str | None, batch_turnaround: float | None,
                     extra_models: tuple[str, ...], **settings: Any) -> None:
    """Run a local Gemini API emulator (the SDKs talk to it via base_url)."""
    from .server import Emulator

    # every other option is the EmulatorConfig field of the same name
    config = EmulatorConfig(batch_turnaround_s=batch_turnaround, extra_models=list(extra_models), **settings)
    _load_or_fail("--projects", projects_file, lambda f: load_projects_file(config, f))
    if scenario_file:
        config.scenario = _load_or_fail("--scenario", scenario_file, _load_rules)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    emu = Emulator(config)
    try:
        emu.start()
    except OSError as e:
        raise click.ClickException(f"cannot listen on {config.host}:{config.port}: {e.strerror or e}") from e
    sys.stdout.write(emu.base_url + "\n")
    sys.stdout.flush()
    quotas = " ".join(f"{k}={getattr(config, k) or 'unlimited'}" for k in ("rpm", "tpm", "rpd"))
    click.echo(f"flashlane emulator: quotas {quotas}, latency x{config.latency_scale}; Ctrl-C to stop", err=True)
    while not stop.wait(0.5):
        pass
    emu.stop()
