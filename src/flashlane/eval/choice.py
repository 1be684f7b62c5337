"""``--write-task FILE``: the recommended configuration as a task file that ``flashlane run``
takes as it is: the task (a built-in one by name, ``task = "classify"``, or a copy of the task
file evaluated), its options, thinking level and worked examples, and a ``[run]`` table with the
model, pack size, service tier and prefix caching (tasks/custom.py). Flags given to ``flashlane
run`` still win over the file's settings.

Written as YAML (PyYAML, a dependency already; the standard library reads TOML but does not write it).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import InputError
from ..pipeline.job import jsonable
from ..tasks import BUILTIN_TASKS, Task
from ..tasks.reference import Example

if TYPE_CHECKING:
    from .grid import EvalReport

__all__ = ["TASK_FILE_SUFFIXES", "check_task_path", "write_task"]

TASK_FILE_SUFFIXES = (".yaml", ".yml")


def check_task_path(path: str | Path) -> None:
    """A task file the eval cannot write fails before anything is spent."""
    if Path(path).suffix.lower() not in TASK_FILE_SUFFIXES:
        raise InputError(f"--write-task {path}: the task file is written as YAML",
                         hint="name a .yaml file, e.g. --write-task chosen.yaml")


def _example(e: Example) -> dict[str, Any]:
    out: dict[str, Any] = {"input": jsonable(e.input), "output": jsonable(e.output)}
    if e.name:
        out["name"] = e.name
    return out


def _read(path: Path) -> dict[str, Any]:
    raw = path.read_text(encoding="utf-8")
    data = tomllib.loads(raw) if path.suffix.lower() == ".toml" else yaml.safe_load(raw)
    return dict(data)


def _absolute(data: dict[str, Any], folder: Path) -> None:
    """Paths a task file reads relative to its own folder, made absolute (the copy lives elsewhere)."""
    files = data.get("reference_files")
    if files:
        data["reference_files"] = [str((folder / f).resolve()) for f in ([files] if isinstance(files, str) else files)]
    model = data.get("output_model")
    if isinstance(model, str) and model.lower().endswith(".json") and not Path(model).is_absolute():
        data["output_model"] = str((folder / model).resolve())


def write_task(report: EvalReport, task: Task, source: str | None, options: Mapping[str, Any], path: str | Path,
               *, index: int | None = None) -> Path:
    """The configuration ``index`` of ``report`` (default: the recommended one) as a task file."""
    check_task_path(path)
    i = report.recommended if index is None else index
    if i is None:
        raise InputError("no configuration to write: the eval recommended none", hint="see the table")
    cfg = report.configs[i]["config"]
    opts = {k: v for k, v in options.items() if v is not None and k not in ("model", "thinking")}
    if cfg.get("media_resolution"):  # a task option (tasks/option.py): the task file's [defaults] carry it
        opts["media_resolution"] = cfg["media_resolution"]
    bad = next((k for k, v in opts.items() if not isinstance(jsonable(v), (str, int, float, bool, list, dict))), None)
    if bad is not None:
        raise InputError(f"the option {bad!r} is a Python object, which a task file cannot hold",
                         hint="pass it as a file (e.g. schema='invoice.json') to write the task")
    if source is not None and source not in BUILTIN_TASKS:
        data = _read(Path(source))
        _absolute(data, Path(source).resolve().parent)
        if opts:
            data["defaults"] = {**dict(data.get("defaults") or {}), **jsonable(opts)}
    else:
        if task.name not in BUILTIN_TASKS:
            raise InputError(f"task '{task.name}' was given as a Python object, not a file",
                             hint="evaluate a built-in task or a task file to write the choice as a task file")
        data = {"task": task.name, "defaults": jsonable(opts)}
    if cfg["examples"] != "all":
        data["examples"] = [_example(e) for e in task.examples[: int(cfg["examples"])]]
    if cfg.get("thinking"):
        data["thinking"] = cfg["thinking"]
    run: dict[str, Any] = {"model": cfg["model"], "service_tier": cfg["service_tier"]}
    if cfg.get("pack") is not None:
        run["pack"] = cfg["pack"]
    if cfg.get("cache_prefix"):
        run["cache_prefix"] = cfg["cache_prefix"]
    data["run"] = run
    r = report.configs[i]
    m = r["metrics"][report.metric]
    head = (f"# Written by flashlane eval: {r['name']}\n# {report.metric} {m['value']:.4f} on {report.n_items} items; "
            f"${r['cost_per_1000_items_usd']} per 1,000 items. flashlane run THIS_FILE INPUT uses these settings;\n"
            "# a flag on the command line (--pack, --model, --service-tier, --thinking) still wins.\n")
    p = Path(path)
    p.write_text(head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return p
