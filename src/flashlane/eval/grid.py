"""``evaluate``: a labelled set through a grid of configurations (model × thinking × pack ×
examples × service tier), each a run of the same engine as ``lane.map`` (``pipeline.amap_items``:
the same packing, limiter, answer judge and ledger), scored against the truth and priced.

Every configuration runs in turn on the Lane's one limiter, under one budget (what is left of
``budget_usd`` after the configurations before it). The response cache is off for the grid:
an answer from the cache costs nothing, so a configuration that happened to run second would
look free (sharing identical requests across configurations while pricing each is not built).
The labelled rows are held in memory (an eval set is a sample, not the production file).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..config import check_settings
from ..errors import InputError
from ..models import SERVICE_TIERS
from ..pipeline import amap_items
from ..pipeline.scheduler import DEFAULT_CONCURRENCY
from ..tasks import Task, get_task
from .metrics import (
    BOOTSTRAP_RESAMPLES,
    DEFAULT_SEED,
    classification_metrics,
    field_metrics,
    require_eval_extra,
    translation_metrics,
)

if TYPE_CHECKING:
    from ..call.client import Client

__all__ = ["ALL_EXAMPLES", "Config", "EvalReport", "aevaluate", "configurations", "format_eval"]

ALL_EXAMPLES = "all"  # --examples all: every worked example the task has
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

    @property
    def name(self) -> str:
        return (f"{self.model} thinking={self.thinking or 'default'} pack={self.pack or 1} "
                f"examples={self.examples} tier={self.service_tier}")


@dataclass
class EvalReport:
    """Every configuration's scores, cost and failure rates; the Pareto front and the recommendation."""

    task: str
    kind: str  # classification | fields | translation
    metric: str  # the score the decision ranks by (accuracy, record_accuracy, chrf)
    n_items: int
    configs: list[dict[str, Any]] = field(default_factory=list)
    stopped: str | None = None  # why the grid stopped before its end (budget)
    recommended: int | None = None  # index into configs
    tolerance: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def table(self) -> str:
        return format_eval(self)

    @property
    def best(self) -> dict[str, Any] | None:
        return None if self.recommended is None else self.configs[self.recommended]


def configurations(models: Sequence[str], thinking: Sequence[str | None], packs: Sequence[int | str | None],
                   examples: Sequence[int | str], tiers: Sequence[str]) -> list[Config]:
    return [Config(m, t, p, e, s) for m, t, p, e, s in itertools.product(models, thinking, packs, examples, tiers)]


def _kind(task: Task, options: Mapping[str, Any]) -> tuple[str, str]:
    if task.name == "classify":
        if options.get("multi_label"):
            raise InputError("flashlane eval does not score multi-label classification yet",
                             hint="evaluate single-label classification, or compare labels per field")
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
    if kind == "translation":
        return data.get("text") if isinstance(data, Mapping) else data
    return data


def _task_for(task: Task, examples: int | str) -> Task:
    if examples == ALL_EXAMPLES:
        return task
    return dataclasses.replace(task, examples=tuple(task.examples[: int(examples)]))


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
        check_settings(client.settings.with_(model=c.model, thinking=c.thinking, service_tier=c.service_tier))


def _rate(n: int, total: int) -> float:
    return round(n / total, 4) if total else 0.0


def _score(kind: str, rows: list[dict[str, Any]], truth: list[str], predicted: list[Any],
           options: Mapping[str, Any], seed: int, resamples: int) -> dict[str, Any]:
    if kind == "classification":
        labels = options.get("labels")
        labels = [x.strip() for x in labels.split(",")] if isinstance(labels, str) else list(labels or [])
        return classification_metrics([str(r[truth[0]]) for r in rows], predicted, labels, seed=seed,
                                      resamples=resamples)
    if kind == "translation":
        return translation_metrics([str(r[truth[0]]) for r in rows], predicted, seed=seed, resamples=resamples)
    return field_metrics([{c: r[c] for c in truth} for r in rows], predicted, truth, seed=seed, resamples=resamples)


async def aevaluate(client: Client, task: Task | str, rows: Iterable[Mapping[str, Any]], *, truth: str | Sequence[str],
                    models: Sequence[str] | None = None, thinking: Sequence[str | None] | None = None,
                    pack: Sequence[int | str | None] | None = None, examples: Sequence[int | str] | None = None,
                    service_tier: Sequence[str] | None = None, tolerance: float | None = None,
                    budget_usd: float | None = None, seed: int = DEFAULT_SEED, resamples: int = BOOTSTRAP_RESAMPLES,
                    concurrency: int | None = DEFAULT_CONCURRENCY, column: str | None = None,
                    template: str | None = None, **task_options: Any) -> EvalReport:
    """Run ``task`` on ``rows`` once per configuration of the grid and score each against ``truth``
    (a column name, or for extraction and custom tasks one column per output field, dotted for
    nested fields). A grid axis left out is the Lane's setting (one value)."""
    require_eval_extra()
    t = get_task(task)
    truth_cols = [truth] if isinstance(truth, str) else list(truth)
    data = [dict(r) for r in rows]
    options = t.options(task_options)
    kind, metric = _kind(t, options)
    s = client.settings
    grid = configurations(models or [s.model], thinking or [s.thinking], pack or [None],
                          examples or [ALL_EXAMPLES], service_tier or [s.service_tier])
    _check(client, t, data, truth_cols, kind, grid)
    t.check_options(options)
    sent = [{k: v for k, v in r.items() if k not in truth_cols} for r in data]  # the truth never reaches a prompt
    report = EvalReport(task=t.name, kind=kind, metric=metric, n_items=len(data), tolerance=tolerance)
    spent = 0.0
    for cfg in grid:
        left = None if budget_usd is None else max(budget_usd - spent, 0.0)
        res = await amap_items(client, _task_for(t, cfg.examples), sent, pack=cfg.pack, concurrency=concurrency,
                               column=column, template=template, budget_usd=left, cache=False,
                               service_tier=cfg.service_tier, model=cfg.model, thinking=cfg.thinking, **task_options)
        try:
            items = list(res)
            r = res.report
            done = [i for i in items if i.status != "pending"]
            predicted = [_predicted(kind, i.value) if i.ok else None for i in items]
            reasons = r["failed_by_reason"]
            row: dict[str, Any] = {
                "config": dataclasses.asdict(cfg), "name": cfg.name, "status": res.outcome.status,
                "items": r["items"],
                "metrics": _score(kind, data, truth_cols, predicted, options, seed, resamples),
                "cost_usd": r["cost_usd"], "cost_per_1000_items_usd": r["cost_per_1000_items_usd"],
                "tokens": r["tokens"], "requests": r["requests"],
                "latency_per_item_s": r["latency_per_item_s"],
                "rates": {"failed": _rate(r["items"]["failed"], len(done)),
                          "max_tokens": _rate(sum(reasons.get(x, 0) for x in TRUNCATED_REASONS), len(done)),
                          "blocked": _rate(sum(reasons.get(x, 0) for x in BLOCKED_REASONS), len(done)),
                          "parse": _rate(sum(reasons.get(x, 0) for x in PARSE_REASONS), len(done)),
                          "resent": _rate(r["resent_items"], len(done))},
            }
        finally:
            res.close()
        report.configs.append(row)
        spent += r["cost_usd"] or 0.0
        if res.outcome.status == "budget":
            report.stopped = f"budget: ${budget_usd} reached after {len(report.configs)} of {len(grid)} configurations"
            break
    decide(report)
    return report


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


def format_eval(report: EvalReport) -> str:
    """The terminal table: one line per configuration, the front marked '*', the pick '>'."""
    m = report.metric
    scale = 1.0 if m == "chrf" else 100.0  # chrF is already 0-100
    w = max([len("configuration"), *(len(r["name"]) for r in report.configs)])
    head = (f"{'':2}{'configuration':<{w}} {m:>22} {'$/1k items':>11} {'p50 s':>7} {'p95 s':>7} "
            f"{'fail':>6} {'maxtok':>6} {'block':>6} {'parse':>6} {'resent':>6}")
    lines = [f"eval of {report.task} on {report.n_items} labelled items ({report.kind})", head]
    for i, r in enumerate(report.configs):
        sc = r["metrics"][m]
        ci = sc["ci"]
        score = "n/a" if sc["value"] is None else (
            f"{scale * sc['value']:.1f} [{scale * ci[0]:.1f}, {scale * ci[1]:.1f}]")
        cost = r["cost_per_1000_items_usd"]
        lat = r["latency_per_item_s"] or {}
        rates = r["rates"]
        mark = (">" if i == report.recommended else " ") + ("*" if r.get("pareto") else " ")
        lines.append(f"{mark}{r['name']:<{w}} {score:>22} {'unknown' if cost is None else f'{cost:.4f}':>11} "
                     f"{lat.get('p50', float('nan')):>7.2f} {lat.get('p95', float('nan')):>7.2f} "
                     f"{_pct(rates['failed']):>6} {_pct(rates['max_tokens']):>6} {_pct(rates['blocked']):>6} "
                     f"{_pct(rates['parse']):>6} {_pct(rates['resent']):>6}")
    lines.append("* Pareto front of score against cost; > recommended")
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
