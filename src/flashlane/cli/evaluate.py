"""flashlane eval TASK LABELLED_FILE --truth COLUMN: the task's options as for ``run``, and a grid
(--models, --thinking, --pack, --examples, --service-tier, --cache-prefix, --media-resolution:
comma lists), each
configuration a run in the eval's folder (resumable), scored; a table on stdout (``--json``: the
whole report). Exit 2 on bad input, before any request; 1 when the budget stopped the grid;
130/143 when interrupted (rerun to resume)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..config import RUN_DEADLINE_S
from ..media import MEDIA_RESOLUTIONS
from ..pipeline.readers import DEFAULT_ENCODING, FORMATS, iter_rows
from ..pipeline.runfile import RunInterrupted
from ..tasks import get_task
from .common import lane_options, make_client, note
from .run import _declared, _RunCommand, _task_option_params
from .tasks import task_values

__all__ = ["eval_command"]

# the task's --examples FILE gives way to the grid's --examples 0,2,all, its --media-resolution LEVEL
# to the grid's --media-resolution low,high
_GRID_OWNED = {"examples", "media_resolution"}


def _list(value: str | None) -> list[str] | None:
    return None if value is None else [x.strip() for x in value.split(",") if x.strip()]


def _packs(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int | str | None] | None:
    out: list[int | str | None] = []
    for x in _list(value) or []:
        if x.lower() in ("auto", "off"):
            out.append(None if x.lower() == "off" else "auto")
        elif x.isdigit() and int(x) >= 1:
            out.append(None if int(x) == 1 else int(x))
        else:
            raise click.BadParameter(f"{x!r}: use numbers >= 1, auto or off", param_hint="--pack")
    return out or None


def _examples(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int | str] | None:
    out: list[int | str] = []
    for x in _list(value) or []:
        if x.lower() == "all":
            out.append("all")
        elif x.isdigit():
            out.append(int(x))
        else:
            raise click.BadParameter(f"{x!r}: use counts of worked examples or all", param_hint="--examples")
    return out or None


def _cache_prefixes(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str | None] | None:
    out: list[str | None] = []
    for x in _list(value) or []:
        if x.lower() not in ("auto", "on", "off"):
            raise click.BadParameter(f"{x!r}: use auto, on or off", param_hint="--cache-prefix")
        out.append(x.lower())
    return out or None


def _media_resolutions(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str | None] | None:
    out: list[str | None] = []
    for x in _list(value) or []:
        if x.lower() not in MEDIA_RESOLUTIONS:
            raise click.BadParameter(f"{x!r}: use {', '.join(MEDIA_RESOLUTIONS)}", param_hint="--media-resolution")
        out.append(x.lower())
    return out or None


def default_eval_dir(input_path: str, task: str) -> Path:
    """Beside the labelled file: ``reviews.classify.eval/`` (rerun the command: it resumes)."""
    p = Path(input_path)
    return p.with_name(f"{p.stem}.{Path(task).stem}.eval")


@click.command("eval", cls=_RunCommand,
               params=[p for p in _task_option_params() if p.name not in _GRID_OWNED])
@click.argument("task")
@click.argument("input_path", metavar="LABELLED_FILE")
@click.option("--truth", required=True,
              help="The truth column; for extraction and custom tasks one per output field, comma-separated "
                   "(dotted for nested fields: address.city).")
@click.option("--models", default=None, help="Models to compare, comma-separated (default: --model).")
@click.option("--pack", default=None, callback=_packs, help="Pack sizes to compare: e.g. 1,10,auto.")
@click.option("--examples", "examples_grid", default=None, callback=_examples,
              help="How many of the task's worked examples: e.g. 0,2,all (default all).")
@click.option("--service-tier", "tiers", default=None, help="Service tiers to compare: e.g. standard,flex.")
@click.option("--cache-prefix", "cache_prefixes", default=None, callback=_cache_prefixes,
              help="Explicit context caching of the prefix to compare: e.g. on,off.")
@click.option("--media-resolution", "media_resolutions", default=None, callback=_media_resolutions,
              help="Tokens per image or PDF page to compare: e.g. low,high (see docs/documents.md).")
@click.option("--media-column", default=None,
              help="A column of file paths (images, PDFs, audio) sent with each row; relative paths are read "
                   "against the labelled file's folder.")
@click.option("--sample", type=click.IntRange(min=1), default=None,
              help="Evaluate N rows, a seeded sample stratified by the truth (default: every row).")
@click.option("--tolerance", type=click.FloatRange(min=0), default=None,
              help="Recommend the cheapest within this of the best score (a fraction for accuracy, points for "
                   "chrF; default: not significantly below the best).")
@click.option("--budget-usd", type=click.FloatRange(min=0), default=None,
              help="Stop the grid before its cost would pass this (the table is then partial).")
@click.option("--dry-run", is_flag=True, help="Show each configuration's requests and estimated cost; send nothing.")
@click.option("--eval-dir", default=None,
              help="The eval's folder: its runs, cache and truth (default <file stem>.<task>.eval beside the file); "
                   "rerun the same command to resume, 'flashlane report DIR' to show it.")
@click.option("--fresh", is_flag=True, help="Start the eval over, discarding its folder's runs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sample and the bootstrap intervals.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Input format (default: by extension).")
@click.option("--encoding", default=DEFAULT_ENCODING, show_default=True, help="Text encoding of CSV/TSV/JSON input.")
@click.option("--column", default=None, help="The column holding the text.")
@click.option("--template", default=None, help='Build the text from several columns, e.g. "{title}: {body}".')
@click.option("--id-column", default=None, help="The column holding each row's id (default: a column named id, "
                                                "else the row number).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="Requests in flight (default: auto).")
@click.option("--plot", "plots", multiple=True, metavar="FILE",
              help="Also draw score against cost: out.html (self-contained page), out.png or out.svg; repeatable.")
@click.option("--write-task", "write_task", default=None, metavar="FILE.yaml",
              help="Write the recommended configuration as a task file: flashlane run FILE.yaml INPUT runs with it.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@lane_options
def eval_command(task: str, input_path: str, truth: str, models: str | None, pack: Any, examples_grid: Any,
                 tiers: str | None, cache_prefixes: Any, media_resolutions: Any, media_column: str | None,
                 sample: int | None, tolerance: float | None,
                 budget_usd: float | None, dry_run: bool, eval_dir: str | None, fresh: bool, seed: int,
                 fmt: str | None, encoding: str, column: str | None, template: str | None, id_column: str | None,
                 concurrency: int | None, plots: tuple[str, ...], write_task: str | None, as_json: bool,
                 **given: Any) -> None:
    """Score TASK on LABELLED_FILE once per configuration of the grid; recommend the cheapest that
    keeps the best accuracy. --thinking takes a comma list here (e.g. minimal,high)."""
    from ..eval.choice import check_task_path
    from ..eval.plot import check_plot_path, require_plot_extra

    for p in plots:  # a plot or task file that cannot be written fails now, before anything is spent
        check_plot_path(p)
        require_plot_extra()
    if write_task:
        check_task_path(write_task)
    loaded = click.get_current_context().meta.get("flashlane.task")
    the_task = loaded[1] if loaded and loaded[0] == task else get_task(task)
    declared = {k: v for k, v in _declared(the_task).items() if k not in _GRID_OWNED}
    task_options = task_values(declared.values(), {k: given.pop(k) for k in list(given) if k in declared})
    the_task.check_options(the_task.options(task_options))
    thinking = _list(given.pop("thinking"))
    model_list = _list(models) or ([given["model"]] if given.get("model") else None)
    rows = list(iter_rows(input_path, fmt=fmt, encoding=encoding))
    folder = Path(eval_dir) if eval_dir else default_eval_dir(input_path, task)
    grid = {"models": model_list, "thinking": thinking, "pack": pack, "examples": examples_grid,
            "service_tier": _list(tiers), "cache_prefix": cache_prefixes, "media_resolution": media_resolutions}
    common = {"truth": _list(truth) or [], "column": column, "template": template, "id_column": id_column,
              "media_column": media_column, "media_base": Path(input_path).parent,
              "sample": sample, "seed": seed, **grid, **task_options}
    with make_client(defaults={"retry_deadline_s": RUN_DEADLINE_S}, **given) as client:
        from ..eval import estimate, evaluate, format_estimate

        planned = estimate(client, the_task, rows, **common)
        n_items = min(sample or len(rows), len(rows))
        if dry_run:
            click.echo(format_estimate(planned, n_items))
            return
        to_pay = sum(r["cost_usd"] or 0.0 for r in planned if r["pays"])
        note(f"eval: {len(planned)} configurations on {n_items} items, about ${to_pay:.6f} at most to pay "
             f"(--dry-run shows each); folder {folder}")

        def say(i: int, n: int, cfg: Any) -> None:
            note(f"[{i + 1}/{n}] {cfg.name}")

        try:
            # the task by name or path (not the loaded object): a written task file names it
            report = evaluate(client, task, rows, tolerance=tolerance, budget_usd=budget_usd,
                              concurrency=concurrency, eval_dir=folder, fresh=fresh, on_config=say, **common)
        except RunInterrupted as e:
            note(f"eval interrupted: rerun the same command to resume (folder {folder})")
            sys.exit(e.exit_code)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
    for p in plots:
        note(f"plot: {report.plot(p)}")
    if write_task and report.best is not None:
        path = report.write_task(write_task, task=the_task)
        note(f"task file: {path} (the recommended configuration); run it with: flashlane run {path} INPUT")
    if report.stopped:
        sys.exit(1)  # as ``flashlane run`` stopped by its budget: the table is partial
