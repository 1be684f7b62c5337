"""flashlane models: the catalog as a table, marked with what the API lists.

The table fits the terminal: model IDs are never cut; the columns that matter least are
dropped first when the terminal is narrow (``--json`` always has everything). A model the API
lists but the catalog does not know is shown too, with its prices as unknown.
"""

from __future__ import annotations

from typing import Any

import click
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from ..config import load_settings
from ..errors import FlashlaneError
from ..models import CATALOG, ModelInfo, canonical_id, lookup
from .common import echo_json, note, wants_emulator

UNKNOWN = "unknown"  # a price or date the catalog does not have; never guessed
# Table columns, most important first; the last ones are dropped first on a narrow terminal.
COLUMNS = ("model", "status", "in", "out", "batch in/out", "flex in/out", "cached", "thinking",
           "context/out", "released")


def _row(m: ModelInfo, listed: set[str] | None) -> dict[str, Any]:
    p = m.prices
    return {
        "id": m.id,
        "in_catalog": True,
        "status": m.status,
        "released": m.released.isoformat() if m.released else None,
        "shutdown": m.shutdown.isoformat() if m.shutdown else None,
        "earliest_shutdown": m.earliest_shutdown.isoformat() if m.earliest_shutdown else None,
        "reported_shutdown": m.reported_shutdown.isoformat() if m.reported_shutdown else None,
        "replacement": m.replacement,
        "note": m.note or None,
        "aliases": list(m.aliases),
        "input_per_1m": p.input if p else None,
        "output_per_1m": p.output if p else None,
        "cached_per_1m": p.cached_input if p else None,
        "batch_input_per_1m": p.batch_input if p else None,
        "batch_output_per_1m": p.batch_output if p else None,
        "flex_input_per_1m": p.flex_input if p else None,
        "flex_output_per_1m": p.flex_output if p else None,
        "search_grounding_per_1k": p.search_grounding_per_1k if p else None,
        "search_grounding_unit": p.search_grounding_unit if p else None,
        "input_token_limit": m.input_token_limit,
        "output_token_limit": m.output_token_limit,
        "thinking": list(m.thinking_levels) if m.thinking_levels else
        (f"budget {m.thinking_budget_range[0]}-{m.thinking_budget_range[1]}" if m.thinking_budget_range else None),
        "listed_by_api": (m.id in listed) if listed is not None else None,
        "source": m.source or None,
    }


def _unknown_row(model_id: str) -> dict[str, Any]:
    """A model the API lists that the catalog does not know: usable, prices unknown."""
    row: dict[str, Any] = dict.fromkeys(_row(next(iter(CATALOG.values())), None), None)
    row.update(id=model_id, in_catalog=False, status="not in catalog", aliases=[], listed_by_api=True)
    return row


def _price(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:g}"


def _pair(a: float | None, b: float | None) -> str:
    return UNKNOWN if a is None or b is None else f"{a:g}/{b:g}"


def _status(r: dict[str, Any]) -> str:
    text = r["status"]
    if r["shutdown"]:
        text += f" {r['shutdown']}"
    if r["replacement"]:
        text += f" → {r['replacement']}"
    if r["reported_shutdown"]:
        text += f" (reported shut down {r['reported_shutdown']}, unconfirmed)"
    if r["listed_by_api"] is False:
        text += "; NOT listed by the API"
    elif r["listed_by_api"] and not r["in_catalog"]:
        text += " (listed by the API)"
    return text


def _cells(r: dict[str, Any]) -> dict[str, str]:
    thinking = r["thinking"]
    limits = (f"{r['input_token_limit']:,}/{r['output_token_limit']:,}" if r["in_catalog"] else UNKNOWN)
    return {
        "model": r["id"],
        "status": _status(r),
        "in": _price(r["input_per_1m"]),
        "out": _price(r["output_per_1m"]),
        "batch in/out": _pair(r["batch_input_per_1m"], r["batch_output_per_1m"]),
        "flex in/out": _pair(r["flex_input_per_1m"], r["flex_output_per_1m"]),
        "cached": _price(r["cached_per_1m"]),
        "thinking": ", ".join(thinking) if isinstance(thinking, list) else (thinking or UNKNOWN),
        "context/out": limits,
        "released": r["released"] or UNKNOWN,
    }


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Table:
    table = Table(title="Gemini models (USD per 1M tokens, paid tier; output includes thinking)",
                  title_justify="left", expand=False)
    for col in columns:
        if col == "model":
            table.add_column(col, no_wrap=True, overflow="ignore")  # an ID is never cut
        else:
            table.add_column(col, overflow="fold")
    for r in rows:
        cells = _cells(r)
        table.add_row(*(cells[c] for c in columns))
    return table


def _min_width(rows: list[dict[str, Any]], column: str) -> int:
    """The narrowest a column can be without breaking a word (an ID, a price, a date)."""
    texts = [column] + [_cells(r)[column] for r in rows]
    if column == "model":
        return max(cell_len(t) for t in texts)
    return max(cell_len(word) for t in texts for word in t.split())


def fitted_table(rows: list[dict[str, Any]], width: int) -> tuple[Table, int]:
    """The widest table that fits ``width`` without breaking words, dropping the least important
    columns first; returns it and how many columns were dropped."""
    columns: tuple[str, ...] = COLUMNS
    while len(columns) > 2:
        # each column: its text, one space of padding either side, one border; plus the last border
        need = sum(_min_width(rows, c) + 3 for c in columns) + 1
        if need <= width:
            break
        columns = columns[:-1]
    return _table(rows, columns), len(COLUMNS) - len(columns)


def _listed_models(emulator: bool) -> set[str] | None:
    settings = load_settings(emulator=emulator)
    if not settings.has_credentials:
        return None
    from ..lane import Lane

    try:
        with Lane(settings) as lane:
            return {canonical_id(m) for m in lane.list_models()}
    except FlashlaneError as e:
        note(f"warning: could not list models from the API: {e.message}")
        return None


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (every field, sources included) instead of a table.")
@click.option("--emulator", is_flag=True, help="Ask the built-in emulator which models it lists.")
def models_command(as_json: bool, emulator: bool) -> None:
    """The model catalog: lifecycle, prices (USD per 1M tokens), limits, thinking; marked with
    what the API lists (catalog entries it no longer lists, models it lists that the catalog lacks)."""
    listed = _listed_models(wants_emulator(emulator))
    rows = [_row(m, listed) for m in CATALOG.values()]
    rows += [_unknown_row(m) for m in sorted(listed or ()) if lookup(m) is None]
    if as_json:
        echo_json(rows)
        return
    console = Console(highlight=False)
    table, hidden = fitted_table(rows, console.width)
    console.print(table)
    if hidden:
        note(f"({hidden} more columns at a wider terminal; --json has every field)")
    if listed is None:
        note("(set GEMINI_API_KEY, or pass --emulator, to mark which models the API lists)")
    elif any(r["listed_by_api"] is False for r in rows):
        note("NOT listed: the API no longer lists this catalog entry; requests to it will fail")
