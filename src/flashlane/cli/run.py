"""flashlane run TASK INPUT: a file of rows through a task, resumable; flashlane report RUN_DB.

Exit codes: 0 every row ok; 1 some rows failed, or the run stopped early (budget reached,
per-day quota exhausted: the run is parked and resumes when rerun); 2 a usage, input or
configuration error (nothing already done is lost), or the run database is held by another
run; 130 interrupted by SIGINT (Ctrl-C), 143 by SIGTERM: both save what was done, write the
partial output and leave the run resumable.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..config import RUN_DEADLINE_S
from ..errors import describe_reset
from ..pipeline.readers import FORMATS
from ..pipeline.report import format_report, load_report, report_json
from ..pipeline.runfile import RunConfig, RunInterrupted, run_file
from ..tasks import get_task
from .common import lane_options, make_client, note

__all__ = ["run_command", "report_command"]


def _pack(value: str | None) -> int | str | None:
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


def _task_options(labels: str | None, multi_label: bool, schema: str | None, to: str | None, source: str | None,
                  max_words: int | None, style: str | None, glossary: str | None = None,
                  formality: str | None = None) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if labels is not None:
        opts["labels"] = labels
    if multi_label:
        opts["multi_label"] = True
    if schema is not None:
        from ..tasks import load_schema

        opts["schema"] = load_schema(schema)
    if glossary:
        from .tasks import parse_glossary

        opts["glossary"] = parse_glossary(glossary)
    for k, v in (("to", to), ("source", source), ("max_words", max_words), ("style", style),
                 ("formality", formality)):
        if v is not None:
            opts[k] = v
    return opts


def _batch_options(detach: bool, fallback: str, max_requests: int | None, inline_max_bytes: int | None) -> Any:
    from ..pipeline.batch import BatchOptions

    opts = BatchOptions(detach=detach, fallback=fallback)
    if max_requests is not None:
        opts.max_requests = max_requests
    if inline_max_bytes is not None:
        opts.inline_max_bytes = inline_max_bytes
    return opts


@click.command("run")
@click.argument("task")
@click.argument("input_path", metavar="INPUT")
@click.option("-o", "--output", default=None, help="Output .jsonl/.csv/.parquet (default <input stem>.<task>.jsonl).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Input format (default: by extension).")
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of CSV/TSV/JSON input.")
@click.option("--column", default=None, help="The column holding the text.")
@click.option("--template", default=None, help='Build the text from several columns, e.g. "{title}: {body}".')
@click.option("--id-column", default=None,
              help="Column with unique row ids (default: a column named 'id' if there is one, else row number + "
                   "content hash; '' numbers the rows).")
@click.option("--labels", default=None, help="classify: comma-separated labels.")
@click.option("--multi-label", is_flag=True, help="classify: allow any number of labels.")
@click.option("--schema", default=None, help="extract: a JSON Schema file or module:PydanticModel.")
@click.option("--to", default=None, help="translate: target language.")
@click.option("--source", default=None, help="translate: source language.")
@click.option("--glossary", default=None, help="translate: fixed terms, term=translation,term2=translation2.")
@click.option("--formality", default=None, help="translate: formal | informal | ...")
@click.option("--max-words", type=click.IntRange(min=1), default=None, help="summarize: word limit.")
@click.option("--style", default=None, help="summarize: style, e.g. 'one sentence'.")
@click.option("--reference", "reference_file", default=None,
              help="Reference text for every row (guidelines, glossary): a text file, sent in the task's cached prefix.")
@click.option("--examples", "examples_file", default=None,
              help="Worked examples (input -> output, checked against the task's schema): .jsonl, .json, .toml, .yaml.")
@click.option("--concurrency", type=click.IntRange(min=1), default=None,
              help="Requests in flight (default: auto, from the quota and the model's latency; the limiter "
                   "still paces them).")
@click.option("--pack", default=None, help="Items per request for structured tasks: N or auto.")
@click.option("--on-outage", type=click.Choice(["stop", "wait"]), default=None,
              help="When many calls in a row fail (an outage): stop and leave rows pending (default), or wait and probe.")
@click.option("--budget-usd", type=float, default=None, help="Stop before the run's cost would pass this.")
@click.option("--tier", type=click.Choice(["standard", "flex", "batch"]), default=None,
              help="How requests are served: standard (default; FLASHLANE_TIER), flex (half price, minutes, "
                   "sheddable) or batch (half price, Batch API jobs, up to 24 h).")
@click.option("--detach", is_flag=True, help="batch: submit the jobs and exit; rerun the same command to collect.")
@click.option("--batch-fallback", type=click.Choice(["queue", "standard"]), default="queue", show_default=True,
              help="batch: where a request that failed inside a job goes: the next job, or the standard tier.")
@click.option("--batch-max-requests", type=click.IntRange(min=1), default=None,
              help="batch: requests per job at most (default 50,000; larger runs are split into several jobs).")
@click.option("--batch-inline-max-bytes", type=click.IntRange(min=1), default=None,
              help="batch: jobs up to this size are sent inline, larger ones as an uploaded JSONL file "
                   "(default 19,000,000: inline batches must stay under 20 MB).")
@click.option("--run-db", default=None, help="The run database (default <output>.flashlane.db).")
@click.option("--fresh", is_flag=True, help="Start the run over, discarding its database.")
@click.option("--retry-failed", is_flag=True, help="On resume, request rows that failed before again.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the response cache.")
@click.option("--input-columns/--no-input-columns", default=True, show_default=True,
              help="Write the input's columns next to the id and the results (--no-input-columns: id and "
                   "results only).")
@click.option("--cache-prefix", type=click.Choice(["auto", "on", "off"]), default=None,
              help="Explicit context cache for the task's shared prefix (reference text, examples): auto = when "
                   "it saves money (default; setting cache_prefix), on, off.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@lane_options
def run_command(task: str, input_path: str, output: str | None, fmt: str | None, encoding: str, column: str | None,
                template: str | None, id_column: str | None, labels: str | None, multi_label: bool,
                schema: str | None, to: str | None, source: str | None, glossary: str | None, formality: str | None,
                max_words: int | None, style: str | None, reference_file: str | None, examples_file: str | None,
                concurrency: int | None, pack: str | None, budget_usd: float | None, tier: str | None, detach: bool,
                batch_fallback: str, batch_max_requests: int | None, batch_inline_max_bytes: int | None,
                run_db: str | None, fresh: bool, retry_failed: bool, no_cache: bool, cache_prefix: str | None,
                input_columns: bool,
                quiet: bool,
                **lane_kw: Any) -> None:
    """Run TASK (classify, extract, translate, summarize or a task file) on every row of INPUT.

    Rerunning the same command resumes: finished rows are not requested again.
    """
    the_task = get_task(task)
    task_options = _task_options(labels, multi_label, schema, to, source, max_words, style, glossary, formality)
    if reference_file or examples_file:  # reference material for built-in tasks (task files have their own keys)
        from pathlib import Path

        from ..tasks.reference import load_examples_file, read_reference

        if reference_file:
            task_options["reference"] = read_reference(reference_file, Path.cwd(), "--reference")
        if examples_file:
            task_options["examples"] = list(load_examples_file(examples_file))
    the_task.check_options(the_task.options(task_options))  # a missing --to/--schema/--labels: exit 2 now
    cfg = RunConfig(input=input_path, output=output, fmt=fmt, encoding=encoding, column=column, template=template,
                    id_column=id_column, run_db=run_db, fresh=fresh, retry_failed=retry_failed, pack=_pack(pack),
                    concurrency=concurrency, budget_usd=budget_usd, cache=not no_cache, cache_prefix=cache_prefix, quiet=quiet,
                    input_columns=input_columns,
                    task_options=task_options, batch=_batch_options(detach, batch_fallback, batch_max_requests,
                                                                     batch_inline_max_bytes))
    if tier is not None:
        lane_kw["tier"] = tier
    if detach and tier not in ("batch", None):
        raise click.BadParameter("--detach works with --tier batch only", param_hint="--detach")
    # A row in a file run may wait out several per-minute windows; an interactive call may not.
    try:
        with make_client(defaults={"retry_deadline_s": RUN_DEADLINE_S}, **lane_kw) as lane:
            summary = run_file(lane, the_task, cfg)
    except RunInterrupted as e:
        note(e.message)
        sys.exit(e.exit_code)
    r = summary.report
    items = r["items"]
    out = summary.outcome
    if not quiet:
        note(format_report(r))
        note(f"packing: {summary.pack.why}")
        note(f"output: {summary.output}  failures: {summary.failures}  run db: {summary.run_db}")
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
        sys.exit(1)


@click.command("report")
@click.argument("run_db")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report_command(run_db: str, as_json: bool) -> None:
    """Show what a run did and cost, from its database (RUN_DB); or a gateway ledger's usage."""
    from ..gateway.ledger import format_ledger, is_ledger, read_ledger

    if is_ledger(run_db):  # told apart by its schema, whatever the file is called
        click.echo(json.dumps(read_ledger(run_db), indent=2) if as_json else format_ledger(run_db))
        return
    r = load_report(run_db)
    click.echo(report_json(r) if as_json else format_report(r))
