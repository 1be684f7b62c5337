"""``flashlane gateway``: serve the Gemini wire with flashlane's policy until SIGINT/SIGTERM.

The base URL is the first line of stdout (flushed), so scripts can start it with ``--port 0``
and read where it listens, as with ``flashlane emulator``.
"""

from __future__ import annotations

import signal
import sys
import threading

import click

from ..config import load_settings
from ..gateway import Gateway, GatewayConfig
from ..gateway.app import DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_WAIT_S
from ..gateway.server import DEFAULT_HOST, DEFAULT_PORT, default_ledger_path
from ..models import THINKING_LEVELS

__all__ = ["gateway_command"]


@click.command("gateway")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port (0 picks a free one).")
@click.option("--tokens", "tokens_file", type=click.Path(dir_okay=False), default=None,
              help="TOML/YAML file mapping gateway tokens to projects and upstream keys.")
@click.option("--pass-keys", is_flag=True, default=False,
              help="Forward each client's own API key; its project is a hash of the key.")
@click.option("--limits", default=None,
              help="Quota per project and model: adaptive (default), free, tier1..tier3, rpm=N,tpm=N,rpd=N[,window=S].")
@click.option("--limiter", type=click.Choice(["memory", "sqlite", "redis"]), default=None,
              help="Where the limiter keeps state; redis (FLASHLANE_REDIS_URL) lets replicas share one quota.")
@click.option("--redis-url", default=None, help="Redis for --limiter redis (default FLASHLANE_REDIS_URL).")
@click.option("--ledger", default=None, help=f"Usage ledger (SQLite; default <state dir>/{default_ledger_path().name}).")
@click.option("--max-wait", type=click.FloatRange(min=0.1), default=DEFAULT_MAX_WAIT_S, show_default=True,
              help="Longest a request may wait for quota and retries (a client's X-Server-Timeout is shorter).")
@click.option("--max-attempts", type=click.IntRange(min=1), default=DEFAULT_MAX_ATTEMPTS, show_default=True,
              help="Upstream attempts per request.")
@click.option("--thinking", default=None, help="Thinking level added to generate requests that set none.")
@click.option("--max-output-tokens", type=click.IntRange(min=1), default=None,
              help="Output cap added to generate requests that set none.")
@click.option("--access-log", is_flag=True, default=False, help="One line per request on stderr (no keys, no query).")
@click.option("--emulator", is_flag=True, default=False, help="Forward to a built-in emulator (offline).")
def gateway_command(host: str, port: int, tokens_file: str | None, pass_keys: bool, limits: str | None,
                    limiter: str | None, redis_url: str | None, ledger: str | None, max_wait: float,
                    max_attempts: int, thinking: str | None, max_output_tokens: int | None, access_log: bool,
                    emulator: bool) -> None:
    """Serve the Gemini API to any SDK, with flashlane's limiter, retries, ledger and metrics.

    Point a client's base URL (GOOGLE_GEMINI_BASE_URL, httpOptions.baseUrl) at the printed URL.
    """
    ctx = click.get_current_context()
    group_emulator = bool(ctx.find_root().params.get("emulator"))
    settings = load_settings(emulator=emulator or group_emulator, limits=limits, limiter=limiter, redis_url=redis_url)
    if thinking is not None and thinking.lower() not in THINKING_LEVELS and not thinking.lstrip("-").isdigit():
        raise click.BadParameter(f"use one of {', '.join(THINKING_LEVELS)} or a token budget", param_hint="--thinking")
    cfg = GatewayConfig(limits=settings.limits, max_wait_s=max_wait, max_attempts=max_attempts,
                        default_thinking=thinking, default_max_output_tokens=max_output_tokens,
                        access_log=access_log)
    gw = Gateway.from_settings(settings, tokens_file=tokens_file, pass_keys=pass_keys,
                               ledger=ledger or default_ledger_path(), host=host, port=port, config=cfg)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        gw.start()
    except OSError as e:
        gw.stop()
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    sys.stdout.write(gw.base_url + "\n")
    sys.stdout.flush()
    click.echo(gw.describe() + "; Ctrl-C to stop", err=True)
    while not stop.wait(0.5):
        pass
    gw.stop()
