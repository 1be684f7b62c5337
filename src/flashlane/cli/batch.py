"""``flashlane batch list|status|cancel RUN``: a batch run's jobs, by its run database or output path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..call.client import Client
from ..errors import InputError
from ..pipeline.batch import TERMINAL_STATES, job_summary, read_job
from ..pipeline.runfile import RUN_DB_SUFFIX
from ..store.run import BatchJobs, JobRecord, RunStore
from .common import lane_options, make_client, note

__all__ = ["batch_group"]

RUN_HINT = "pass the run's output file or its <output>.flashlane.db"


def _run_db(run: str) -> Path:
    p = Path(run)
    candidates = [p] if p.name.endswith(RUN_DB_SUFFIX) else [Path(f"{p}{RUN_DB_SUFFIX}"), p]
    for c in candidates:
        if c.is_file():
            return c
    raise InputError(f"no run database for {run}", hint=RUN_HINT)


def _open(run: str) -> RunStore:
    return RunStore(_run_db(run), not_a_run_db_hint=RUN_HINT, create=False)


def _line(rec: JobRecord) -> str:
    s = rec.stats
    counts = (f" {s.get('successfulRequestCount', 0)} ok, {s.get('failedRequestCount', 0)} failed, "
              f"{s.get('pendingRequestCount', 0)} pending of {s.get('requestCount', rec.n_requests)}") if s else ""
    return (f"{rec.name or '(not created)':<52} {rec.short_state:<10} {rec.mode:<6} {rec.n_requests:>7} requests "
            f"{rec.n_items:>8} items{counts}{'  collected' if rec.collected else ''}")


@click.group("batch")
def batch_group() -> None:
    """A batch run's jobs (flashlane run --service-tier batch): list, status, cancel."""


@batch_group.command("list")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
def list_command(run: str, as_json: bool) -> None:
    """The jobs RUN (an output file or run database) recorded, from its database alone."""
    store = _open(run)
    try:
        jobs = BatchJobs(store).all()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([job_summary(j) for j in jobs], indent=2))
        return
    if not jobs:
        click.echo("no batch jobs in this run")
    for j in jobs:
        click.echo(_line(j))


def _refresh(client: Client, jobs: BatchJobs, rec: JobRecord) -> JobRecord:
    """The job's state and the server's request counts, read from the raw response (batch.py)."""
    read_job(client.transport, jobs, rec)
    return next(r for r in jobs.all() if r.id == rec.id)


@batch_group.command("status")
@click.argument("run")
@lane_options
def status_command(run: str, **lane_kw: Any) -> None:
    """Ask the API for the state and request counts of RUN's jobs still in flight."""
    store = _open(run)
    try:
        jobs = BatchJobs(store)
        with make_client(**lane_kw) as client:
            for rec in jobs.all():
                if rec.name is not None and not rec.collected:
                    rec = _refresh(client, jobs, rec)
                click.echo(_line(rec))
    finally:
        store.close()


@batch_group.command("cancel")
@click.argument("run")
@lane_options
def cancel_command(run: str, **lane_kw: Any) -> None:
    """Cancel RUN's jobs still in flight; rerunning the run collects what they finished and
    resubmits the rest."""
    store = _open(run)
    n = 0
    try:
        jobs = BatchJobs(store)
        with make_client(**lane_kw) as client:
            for rec in jobs.active():
                if rec.name is None or rec.short_state in TERMINAL_STATES:
                    continue
                client.transport.cancel_batch(rec.name)
                n += 1
                note(f"cancelled {rec.name}")
    finally:
        store.close()
    if not n:
        note("no batch job in flight to cancel")
