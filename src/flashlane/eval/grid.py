"""``evaluate``: a labelled set through a grid of configurations (model × thinking × pack ×
examples × service tier × prefix caching × media resolution), each a ``flashlane run`` of the same items
(``pipeline.run_file``: the same engine, packing, limiter, answer judge and ledger), scored
against the truth and priced.

The eval lives in one folder (``eval_dir``): ``eval.db`` (the truth and which run holds each
configuration, ``store.eval``), ``items.jsonl`` (the rows sent, without their truth), one run
database per configuration, and ``responses.db``, the eval's own response cache. So:

- an interrupted eval resumes: each configuration's run resumes as any ``flashlane run`` does,
  finished items are never requested again;
- identical requests across configurations are sent once: the cache is shared by every
  configuration, its answers scoped by what makes a request another request (model, thinking,
  prompt, schema, the item with its media resolution (``Job.cache_key``), the pack size and prefix
  caching; not the service tier, which is how
  a request is billed). Each answer keeps its usage, so a configuration answered from the cache
  is priced as the requests it saved would have cost at its own tier (``caching.response_cache``);
- every configuration runs on the Lane's one limiter, under one budget (what is left of
  ``budget_usd`` after what the others have spent);
- ``load_eval(eval_dir)`` rebuilds the report from the folder alone (``flashlane report DIR``).

The labelled rows are held in memory (an eval set is a sample, not the production file).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import json
import math
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..config import check_settings
from ..errors import InputError
from ..media import MEDIA_RESOLUTIONS
from ..models import SERVICE_TIERS
from ..pipeline.estimate import estimate_run
from ..pipeline.items import ItemBuilder
from ..pipeline.job import Job, jsonable
from ..pipeline.report import build_report
from ..pipeline.runfile import PACK_SAMPLE_ITEMS, RunConfig, resolve_pack, run_file
from ..pipeline.scheduler import DEFAULT_CONCURRENCY
from ..store.eval import EvalStore
from ..store.run import RunStore
from ..tasks import BUILTIN_TASKS, Task, get_task
from .metrics import (
    BOOTSTRAP_RESAMPLES,
    DEFAULT_SEED,
    classification_metrics,
    field_metrics,
    label_set,
    multilabel_metrics,
    require_eval_extra,
    translation_metrics,
)
from .sample import stratified_sample

if TYPE_CHECKING:
    from ..call.client import Client

__all__ = ["ALL_EXAMPLES", "Config", "EVAL_DB", "EvalReport", "aevaluate", "configurations", "estimate", "evaluate",
           "format_estimate", "format_eval", "is_eval_dir", "load_eval", "score_run"]

ALL_EXAMPLES = "all"  # --examples all: every worked example the task has
EVAL_DB = "eval.db"  # in the eval's folder: the truth and the configurations' runs
ITEMS_FILE = "items.jsonl"  # the rows every configuration runs on, without their truth
RESPONSES_FILE = "responses.db"  # the eval's response cache, shared by its configurations
RUN_FILE = "config-{n:03d}.flashlane.db"  # a configuration's run database
# The failure reasons (errors.py reason_code) each rate counts.
TRUNCATED_REASONS = ("truncated",)  # MAX_TOKENS that a larger cap did not fix
BLOCKED_REASONS = ("safety", "content")  # a block (promptFeedback) or a stop for safety/recitation
PARSE_REASONS = ("schema", "malformed")  # JSON that did not parse or validate after the judge's one re-ask


@dataclass(frozen=True)
class Config:
    model: str
    thinking: str | None
    pack: int | str | None
    examples: int | str  # a count of the task's worked examples, or ALL_EXAMPLES
    service_tier: str
    cache_prefix: str | None = None  # the explicit context cache of the prefix: auto | on | off (None: the setting)
    # the task option media_resolution (tasks/option.py): low | medium | high (None: the task's or the model's)
    media_resolution: str | None = None

    @property
    def name(self) -> str:
        prefix = f" cache-prefix={self.cache_prefix}" if self.cache_prefix else ""
        media = f" media-resolution={self.media_resolution}" if self.media_resolution else ""
        return (f"{self.model} thinking={self.thinking or 'default'} pack={self.pack or 1} "
                f"examples={self.examples} tier={self.service_tier}{prefix}{media}")

    def options(self, task_options: Mapping[str, Any]) -> dict[str, Any]:
        """The run's task options: the eval's, with this configuration's model, thinking and (when
        the grid sets one) media resolution."""
        media = {"media_resolution": self.media_resolution} if self.media_resolution else {}
        return {**task_options, "model": self.model, "thinking": self.thinking, **media}

    @property
    def scope(self) -> str:
        """What besides the request's content makes it another request (the pack size is added by
        the run, once resolved): answers are shared only within a scope."""
        return f"cache-prefix={self.cache_prefix or 'default'}"


@dataclass
class EvalReport:
    """Every configuration's scores, cost and failure rates; the Pareto front and the recommendation."""

    task: str
    kind: str  # classification | multilabel | fields | translation
    metric: str  # the score the decision ranks by (accuracy, micro_f1, record_accuracy, chrf)
    n_items: int
    configs: list[dict[str, Any]] = field(default_factory=list)
    stopped: str | None = None  # why the grid stopped before its end (budget)
    recommended: int | None = None  # index into configs
    tolerance: float | None = None
    eval_dir: str | None = None
    sampled_from: int | None = None  # the labelled rows a --sample was drawn from
    source: str | None = None  # the task evaluated: a built-in task's name or a task file's path (None: a Task object)
    options: dict[str, Any] = field(default_factory=dict)  # the task options evaluated (JSON)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def table(self) -> str:
        return format_eval(self)

    def plot(self, path: str | Path) -> Path:
        """Score against cost per 1,000 items, the front and the pick marked: .html (self-contained),
        .png or .svg (matplotlib: ``pip install 'flashlane[plot]'``)."""
        from .plot import write_plot

        return write_plot(self, path)

    def write_task(self, path: str | Path, *, task: Task | None = None, index: int | None = None) -> Path:
        """The recommended configuration (or ``index``) as a YAML task file ``flashlane run`` takes as
        it is (``task``: the Task object evaluated, when it was not a built-in task or a file)."""
        from .choice import write_task

        t = task or get_task(self.source or self.task)
        return write_task(self, t, self.source, self.options, path, index=index)

    @property
    def best(self) -> dict[str, Any] | None:
        return None if self.recommended is None else self.configs[self.recommended]


def configurations(models: Sequence[str], thinking: Sequence[str | None], packs: Sequence[int | str | None],
                   examples: Sequence[int | str], tiers: Sequence[str],
                   cache_prefix: Sequence[str | None] = (None,),
                   media_resolution: Sequence[str | None] = (None,)) -> list[Config]:
    # The tier is the innermost axis: configurations that differ only in it follow each other, the
    # first asks, the others are answered from the eval's cache and repriced.
    return [Config(m, t, p, e, s, c, r) for m, t, p, e, c, r, s in
            itertools.product(models, thinking, packs, examples, cache_prefix, media_resolution, tiers)]


def _kind(task: Task, options: Mapping[str, Any]) -> tuple[str, str]:
    if task.name == "classify":
        if options.get("multi_label"):
            return "multilabel", "micro_f1"
        return "classification", "accuracy"
    if task.name == "translate":
        return "translation", "chrf"
    if task.name == "summarize":
        raise InputError("flashlane eval has no truth metric for summaries",
                         hint="evaluate classify, extract, translate or a custom task with structured output")
    return "fields", "record_accuracy"


def _as_data(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


def _predicted(kind: str, value: Any) -> Any:
    data = _as_data(value)
    if kind == "classification":
        return data.get("label") if isinstance(data, Mapping) else None
    if kind == "multilabel":
        return label_set(data.get("labels")) if isinstance(data, Mapping) else None
    if kind == "translation":
        return data.get("text") if isinstance(data, Mapping) else data
    return data


def _task_for(task: Task, examples: int | str) -> Task:
    if examples == ALL_EXAMPLES:
        return task
    return dataclasses.replace(task, examples=tuple(task.examples[: int(examples)]))


def _labels(options: Mapping[str, Any]) -> list[str]:
    labels = options.get("labels")
    return [x.strip() for x in labels.split(",")] if isinstance(labels, str) else list(labels or [])


def _check(client: Client, task: Task, rows: list[dict[str, Any]], truth: list[str], kind: str,
           grid: list[Config]) -> None:
    """Everything that can be wrong before the first request: one line, nothing spent."""
    if not rows:
        raise InputError("the labelled file has no rows", hint="pass a file with rows and a truth column")
    if kind != "fields" and len(truth) != 1:
        raise InputError(f"{kind} takes one truth column, got {len(truth)}", hint="e.g. --truth label")
    for i, row in enumerate(rows):
        missing = [c for c in truth if c not in row]
        if missing:
            raise InputError(f"row {i + 1} has no truth column '{missing[0]}'",
                             hint=f"the row's columns are {', '.join(map(str, row)) or 'none'}")
    for c in grid:
        if c.service_tier not in SERVICE_TIERS:
            raise InputError(f"unknown service tier {c.service_tier!r}", hint=f"use {', '.join(SERVICE_TIERS)}")
        if c.examples != ALL_EXAMPLES and (not isinstance(c.examples, int) or not 0 <= c.examples <= len(task.examples)):
            raise InputError(f"--examples {c.examples}: task '{task.name}' has {len(task.examples)} worked examples",
                             hint=f"use 0..{len(task.examples)} or all")
        if c.cache_prefix not in (None, "auto", "on", "off"):
            raise InputError(f"--cache-prefix {c.cache_prefix}: use auto, on or off", hint="e.g. --cache-prefix on,off")
        if c.media_resolution not in (None, *MEDIA_RESOLUTIONS):
            raise InputError(f"--media-resolution {c.media_resolution}: use {', '.join(MEDIA_RESOLUTIONS)}",
                             hint="e.g. --media-resolution low,high")
        check_settings(client.settings.with_(model=c.model, thinking=c.thinking, service_tier=c.service_tier))


def _truth_of(kind: str, row: Mapping[str, Any], truth: list[str]) -> Any:
    if kind == "fields":
        return {c: row[c] for c in truth}
    if kind == "multilabel":
        return label_set(row[truth[0]])
    return str(row[truth[0]])


def _rate(n: int, total: int) -> float:
    return round(n / total, 4) if total else 0.0


def _score(kind: str, truth: list[Any], predicted: list[Any], meta: Mapping[str, Any], seed: int,
           resamples: int) -> dict[str, Any]:
    if kind == "classification":
        return classification_metrics(truth, predicted, meta["labels"], seed=seed, resamples=resamples)
    if kind == "multilabel":
        return multilabel_metrics(truth, predicted, meta["labels"], seed=seed, resamples=resamples)
    if kind == "translation":
        return translation_metrics(truth, predicted, seed=seed, resamples=resamples)
    return field_metrics(truth, predicted, meta["truth"], seed=seed, resamples=resamples)


def _fingerprint(meta: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], truth: Sequence[Any]) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    for r, t in zip(rows, truth, strict=True):
        h.update(json.dumps([r, t], sort_keys=True, default=str).encode())
    return h.hexdigest()


def score_run(run_db: str | Path, kind: str, truth: list[Any], meta: Mapping[str, Any], *, seed: int,
              resamples: int) -> dict[str, Any]:
    """One configuration's line of the report, read from its run database alone."""
    store = RunStore(run_db, create=False)
    try:
        r = build_report(store)
        predicted: list[Any] = [None] * len(truth)
        shared_usd = 0.0
        shared = 0
        for row in store.items.iter_rows():
            res = row.result
            if res.status == "ok" and row.index < len(truth):
                predicted[row.index] = _predicted(kind, res.value)
            if res.cached:  # answered from the eval's cache: priced as what it would have cost at this tier
                shared += 1
                shared_usd += res.cost_usd or 0.0
        reasks = store.totals.reasked_requests()
    finally:
        store.close()
    items = r["items"]
    done = items["ok"] + items["failed"]
    reasons = r["failed_by_reason"]
    cost = None if r["cost_usd"] is None else r["cost_usd"] + shared_usd
    return {
        "status": r["status"], "items": items, "run_db": str(run_db),
        "metrics": _score(kind, truth, predicted, meta, seed, resamples),
        "cost_usd": cost, "spent_usd": r["cost_usd"], "shared_items": shared,
        "cost_per_1000_items_usd": round(cost / done * 1000, 6) if done and cost is not None else None,
        "tokens": r["tokens"], "requests": r["requests"],
        "latency_per_item_s": r["latency_per_item_s"],
        "rates": {"failed": _rate(items["failed"], done),
                  "max_tokens": _rate(sum(reasons.get(x, 0) for x in TRUNCATED_REASONS), done),
                  "blocked": _rate(sum(reasons.get(x, 0) for x in BLOCKED_REASONS), done),
                  "parse": _rate(sum(reasons.get(x, 0) for x in PARSE_REASONS), done),
                  "resent": _rate(r["resent_items"], done),
                  # requests the answer judge asked again (a re-ask after invalid JSON, a larger cap)
                  "reasked": _rate(reasks, r["requests"])},
    }


def _spent(run_db: Path) -> float:
    if not run_db.is_file():
        return 0.0
    store = RunStore(run_db, create=False)
    try:
        return store.requests.spent_usd()
    finally:
        store.close()


def _grid(client: Client, models: Sequence[str] | None, thinking: Sequence[str | None] | None,
          pack: Sequence[int | str | None] | None, examples: Sequence[int | str] | None,
          service_tier: Sequence[str] | None, cache_prefix: Sequence[str | None] | None,
          media_resolution: Sequence[str | None] | str | None) -> list[Config]:
    s = client.settings
    # one level may be given as it is for a run (media_resolution="low"): a grid of one
    levels = [media_resolution] if isinstance(media_resolution, str) else media_resolution
    return configurations(models or [s.model], thinking or [s.thinking], pack or [None], examples or [ALL_EXAMPLES],
                          service_tier or [s.service_tier], cache_prefix or [None], levels or [None])


def _prepare(client: Client, task: Task | str, rows: Iterable[Mapping[str, Any]], truth: str | Sequence[str],
             grid_axes: dict[str, Any], sample: int | None, seed: int,
             task_options: dict[str, Any]) -> tuple[Task, list[Config], str, str, list[str], list[dict[str, Any]],
                                                     list[Any], dict[str, Any], int]:
    t = get_task(task)
    truth_cols = [truth] if isinstance(truth, str) else list(truth)
    data = [dict(r) for r in rows]
    options = t.options(task_options)
    kind, metric = _kind(t, options)
    grid = _grid(client, **grid_axes)
    _check(client, t, data, truth_cols, kind, grid)
    t.check_options(options)
    require_eval_extra()  # after the checks: a wrong command line says so without loading scikit-learn
    total = len(data)
    if sample is not None:
        if sample < 1:
            raise InputError("--sample must be at least 1", hint="e.g. --sample 300")
        strata = [json.dumps(_truth_of(kind, r, truth_cols), sort_keys=True, default=str)
                  if kind in ("classification", "multilabel") else "" for r in data]
        data = stratified_sample(data, strata, sample, seed)
    truths = [_truth_of(kind, r, truth_cols) for r in data]
    sent = [{k: v for k, v in r.items() if k not in truth_cols} for r in data]  # the truth never reaches a prompt
    labels = _labels(options) if kind in ("classification", "multilabel") else []
    source = task if isinstance(task, str) else (t.name if BUILTIN_TASKS.get(t.name) is t else None)
    meta = {"task": t.name, "source": source, "kind": kind, "metric": metric, "truth": truth_cols, "labels": labels,
            "options": jsonable({k: v for k, v in task_options.items() if k not in ("schema",)}),
            "sample": sample, "sampled_from": total}
    return t, grid, kind, metric, truth_cols, sent, truths, meta, total


def _open_dir(eval_dir: Path, meta: dict[str, Any], sent: list[dict[str, Any]], truths: list[Any],
              fresh: bool) -> EvalStore:
    """The eval's folder: new (the items written, the truth stored), or the same eval resumed."""
    eval_dir.mkdir(parents=True, exist_ok=True)
    db = eval_dir / EVAL_DB
    if fresh:
        for p in [db, *eval_dir.glob("config-*"), eval_dir / ITEMS_FILE, *eval_dir.glob(f"{RESPONSES_FILE}*")]:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
    fingerprint = _fingerprint(meta, sent, truths)
    store = EvalStore(db)
    try:
        before = store.get("fingerprint")
        if before is not None and before != fingerprint:
            raise InputError(f"{eval_dir} holds an eval of other items, truth or task options",
                             hint="rerun with that eval's settings to resume it, add --fresh to start over, "
                                  "or pass another --eval-dir")
        items = eval_dir / ITEMS_FILE
        if before is None or not items.is_file():
            tmp = items.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                for r in sent:
                    f.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
            tmp.replace(items)
        if before is None:
            store.start({**meta, "fingerprint": fingerprint, "n_items": len(sent)}, truths)
    except BaseException:
        store.close()
        raise
    return store


def evaluate(client: Client, task: Task | str, rows: Iterable[Mapping[str, Any]], *, truth: str | Sequence[str],
             models: Sequence[str] | None = None, thinking: Sequence[str | None] | None = None,
             pack: Sequence[int | str | None] | None = None, examples: Sequence[int | str] | None = None,
             service_tier: Sequence[str] | None = None, cache_prefix: Sequence[str | None] | None = None,
             media_resolution: Sequence[str | None] | str | None = None, media_column: str | None = None,
             media_base: str | Path | None = None,
             tolerance: float | None = None, budget_usd: float | None = None, seed: int = DEFAULT_SEED,
             resamples: int = BOOTSTRAP_RESAMPLES, concurrency: int | None = DEFAULT_CONCURRENCY,
             column: str | None = None, template: str | None = None, id_column: str | None = None,
             sample: int | None = None, eval_dir: str | Path | None = None, fresh: bool = False,
             on_config: Callable[[int, int, Config], None] | None = None, **task_options: Any) -> EvalReport:
    """Run ``task`` on ``rows`` once per configuration of the grid and score each against ``truth``
    (a column name, or for extraction and custom tasks one column per output field, dotted for
    nested fields). A grid axis left out is the Lane's setting (one value). ``sample``: a seeded
    sample stratified by the truth. ``eval_dir``: the eval's folder (resumable; default a
    temporary one, deleted after). ``media_column``: a column of file paths (images, PDFs, audio)
    sent with each row, relative ones read against ``media_base`` (default: the current folder);
    ``media_resolution``: the levels to compare (low, medium, high)."""
    axes = {"models": models, "thinking": thinking, "pack": pack, "examples": examples,
            "service_tier": service_tier, "cache_prefix": cache_prefix, "media_resolution": media_resolution}
    t, grid, kind, metric, _, sent, truths, meta, total = _prepare(client, task, rows, truth, axes, sample, seed,
                                                                   task_options)
    if budget_usd is not None and budget_usd <= 0:
        raise InputError("--budget-usd must be positive", hint="e.g. --budget-usd 0.50")
    tmp = tempfile.TemporaryDirectory(prefix="flashlane-eval-") if eval_dir is None else None
    folder = Path(tmp.name if tmp is not None else eval_dir)  # type: ignore[arg-type]
    store = _open_dir(folder, meta, sent, truths, fresh)
    report = EvalReport(task=t.name, kind=kind, metric=metric, n_items=len(sent), tolerance=tolerance,
                        eval_dir=None if tmp is not None else str(folder),
                        sampled_from=total if sample is not None and sample < total else None,
                        source=meta["source"], options=meta["options"])
    try:
        runs: list[tuple[Config, Path]] = []
        for cfg in grid:
            name = RUN_FILE.format(n=len(store.configs()))
            runs.append((cfg, folder / store.config_run(cfg.name, dataclasses.asdict(cfg), name)))
        for i, (cfg, run_db) in enumerate(runs):
            if on_config is not None:
                on_config(i, len(runs), cfg)
            left = None
            if budget_usd is not None:
                left = budget_usd - sum(_spent(p) for c, p in runs if p != run_db)
                if left <= 0:
                    report.stopped = (f"budget: ${budget_usd:g} reached before configuration {i + 1} of {len(runs)}")
                    break
            summary = run_file(client, _task_for(t, cfg.examples), RunConfig(
                input=str(folder / ITEMS_FILE), output=str(run_db.with_name(run_db.name.replace(".flashlane.db",
                                                                                                ".jsonl"))),
                run_db=str(run_db), column=column, template=template, id_column=id_column, pack=cfg.pack, concurrency=concurrency,
                media_column=media_column, media_base=str(Path(media_base or ".").resolve()),
                budget_usd=left, cache=True, cache_file=str(folder / RESPONSES_FILE), cache_scope=cfg.scope,
                cache_prefix=cfg.cache_prefix, quiet=True, service_tier=cfg.service_tier, warn=lambda _: None,
                task_options=cfg.options(task_options)))
            report.configs.append({"config": dataclasses.asdict(cfg), "name": cfg.name,
                                   **score_run(run_db, kind, truths, meta, seed=seed, resamples=resamples)})
            if summary.outcome.status == "budget":
                report.stopped = (f"budget: ${budget_usd:g} reached in configuration {i + 1} of {len(runs)}")
                break
    finally:
        store.close()
        if tmp is not None:
            tmp.cleanup()
    decide(report)
    return report


async def aevaluate(client: Client, task: Task | str, rows: Iterable[Mapping[str, Any]], *,
                    truth: str | Sequence[str], **kw: Any) -> EvalReport:
    """``evaluate`` from async code: each configuration is a run with its own event loop, so the
    grid runs in a worker thread."""
    data = [dict(r) for r in rows]
    return await asyncio.to_thread(lambda: evaluate(client, task, data, truth=truth, **kw))


def is_eval_dir(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / EVAL_DB).is_file()


def load_eval(eval_dir: str | Path, *, tolerance: float | None = None, seed: int = DEFAULT_SEED,
              resamples: int = BOOTSTRAP_RESAMPLES) -> EvalReport:
    """The report of the eval in ``eval_dir``, from its files alone: every configuration run so
    far (a partly run one scored as it stands, its pending items counted wrong)."""
    require_eval_extra()
    folder = Path(eval_dir)
    store = EvalStore(folder / EVAL_DB)
    try:
        meta = {k: store.get(k) for k in ("task", "source", "options", "kind", "metric", "truth", "labels", "n_items",
                                          "sample", "sampled_from")}
        if meta["task"] is None:
            raise InputError(f"{folder} holds no eval", hint="pass the folder flashlane eval wrote (--eval-dir)")
        truths = list(store.truth())
        configs = store.configs()
    finally:
        store.close()
    report = EvalReport(task=meta["task"], kind=meta["kind"], metric=meta["metric"], n_items=len(truths),
                        tolerance=tolerance, eval_dir=str(folder),
                        sampled_from=meta["sampled_from"] if meta["sample"] and meta["sample"] < meta["sampled_from"]
                        else None, source=meta["source"], options=meta["options"] or {})
    for name, cfg, run_db in configs:
        if not (folder / run_db).is_file():
            continue  # recorded, never started
        line = score_run(folder / run_db, meta["kind"], truths, meta, seed=seed, resamples=resamples)
        report.configs.append({"config": cfg, "name": name, **line})
        if line["status"] == "budget":
            report.stopped = f"budget: configuration {len(report.configs)} stopped by its budget"
    decide(report)
    return report


# ---------------------------------------------------------------------------- before: the estimate


def estimate(client: Client, task: Task | str, rows: Iterable[Mapping[str, Any]], *, truth: str | Sequence[str],
             models: Sequence[str] | None = None, thinking: Sequence[str | None] | None = None,
             pack: Sequence[int | str | None] | None = None, examples: Sequence[int | str] | None = None,
             service_tier: Sequence[str] | None = None, cache_prefix: Sequence[str | None] | None = None,
             media_resolution: Sequence[str | None] | str | None = None, media_column: str | None = None,
             media_base: str | Path | None = None,
             column: str | None = None, template: str | None = None, id_column: str | None = None,
             sample: int | None = None, seed: int = DEFAULT_SEED, **task_options: Any) -> list[dict[str, Any]]:
    """What each configuration would send and cost, nothing sent (``--dry-run``): its requests and
    its cost by ``pipeline.estimate.estimate_run`` (the estimate ``flashlane run --dry-run`` makes:
    estimated input, each answer's budget and the typical thinking: about the most it will cost), at
    its tier. ``pays``: False for a configuration whose requests an earlier one already sends
    (answered from the eval's cache: priced, not paid)."""
    axes = {"models": models, "thinking": thinking, "pack": pack, "examples": examples,
            "service_tier": service_tier, "cache_prefix": cache_prefix, "media_resolution": media_resolution}
    t, grid, _, _, _, sent, _, _, _ = _prepare(client, task, rows, truth, axes, sample, seed, task_options)
    out = []
    asked: set[tuple[Any, ...]] = set()
    for cfg in grid:
        job = Job.create(client, _task_for(t, cfg.examples), cfg.options(task_options), service_tier=cfg.service_tier)
        builder = ItemBuilder(job.task, column=column, template=template, id_column=id_column,
                              media_column=media_column, media_base=Path(media_base or "."))
        items = [builder.build(i, r) for i, r in enumerate(sent)]
        plan = resolve_pack(job, items[:PACK_SAMPLE_ITEMS], cfg.pack)
        est = estimate_run(job, items, plan)
        key = (job.model, job.thinking, cfg.examples, plan.size, cfg.scope, cfg.media_resolution)
        out.append({"name": cfg.name, "requests": est.requests, "pack": plan.size, "pays": key not in asked,
                    "cost_usd": est.costs.get(job.service_tier)})
        asked.add(key)
    return out


def format_estimate(rows: list[dict[str, Any]], n_items: int) -> str:
    w = max([len("configuration"), *(len(r["name"]) for r in rows)])
    lines = [f"dry run: nothing sent; {n_items} items per configuration",
             f"{'configuration':<{w}} {'requests':>8} {'about, at most $':>17}"]
    pays = 0.0
    for r in rows:
        c = r["cost_usd"]
        note = "" if r["pays"] else "  (answered from the eval's cache: priced, not paid)"
        lines.append(f"{r['name']:<{w}} {r['requests']:>8} {'unknown' if c is None else f'{c:.6f}':>17}{note}")
        if r["pays"]:
            pays += c or 0.0
    lines.append(f"to pay: about ${pays:.6f} at most (--budget-usd stops the grid before it passes a limit)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- after: the decision


def _value(row: dict[str, Any], metric: str) -> float:
    v = row["metrics"][metric]["value"]
    return -math.inf if v is None else float(v)


def decide(report: EvalReport) -> None:
    """Mark the Pareto front (no other configuration is at least as good and as cheap, and better
    or cheaper) and recommend the cheapest configuration whose score is not below the best: within
    ``tolerance`` of the best score when one is given, else with an interval reaching the best score
    (not significantly below it at the 95 % level, bootstrap)."""
    rows = [r for r in report.configs if r["status"] != "budget" and r["cost_per_1000_items_usd"] is not None]
    for r in report.configs:
        r["pareto"] = False
    if not rows:
        return
    m = report.metric
    for r in rows:
        c, v = r["cost_per_1000_items_usd"], _value(r, m)
        r["pareto"] = not any(o is not r and o["cost_per_1000_items_usd"] <= c and _value(o, m) >= v
                              and (o["cost_per_1000_items_usd"] < c or _value(o, m) > v) for o in rows)
    best = max(_value(r, m) for r in rows)

    def eligible(r: dict[str, Any]) -> bool:
        if report.tolerance is not None:
            return _value(r, m) >= best - report.tolerance
        ci = r["metrics"][m]["ci"]
        return ci is not None and ci[1] >= best

    pick = min((r for r in rows if eligible(r)), key=lambda r: (r["cost_per_1000_items_usd"], -_value(r, m)))
    report.recommended = report.configs.index(pick)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _secs(lat: Mapping[str, float] | None, key: str) -> str:
    return "-" if not lat else f"{lat[key]:.2f}"  # '-': every answer came from another configuration's requests


def format_eval(report: EvalReport) -> str:
    """The terminal table: one line per configuration, the front marked '*', the pick '>'."""
    m = report.metric
    scale = 1.0 if m == "chrf" else 100.0  # chrF is already 0-100
    w = max([len("configuration"), *(len(r["name"]) for r in report.configs)])
    head = (f"{'':2}{'configuration':<{w}} {m:>22} {'$/1k items':>11} {'p50 s':>7} {'p95 s':>7} "
            f"{'fail':>6} {'maxtok':>6} {'block':>6} {'parse':>6} {'resent':>6} {'reask':>6}")
    sampled = f" (a stratified sample of {report.sampled_from})" if report.sampled_from else ""
    lines = [f"eval of {report.task} on {report.n_items} labelled items{sampled} ({report.kind})", head]
    for i, r in enumerate(report.configs):
        sc = r["metrics"][m]
        ci = sc["ci"]
        score = "n/a" if sc["value"] is None else (
            f"{scale * sc['value']:.1f} [{scale * ci[0]:.1f}, {scale * ci[1]:.1f}]")
        cost = r["cost_per_1000_items_usd"]
        lat = r["latency_per_item_s"]
        rates = r["rates"]
        mark = (">" if i == report.recommended else " ") + ("*" if r.get("pareto") else " ")
        lines.append(f"{mark}{r['name']:<{w}} {score:>22} {'unknown' if cost is None else f'{cost:.4f}':>11} "
                     f"{_secs(lat, 'p50'):>7} {_secs(lat, 'p95'):>7} "
                     f"{_pct(rates['failed']):>6} {_pct(rates['max_tokens']):>6} {_pct(rates['blocked']):>6} "
                     f"{_pct(rates['parse']):>6} {_pct(rates['resent']):>6} {_pct(rates.get('reasked', 0.0)):>6}")
    lines.append("* Pareto front of score against cost; > recommended; p50/p95 '-': answered from the eval's cache")
    if report.stopped:
        lines.append(f"stopped: {report.stopped} (the table is partial)")
    best = report.best
    if best is not None:
        sc = best["metrics"][m]
        rule = (f"within {report.tolerance} of the best" if report.tolerance is not None
                else "not significantly below the best (95% bootstrap interval)")
        lines.append(f"recommended: {best['name']}: {m} {scale * sc['value']:.1f}, "
                     f"${best['cost_per_1000_items_usd']:.4f} per 1,000 items; the cheapest {rule}")
    return "\n".join(lines)
