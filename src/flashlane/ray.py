"""``flashlane.ray.map``: a task over a Ray Dataset, on Ray Data's own primitives.

The rows go through ``Dataset.map_batches`` with a callable class, so Ray Data runs it on a pool
of stateful actors ("For classes, Ray Data uses stateful Ray actors": docs.ray.io, Dataset.map_batches)
and users keep its scheduling, streaming execution, readers and writers. Each actor holds one
``Client`` (one call path: transport, guard, limiter) made once in ``__init__``; its
``__call__`` is a coroutine, which Ray Data (>= 2.33, ray-project/ray#46129; 2.60 in
``_internal/planner/plan_udf_map_op.py``) runs on an event loop of the actor's own, several
batches at a time. A batch runs through the same engine as ``lane.map`` (``amap_items``:
packing, concurrency, per-item settle) and comes back with the columns ``flashlane run`` writes
(``MapResult.records``, typed by ``writers.arrow_table`` as the Parquet output types them).

One quota for the cluster: every actor's limiter is built from the same settings, so with
``limiter="ray"`` (one named, detached actor: ``limits/actor.py``), ``"redis"`` (a Redis every node
reaches) or ``"sqlite"`` (one machine) they all admit requests against one (project, model) window. A memory limiter per actor would multiply the
quota by the number of actors, so more than one actor with it is refused before any request.

Ray is an optional extra (``pip install 'flashlane[ray]'``); ``import flashlane`` never imports it.
With ``ledger=DIR`` every batch keeps its own run database in ``DIR`` (``pipeline.ledger``):
nothing finished is asked again after a kill. ``run_dataset`` is ``flashlane run --ray``.

The batch tier (``service_tier="batch"``, a ledger required): ``map`` first has Ray Data write the
rows as keyed Parquet shards into the ledger, then one coordinator in the driver creates the batch
jobs through the one-machine batch runner (each recorded before it is created, never twice), and
returns a dataset that joins the answers back by id from the ledger. So ``map`` blocks until the
jobs have ended (a batch takes up to 24 hours); a rerun after a kill resumes the recorded jobs.
A budget is enforced only there, by the one coordinator; the live tiers refuse one (not yet shared
across actors).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .call.client import Client
from .call.service_tier import BATCH
from .config import Settings, load_settings
from .errors import ConfigError, FlashlaneError, InputError
from .pipeline.api import amap_items, job_key
from .pipeline.ledger import Ledger
from .pipeline.readers import detect_format
from .pipeline.writers import InputNames, arrow_table, output_record
from .tasks import Task, get_task

if TYPE_CHECKING:
    import pyarrow
    import ray.data

__all__ = ["map", "DEFAULT_ACTORS", "DEFAULT_BATCH_ROWS", "DEFAULT_ACTOR_CPUS", "DEFAULT_ID_COLUMN"]

# A fixed pool (ActorPoolStrategy(size=n), docs.ray.io "Stateful Transforms"); a pair so one actor's slow batch doesn't idle the run.
DEFAULT_ACTORS = 2
# Rows per batch: enough for packing and for the engine's concurrency to fill (DEFAULT_CONCURRENCY
# requests in flight), small enough that a retried batch (a lost worker) repeats little.
DEFAULT_BATCH_ROWS = 500
# Ray's own default per actor. An actor mostly waits on HTTP, but unthrottled its per-request
# work (request building, settle) does fill a core, so one CPU each is the honest reservation.
DEFAULT_ACTOR_CPUS = 1.0
# Rows are keyed across the whole dataset by this column (ids by position would repeat per batch).
DEFAULT_ID_COLUMN = "id"
SHARED_LIMITERS = ("ray", "redis", "sqlite")
# The batch tier's files in the ledger directory: the rows as Ray Data wrote them, and the one
# run database of the coordinator (a ``*.flashlane.db``, so ``Ledger`` reads its answers and report).
SHARDS_DIR = "batch-shards"
COORDINATOR_DB = "coordinator.flashlane.db"
SHARD_READ_ROWS = 10_000  # rows read from the shards at a time by the coordinator


class _LaneActor:
    """One per Ray actor: a client made once, a coroutine per batch (the engine inside)."""

    def __init__(self, task: Task | str, settings: Settings, options: Mapping[str, Any],
                 ledger: str | None = None, join_only: bool = False) -> None:
        self.task, self.options, self.join_only = task, dict(options), join_only
        self.client = Client(settings)
        self.ledger = None
        if ledger is not None:
            self.ledger = Ledger(ledger, ledger_key(self.client, task, self.options))

    async def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        id_column = self.options["id_column"]
        if id_column not in batch.column_names:
            raise InputError(f"the dataset has no column {id_column!r} to key its rows by",
                             hint="add a unique id column, or name one with id_column=")
        rows = batch.to_pylist()
        done: list[dict[str, Any]] = []
        run_db = None
        if self.ledger is not None:
            # Rows finished in any batch database of the run (a killed worker's, a killed driver's run)
            # come back from there; only the rest is asked for, in this batch's own database.
            ids = [str(r[id_column]) for r in rows]
            found = self.ledger.finished(ids)
            names = InputNames(id_column)
            done = [output_record(found[i], names) for i in ids if i in found]
            rows = [r for r, i in zip(rows, ids, strict=True) if i not in found]
            run_db = self.ledger.batch_db([str(r[id_column]) for r in rows])
        if not rows:
            return arrow_table(done)
        if self.join_only:  # the batch tier: the coordinator has answered every row (``_coordinate``)
            raise FlashlaneError(f"{len(rows)} rows of this batch have no answer in the ledger's batch run",
                                 hint="rerun the same call: the batch run resumes where it stopped")
        result = await amap_items(self.client, self.task, rows, run_db=run_db, **self.options)
        try:
            if result.outcome.status != "done":
                # The day's quota is gone (every actor sees it in the shared limiter) or the service is
                # down: fail the dataset with the reason and reset time rather than return pending rows.
                raise result.outcome.error or FlashlaneError(result.outcome.message or result.outcome.status)
            return arrow_table(itertools.chain(done, result.records()))
        finally:
            result.close()

    def __del__(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()


def ledger_key(client: Client, task: Task | str, options: Mapping[str, Any]) -> str:
    """The run's key in its ledger: what decides the answers (not how they are scheduled)."""
    map_only = ("pack", "concurrency", "budget_usd", "cache", "cache_prefix")
    return job_key(client, task, **{k: v for k, v in options.items() if k not in map_only})


def _shard_rows(shards: Path) -> Iterator[dict[str, Any]]:
    """The rows of the shards, a record batch at a time (memory flat in rows)."""
    import pyarrow.dataset

    for batch in pyarrow.dataset.dataset(str(shards), format="parquet").to_batches(batch_size=SHARD_READ_ROWS):
        yield from batch.to_pylist()


def _coordinate(ds: ray.data.Dataset, task: Task | str, settings: Settings, options: Mapping[str, Any],
                where: str) -> None:
    """The batch tier from a cluster, in the driver: Ray Data's workers write the keyed rows as
    Parquet shards on the ledger path; then one coordinator (this process) streams them into one
    run database of the ledger (``COORDINATOR_DB``) and runs it on the one-machine batch runner,
    which records each job before creating it and, on a rerun, polls the recorded jobs instead of
    creating new ones. Returns when every job has ended; its answers are in the ledger by id."""
    from .pipeline.api import run_sync

    db = Path(where) / COORDINATOR_DB
    shards = Path(where) / SHARDS_DIR
    if not db.exists():  # not handed over yet: (re)write every shard (a killed write leaves a partial set)
        from ray.data import SaveMode

        ds.write_parquet(str(shards), mode=SaveMode.OVERWRITE)
    client = Client(settings)
    try:
        result = run_sync(amap_items(client, task, _shard_rows(shards), run_db=db, **options))
        try:
            if result.outcome.status != "done":
                raise result.outcome.error or FlashlaneError(result.outcome.message or result.outcome.status)
        finally:
            result.close()
    finally:
        client.close()


def map(ds: ray.data.Dataset, task: Task | str, *, settings: Mapping[str, Any] | Settings | None = None,
        actors: int = DEFAULT_ACTORS, batch_size: int = DEFAULT_BATCH_ROWS, num_cpus: float = DEFAULT_ACTOR_CPUS,
        id_column: str = DEFAULT_ID_COLUMN, ledger: str | os.PathLike[str] | None = None,
        **options: Any) -> ray.data.Dataset:
    """``ds`` with ``task`` run on every row: the rows (input columns kept) plus the columns
    ``flashlane run`` writes (``status``, ``reason``, ``error``, the task's fields, usage,
    ``cost_usd``, ``cached``). Lazy, as every Ray Data transform: nothing runs until the result
    is consumed (``take_all``, ``write_parquet``, ...).

    ``settings``: the client's settings (as ``Lane(**settings)``: ``base_url``, ``api_key``,
    ``limits``, ``limiter``, ``redis_url``, ...), sent to every actor. ``actors``: the pool size.
    ``ledger``: a directory every node reaches (the shared output path) for the run's ledger
    (``pipeline.ledger``): with it, a row that finished is never requested again, whatever dies
    (a worker, an actor, the driver: rerun the same call), and ``flashlane report DIR`` adds the
    run up. ``options``: as for ``lane.map`` (``pack``, ``concurrency`` per batch, ``column``, ``template``,
    ``service_tier``, ``cache_prefix``, task options such as ``labels=``)."""
    import ray.data  # the extra: a clear ImportError before any actor starts

    # Resolved once, here (call arguments, the driver's environment and config file), so every
    # actor runs with the same settings whatever its node's environment holds.
    resolved = settings if isinstance(settings, Settings) else load_settings(**dict(settings or {}))
    resolved.require_credentials()
    if actors > 1 and resolved.limiter not in SHARED_LIMITERS:
        raise ConfigError(f"{actors} actors with the {resolved.limiter!r} limiter would each admit the whole quota",
                          hint="share one quota: limiter='ray' (a named actor of the cluster), 'redis' with "
                               "redis_url= (any cluster), or 'sqlite' with limiter_path= (one machine)")
    options = get_task(task).with_run(options)  # a task file's [run] table, where the call is silent
    batch = (options.get("service_tier") or resolved.service_tier) == BATCH
    if options.get("budget_usd") is not None and not batch:
        raise ConfigError("a budget is not yet enforced across a cluster's actors",
                          hint="run without budget_usd, or with service_tier='batch' (one coordinator spends it)")
    if batch and ledger is None:
        raise ConfigError("the batch tier from Ray needs a ledger, where its coordinator records the jobs it creates",
                          hint="pass ledger=DIR, a directory the driver reaches (the shared output path)")
    options["id_column"] = id_column
    where = str(Path(ledger).resolve()) if ledger is not None else None  # the same path on every node
    if batch and where is not None:
        _coordinate(ds, task, resolved, options, where)
    return ds.map_batches(_LaneActor, fn_constructor_args=(task, resolved, options, where, batch),
                          batch_format="pyarrow",
                          batch_size=batch_size, num_cpus=num_cpus,
                          # a fixed pool of `actors` (``concurrency=`` is deprecated since Ray 2.51 for this)
                          compute=ray.data.ActorPoolStrategy(size=actors))


# Ray Data's reader and writer per file format (docs.ray.io "Loading Data", "Saving Data"): each
# takes local paths or object storage URIs (s3://, gs://, ...) and writes a directory of files.
_READERS = {"parquet": "read_parquet", "jsonl": "read_json", "json": "read_json", "csv": "read_csv"}
_WRITERS = {"parquet": "write_parquet", "jsonl": "write_json", "json": "write_json", "csv": "write_csv"}
LEDGER_SUFFIX = ".flashlane-ledger"  # the ledger directory beside a local output, by default
RAY_CHECKPOINT_DIR = "ray-checkpoint"  # Ray Data's checkpoint files, inside the ledger directory


def format_of(path: str, explicit: str | None = None) -> str:
    """The file format of ``path`` (a file, a directory or a URI): as ``flashlane run`` tells it."""
    fmt = detect_format(path.rstrip("/"), explicit)
    if fmt not in _READERS:
        raise InputError(f"Ray Data does not read or write {fmt} here ({path})",
                         hint="use .parquet, .jsonl or .csv (a file, a directory of them, or an s3:// URI)")
    return fmt


def default_ledger(output: str) -> str:
    if "://" in output:
        raise InputError(f"the output {output} is object storage: the run's ledger needs a file system",
                         hint="name a directory every node reaches with --ledger (a shared disk)")
    return output.rstrip("/") + LEDGER_SUFFIX


def checkpoint_config(id_column: str, ledger: str) -> Any:
    """Ray Data's row-level checkpoints for a read -> map -> write run, where the installed Ray has
    them (``ray.data.checkpoint.CheckpointConfig``, Ray 2.60: ray-project/ray
    ``python/ray/data/checkpoint/interfaces.py``; the planner applies it to a plan that reads with
    ``Read``/``ReadFiles`` and ends in a ``Write``: ``_internal/planner/planner.py``). What it
    guarantees: the writer records the ids of each block before writing it and commits them after
    (``_internal/planner/checkpoint/plan_write_op.py``), and a rerun's reader drops the committed
    ids, so a row is in the output once across reruns. It knows nothing of requests: a row answered
    but not yet written when the driver died is taken from flashlane's ledger instead. Kept after
    success (a rerun of a finished run writes nothing); its ids are loaded into memory on a rerun."""
    try:
        from ray.data.checkpoint import CheckpointConfig
    except ImportError:  # an older Ray: flashlane's ledger alone (the output is rewritten)
        return None
    return CheckpointConfig(id_column=id_column, checkpoint_path=os.path.join(ledger, RAY_CHECKPOINT_DIR),
                            delete_checkpoint_on_success=False)


def run_dataset(task: Task | str, input_path: str, output: str, *, settings: Mapping[str, Any] | Settings,
                address: str | None = None, ledger: str | None = None, input_format: str | None = None,
                ray_checkpoint: bool = False, **options: Any) -> dict[str, Any]:
    """``flashlane run --ray``: ``input_path`` read by Ray Data, ``task`` on every row by ``map``,
    the result written to ``output`` (a directory of files in the input's or the output's format);
    the report of the run's ledger. Rerun the same call to resume: nothing finished is asked again."""
    import ray
    import ray.data

    fmt_in, fmt_out = format_of(input_path, input_format), format_of(output)
    where = str(Path(ledger or default_ledger(output)).resolve())  # Ray's checkpoint path must be absolute
    if not ray.is_initialized():
        # "local": a cluster of this machine; otherwise an address ("auto", "ray://host:10001", host:port).
        ray.init(address=None if address in (None, "local") else address, log_to_driver=False)
    id_column = options.setdefault("id_column", DEFAULT_ID_COLUMN)
    mode = "overwrite"  # without Ray's checkpoints a rerun writes every row again (finished ones from the ledger)
    # Off by default: on a two-CPU local cluster a rerun that restores Ray's checkpoint did not finish
    # in our test (its filter reserves an actor of CHECKPOINT_ACTOR_MEMORY_BYTES, 1 GiB); the ledger
    # alone already keeps every finished row from being asked again.
    checkpoint = checkpoint_config(id_column, where) if ray_checkpoint else None
    if checkpoint is not None:
        ray.data.DataContext.get_current().checkpoint_config = checkpoint
        mode = "append"  # a rerun's reader skips the rows already written: it adds the rest
    ds = getattr(ray.data, _READERS[fmt_in])(input_path)
    out = map(ds, task, settings=settings, ledger=where, **options)
    getattr(out, _WRITERS[fmt_out])(output, mode=mode)
    return Ledger(where).report()
