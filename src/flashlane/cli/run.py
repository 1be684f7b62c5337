"""flashlane run TASK INPUT: a file of rows through a task, resumable; flashlane report RUN_DB.

Exit codes: 0 every row ok; 1 some rows failed, or the run stopped early (budget reached,
per-day quota exhausted: the run is parked and resumes when rerun); 2 a usage, input or
configuration error (nothing already done is lost), or the run database is held by another
run; 130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM: both save what was done, write the
partial output and leave the run resumable.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from ..config import RUN_DEADLINE_S, note_renamed
from ..errors import FlashlaneError, describe_reset
from ..models import SERVICE_TIERS
from ..pipeline.ledger import Ledger
from ..pipeline.readers import DEFAULT_ENCODING, FORMATS
from ..pipeline.report import format_report, load_report, report_json
from ..pipeline.runfile import (
    RUN_DB_SUFFIX,
    RunConfig,
    RunInterrupted,
    default_run_db,
    estimate_file,
    run_file,
)
from ..tasks import BUILTIN_TASKS, Task, get_task
from ..tasks.option import SHARED_OPTIONS, Option
from .common import lane_options, lane_settings, make_client, note
from .tasks import check_free, click_option, task_values

__all__ = ["run_command", "report_command"]


_TASK = "flashlane.task"  # ctx.meta: (name, Task) of the task file named as TASK, when it loads


def _pack(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    if value is None:
        return None
    if value.lower() == "auto":
        return "auto"
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter("use a number or 'auto'", param_hint="--pack") from None
    if n < 1:
        raise click.BadParameter("must be at least 1", param_hint="--pack")
    return n


def _builtin_options() -> dict[str, Option]:
    """Every built-in task's options (the first declaration of a name wins), then the shared ones."""
    out: dict[str, Option] = {}
    for t in BUILTIN_TASKS.values():
        for o in t.params:
            out.setdefault(o.name, o)
    out.update({o.name: o for o in SHARED_OPTIONS})
    return out


def _task_option_params() -> list[click.Parameter]:
    """Run's options for the built-in tasks' options, each help naming the tasks that read it."""
    readers: dict[str, list[str]] = {}
    for t in BUILTIN_TASKS.values():
        for o in t.params:
            readers.setdefault(o.name, []).append(t.name)
    return [click_option(o, f"{', '.join(readers[o.name])}: " if o.name in readers else "")
            for o in _builtin_options().values()]


def _old_tier(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        note_renamed("--tier", "--service-tier")
    return value


def _batch_options(given: dict[str, Any]) -> Any:
    from ..pipeline.batch import BatchOptions

    opts = BatchOptions(detach=given.pop("detach"), fallback=given.pop("batch_fallback"))
    max_requests, inline_max_bytes = given.pop("batch_max_requests"), given.pop("batch_inline_max_bytes")
    if max_requests is not None:
        opts.max_requests = max_requests
    if inline_max_bytes is not None:
        opts.inline_max_bytes = inline_max_bytes
    return opts


class _RunCommand(click.Command):
    """``flashlane run``: its own options, the options of the built-in tasks, and those declared by
    the task file named as TASK (so ``flashlane run my.toml --help`` lists them too)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The options depend on TASK, so read it first, ignoring what is not known yet.
        probe = click.Context(self, info_name=ctx.info_name, parent=ctx.parent, resilient_parsing=True,
                              ignore_unknown_options=True)
        # A bad command line or task file is reported by the parse and the run proper.
        with contextlib.suppress(click.UsageError, FlashlaneError):
            name = self.make_parser(probe).parse_args(args=list(args))[0].get("task")
            if isinstance(name, str) and name not in BUILTIN_TASKS:
                ctx.meta[_TASK] = (name, get_task(name))
        return super().parse_args(ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        if _TASK not in ctx.meta:
            return params
        task = ctx.meta[_TASK][1]
        # A task file's declaration of a name takes the place of a built-in task's.
        replaced = {o.name for o in task.params} & set(_builtin_options())
        params = [*(p for p in params if p.name not in replaced), *(click_option(o) for o in task.params)]
        check_free(task, params, "flashlane run")
        return params


def _declared(task: Task) -> dict[str, Option]:
    """How each task option on run's command line becomes a value: by the task's own declaration,
    else by the built-in task's that declares it."""
    return {**_builtin_options(), **{o.name: o for o in task.params}}


@click.command("run", cls=_RunCommand, params=_task_option_params())
@click.argument("task")
@click.argument("input_path", metavar="INPUT")
@click.option("-o", "--output", default=None, help="Output .jsonl/.csv/.parquet (default <input stem>.<task>.jsonl).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Input format (default: by extension).")
@click.option("--encoding", default=DEFAULT_ENCODING, show_default=True, help="Text encoding of CSV/TSV/JSON input.")
@click.option("--delimiter", default=None,
              help="CSV/TSV delimiter: one character, or tab (default: detected among , ; tab | for .csv; tab for .tsv).")
@click.option("--column", default=None, help="The column holding the text.")
@click.option("--template", default=None, help='Build the text from several columns, e.g. "{title}: {body}".')
@click.option("--media-column", default=None,
              help="A column of file paths (PDF, images, audio): each row's file is sent with it.")
@click.option("--glob", default=None, help="A folder input: only files matching this pattern, e.g. '*.pdf'.")
@click.option("--pages", default=None, metavar="RANGE",
              help="Send only these pages of each PDF, e.g. 1-3 or 1,4-5 (default: all).")
@click.option("--id-column", default=None,
              help="Column with unique row ids (default: a column named 'id' if there is one, else row number + "
                   "content hash; '' numbers the rows).")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Requests in flight (default: auto, from the quota and the model's latency; the limiter "
                   "still paces them).")
@click.option("--pack", default=None, callback=_pack, help="Items per request for structured tasks: N or auto.")
@click.option("--on-outage", type=click.Choice(["stop", "wait"]), default=None,
              help="When many calls in a row fail (an outage): stop and leave rows pending (default), or wait and probe.")
@click.option("--budget-usd", type=float, default=None, help="Stop before the run's cost would pass this.")
@click.option("--service-tier", type=click.Choice(SERVICE_TIERS), default=None,
              help="How requests are served and billed: standard (default; FLASHLANE_SERVICE_TIER), flex (half "
                   "price, minutes, sheddable), batch (half price, Batch API jobs, up to 24 h) or priority "
                   "(up to 2x the price, seconds, 0.3x the standard limits).")
@click.option("--tier", type=click.Choice(SERVICE_TIERS), default=None, hidden=True, callback=_old_tier)
@click.option("--finish-by", default=None, metavar="TIME|DURATION",
              help="Done by then at the lowest expected cost: plans the run across batch, flex, standard and "
                   "priority and moves rows when a tier stalls, e.g. 2h, 90m, 09:00 (UTC), 2026-12-08T09:00Z.")
@click.option("--dry-run", is_flag=True,
              help="Send nothing: print the items, PDF pages, estimated tokens and cost per service tier (countTokens "
                   "on a few sampled requests with files aside, nothing is sent or written); with --finish-by, the "
                   "plan and its expected cost.")
@click.option("--detach", is_flag=True, help="batch: submit the jobs and exit; rerun the same command to collect.")
@click.option("--batch-fallback", type=click.Choice(["queue", "standard"]), default="queue", show_default=True,
              help="batch: where a request that failed inside a job goes: the next job, or the standard service tier.")
@click.option("--batch-max-requests", type=click.IntRange(min=1), default=None,
              help="batch: requests per job at most (default 50,000; larger runs are split into several jobs).")
@click.option("--batch-inline-max-bytes", type=click.IntRange(min=1), default=None,
              help="batch: jobs up to this size are sent inline, larger ones as an uploaded JSONL file "
                   "(default 19,000,000: inline batches must stay under 20 MB).")
@click.option("--run-db", default=None, help="The run database (default <output>.flashlane.db).")
@click.option("--fresh", is_flag=True, help="Start the run over, discarding its database.")
@click.option("--retry-failed", is_flag=True, help="On resume, request rows that failed before again.")
@click.option("--no-cache", "cache", is_flag=True, flag_value=False, default=True,
              help="Do not read or write the response cache (answers kept per item; not the context cache).")
@click.option("--input-columns/--no-input-columns", default=True, show_default=True,
              help="Write the input's columns next to the id and the results (--no-input-columns: id and "
                   "results only).")
@click.option("--cache-prefix", type=click.Choice(["auto", "on", "off"]), default=None,
              help="Explicit context cache for the task's shared prefix (reference text, examples): auto = when "
                   "it saves money (default; setting cache_prefix), on, off.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Run through Ray Data: on a local cluster, or the cluster at ADDRESS (auto, host:port, "
                   "ray://host:10001). INPUT and -o may be object storage URIs; -o is a directory of files.")
@click.option("--actors", type=click.IntRange(min=1), default=None, help="--ray: flashlane actors (default 2).")
@click.option("--actor-cpus", type=click.FloatRange(min=0, min_open=True), default=None,
              help="--ray: CPUs reserved per actor (default 1).")
@click.option("--ledger", default=None,
              help="--ray: the run's ledger directory, on a disk every node reaches (default <output>.flashlane-ledger).")
@lane_options
def run_command(task: str, input_path: str, **given: Any) -> None:
    """Run TASK (classify, extract, translate, summarize or a task file) on every row of INPUT.

    Rerunning the same command resumes: finished rows are not requested again.
    """
    loaded = click.get_current_context().meta.get(_TASK)
    the_task = loaded[1] if loaded and loaded[0] == task else get_task(task)
    declared = _declared(the_task)
    task_options = task_values(declared.values(), {k: given.pop(k) for k in list(given) if k in declared})
    the_task.check_options(the_task.options(task_options))  # a missing --to/--schema/--labels: exit 2 now
    batch = _batch_options(given)
    given["service_tier"] = given["service_tier"] or given.pop("tier")  # --tier: the old spelling
    given = the_task.with_run(given)  # the task file's [run] table, where the command line is silent
    if batch.detach and given["service_tier"] not in ("batch", None):
        raise click.BadParameter("--detach works with --service-tier batch only", param_hint="--detach")
    ray_run = {k: given.pop(k) for k in ("ray_address", "actors", "actor_cpus", "ledger")}
    run_fields = {f.name for f in fields(RunConfig)} & set(given)
    cfg = RunConfig(input=input_path, task_options=task_options, batch=batch,
                    **{k: given.pop(k) for k in run_fields})
    if ray_run["ray_address"] is not None:
        _run_on_ray(the_task, cfg, ray_run, given)
        return
    for name in ("actors", "actor_cpus", "ledger"):
        if ray_run[name] is not None:
            raise click.UsageError(f"--{name.replace('_', '-')} works with --ray only")
    if cfg.dry_run and cfg.finish_by is None:  # the estimate; with --finish-by, run_file prints the plan
        with make_client(**given) as lane:
            click.echo(estimate_file(lane, the_task, cfg).format())
        return
    # What is left configures the lane (model, limits, service tier, ...). A row in a file run may wait
    # out several per-minute windows; an interactive call may not.
    try:
        with make_client(defaults={"retry_deadline_s": RUN_DEADLINE_S}, **given) as lane:
            summary = run_file(lane, the_task, cfg)
    except RunInterrupted as e:
        note(e.message)
        sys.exit(e.exit_code)
    quiet = cfg.quiet
    r = summary.report
    items = r["items"]
    out = summary.outcome
    if not quiet and out.status != "planned":
        note(format_report(r))
        note(f"packing: {summary.pack.why}")
        note(f"output: {summary.output}  failures: {summary.failures}  run db: {summary.run_db}")
    if out.status == "planned":
        note("dry run: nothing was sent; run the same command without --dry-run to carry the plan out")
        return
    if out.status == "detached":
        note(f"detached: {out.message} (flashlane batch status {summary.run_db})")
        return
    if out.status == "quota":
        note(f"batch quota: {out.message}")
        sys.exit(1)
    if out.status == "parked":
        when = f" at {describe_reset(out.reset_at)}" if out.reset_at else ""
        note(f"parked: the per-day request quota is used up; it resets{when}; rerun the same command then to resume")
        sys.exit(1)
    if out.status == "budget":
        note(f"budget: {out.message}")
        sys.exit(1)
    if out.status == "outage":
        note(f"outage: {out.message}; the unfinished rows are pending: rerun the same command to resume")
        sys.exit(1)
    if out.status == "aborted" and out.error is not None:
        raise out.error
    if items["failed"] or items["pending"]:
        if quiet:  # the report was not printed: say why the exit code is 1, in one line
            note(f"error: {items['failed']} of {items['total']} rows failed, {items['pending']} pending "
                 f"(failures: {summary.failures}; rerun the same command to resume)")
        sys.exit(1)


# What flashlane run does on one machine and not (yet) through Ray Data: refused, not ignored.
_NOT_ON_RAY = {"run_db": "--run-db", "fresh": "--fresh", "retry_failed": "--retry-failed",
               "media_column": "--media-column", "glob": "--glob", "delimiter": "--delimiter",
               "dry_run": "--dry-run", "finish_by": "--finish-by"}


def _run_on_ray(task: Task, cfg: RunConfig, ray_run: dict[str, Any], lane_given: dict[str, Any]) -> None:
    """``flashlane run --ray``: the same task and options through ``flashlane.ray.run_dataset``."""
    from .. import ray as flr

    for name, flag in _NOT_ON_RAY.items():
        if getattr(cfg, name):
            raise click.UsageError(f"{flag} does not work with --ray yet")
    if cfg.batch.detach:
        raise click.UsageError("--detach does not work with --ray")
    if cfg.output is None:
        raise click.UsageError("--ray needs -o OUTPUT (a directory, or an object storage URI, for Ray Data's files)")
    options = {k: v for k, v in (("actors", ray_run["actors"]), ("num_cpus", ray_run["actor_cpus"])) if v is not None}
    lane_given.setdefault("defaults", {"retry_deadline_s": RUN_DEADLINE_S})
    report = flr.run_dataset(task, cfg.input, cfg.output, settings=lane_settings(**lane_given),
                             address=ray_run["ray_address"], ledger=ray_run["ledger"], input_format=cfg.fmt,
                             id_column=cfg.id_column or flr.DEFAULT_ID_COLUMN, pack=cfg.pack,
                             concurrency=cfg.concurrency, column=cfg.column, template=cfg.template,
                             cache=cfg.cache, cache_prefix=cfg.cache_prefix, budget_usd=cfg.budget_usd,
                             **options, **cfg.task_options)
    if not cfg.quiet:
        note(format_report(report))
        note(f"output: {cfg.output}  ledger: {report['run_db']}")
    items = report["items"]
    if items["failed"] or items["pending"]:
        if cfg.quiet:
            note(f"error: {items['failed']} of {items['total']} rows failed, {items['pending']} pending")
        sys.exit(1)


@click.command("report")
@click.argument("run_db")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report_command(run_db: str, as_json: bool) -> None:
    """Show what a run did and cost, from its database (RUN_DB, or the run's output file beside
    it); an eval's table from its folder (flashlane eval --eval-dir); a cluster run's ledger directory
    (flashlane.ray.map(..., ledger=DIR)); or a gateway ledger's usage."""
    from ..eval import is_eval_dir, load_eval
    from ..gateway.ledger import format_ledger, is_ledger, read_ledger

    if is_eval_dir(run_db):
        report = load_eval(run_db)
        click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.table())
        return
    if Path(run_db).is_dir():
        r = Ledger(run_db).report()
        click.echo(report_json(r) if as_json else format_report(r))
        return
    beside = default_run_db(Path(run_db))
    if not run_db.endswith(RUN_DB_SUFFIX) and beside.is_file():
        run_db = str(beside)  # the output file named: its run database is beside it
    if is_ledger(run_db):  # told apart by its schema, whatever the file is called
        click.echo(json.dumps(read_ledger(run_db), indent=2) if as_json else format_ledger(run_db))
        return
    r = load_report(run_db)
    click.echo(report_json(r) if as_json else format_report(r))
