"""flashlane models: the catalog as a table, marked with what the API lists."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..config import load_settings
from ..errors import FlashlaneError
from ..models import CATALOG, ModelInfo
from .common import echo_json, note


def _row(m: ModelInfo, listed: set[str] | None) -> dict[str, Any]:
    p = m.prices
    return {
        "id": m.id,
        "status": m.status,
        "released": m.released.isoformat() if m.released else None,
        "shutdown": m.shutdown.isoformat() if m.shutdown else None,
        "replacement": m.replacement,
        "aliases": list(m.aliases),
        "input_per_1m": p.input if p else None,
        "output_per_1m": p.output if p else None,
        "cached_per_1m": p.cached_input if p else None,
        "batch_input_per_1m": p.batch_input if p else None,
        "batch_output_per_1m": p.batch_output if p else None,
        "input_token_limit": m.input_token_limit,
        "output_token_limit": m.output_token_limit,
        "thinking": list(m.thinking_levels) if m.thinking_levels else
        (f"budget {m.thinking_budget_range[0]}-{m.thinking_budget_range[1]}" if m.thinking_budget_range else None),
        "listed_by_api": (m.id in listed) if listed is not None else None,
    }


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--emulator", is_flag=True, help="Ask the built-in emulator which models it lists.")
def models_command(as_json: bool, emulator: bool) -> None:
    """The model catalog: lifecycle, prices (USD per 1M tokens), limits, thinking."""
    listed: set[str] | None = None
    settings = load_settings(emulator=emulator)
    if settings.has_credentials:
        from ..client import Lane

        try:
            with Lane(settings) as lane:
                listed = set(lane.list_models())
        except FlashlaneError as e:
            note(f"warning: could not list models from the API: {e.message}")
    rows = [_row(m, listed) for m in CATALOG.values()]
    if as_json:
        echo_json(rows)
        return
    table = Table(title="flashlane model catalog (prices: USD per 1M tokens, paid tier; output includes thinking)")
    for col in ("model", "status", "dates", "in", "out", "cached", "batch in/out", "context/out", "thinking", "API"):
        table.add_column(col)
    for r in rows:
        dates = r["released"] or ""
        if r["shutdown"]:
            dates += f" → shut {r['shutdown']}"
        status = r["status"] + (f" (use {r['replacement']})" if r["replacement"] else "")
        api = {True: "listed", False: "not listed", None: "-"}[r["listed_by_api"]]
        thinking = ", ".join(r["thinking"]) if isinstance(r["thinking"], list) else (r["thinking"] or "-")
        table.add_row(r["id"], status, dates, f"{r['input_per_1m']}", f"{r['output_per_1m']}", f"{r['cached_per_1m']}",
                      f"{r['batch_input_per_1m']}/{r['batch_output_per_1m']}",
                      f"{r['input_token_limit']:,}/{r['output_token_limit']:,}", thinking, api)
    Console(width=160).print(table)
    if listed is None:
        note("(set GEMINI_API_KEY, or pass --emulator, to mark which models the API lists)")
