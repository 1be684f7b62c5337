"""Emulator settings, and the projects file that maps API keys to projects and quotas.

Quotas on the live API are per Google Cloud project and model, shared by every key of the
project. The projects file (JSON or YAML; its format is in docs/emulator.md, Projects and
scenarios) says which keys belong together. Beyond what that page shows: a project's
``rpm``/``tpm``/``rpd`` of 0 or absent is the global ``--rpm``/``--tpm``/``--rpd`` value (or, if
only ``tier`` is given, the catalog preset of that tier); ``strict_keys: true`` makes any key not
listed under a project API_KEY_INVALID; ``default_project`` (default "default") is where unlisted
keys go.

Besides ``invalid_keys``, the literal keys ``invalid``, ``bad-key`` and ``invalid-key`` are
always rejected with API_KEY_INVALID, so tests can trigger it without a file. A request with
no key at all (and no ``Authorization: Bearer``) gets 403 PERMISSION_DENIED. Unknown keys and
negative limits are errors that name the key (a typo must not silently mean "unlimited").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import CATALOG, Quota
from .caches import DEFAULT_IMPLICIT_RATE
from .keys import non_negative_float, non_negative_int, reject_unknown

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_WINDOW_SECONDS = 60.0
DEFAULT_PROJECT = "default"
DEFAULT_TIER = "free"
REQUEST_LOG_SIZE = 100_000
ALWAYS_INVALID_KEYS = frozenset({"invalid", "bad-key", "invalid-key"})
TIERS = ("free", "tier1", "tier2", "tier3")
# Batch jobs finish this many seconds (times --latency-scale) after creation, so an offline
# trial completes while the user watches; the live API targets 24 h.
DEFAULT_BATCH_TURNAROUND_S = 3.0
# Flex answers are this many times slower than standard ones (the live target is minutes).
DEFAULT_FLEX_LATENCY_FACTOR = 4.0
# The Files API's documented per-file limit (2 GB); configurable so tests can hit it.
DEFAULT_FILE_MAX_BYTES = 2 * 1024 * 1024 * 1024
PROJECTS_FILE_KEYS = ("projects", "invalid_keys", "strict_keys", "default_project")
PROJECT_KEYS = ("keys", "tier", "rpm", "tpm", "rpd", "models", "batch_enqueued_tokens")
MODEL_LIMIT_KEYS = ("rpm", "tpm", "rpd", "batch_enqueued_tokens")


@dataclass
class ProjectConfig:
    name: str
    keys: list[str] = field(default_factory=list)
    tier: str | None = None
    rpm: int = 0
    tpm: int = 0
    rpd: int = 0
    models: dict[str, dict[str, int]] = field(default_factory=dict)
    batch_enqueued_tokens: int = 0


@dataclass
class EmulatorConfig:
    host: str = DEFAULT_HOST
    port: int = 0
    rpm: int = 0
    tpm: int = 0
    rpd: int = 0
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    latency_scale: float = 1.0
    tier: str = DEFAULT_TIER
    projects: dict[str, ProjectConfig] = field(default_factory=dict)
    invalid_keys: set[str] = field(default_factory=set)
    strict_keys: bool = False
    default_project: str = DEFAULT_PROJECT
    scenario: list[dict[str, Any]] = field(default_factory=list)
    request_log_size: int = REQUEST_LOG_SIZE
    implicit_cache_rate: float = DEFAULT_IMPLICIT_RATE  # share of repeated long prefixes reported cached
    batch_turnaround_s: float | None = None  # None: DEFAULT_BATCH_TURNAROUND_S x latency_scale
    batch_enqueued_tokens: int = 0  # per project and model; 0 = unlimited
    flex_latency_factor: float = DEFAULT_FLEX_LATENCY_FACTOR
    flex_shed_rate: float = 0.0
    file_max_bytes: int = DEFAULT_FILE_MAX_BYTES
    # Model IDs served beyond the catalog, with unknown prices (models.uncatalogued): how a client
    # behaves when the API lists a model newer than its catalog.
    extra_models: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key_to_project: dict[str, str] = {}
        self._index()

    def _index(self) -> None:
        self._key_to_project = {k: p.name for p in self.projects.values() for k in p.keys}

    def apply_projects(self, data: dict[str, Any]) -> None:
        """Merge a parsed projects file into this config."""
        reject_unknown("projects file", data, PROJECTS_FILE_KEYS)
        projects = data.get("projects") or {}
        if not isinstance(projects, dict):
            raise ValueError("projects file: 'projects' must be a mapping of name -> settings")
        parsed: dict[str, ProjectConfig] = {}
        for name, spec in projects.items():
            where = f"projects file: project '{name}'"
            spec = spec or {}
            if not isinstance(spec, dict):
                raise ValueError(f"{where} must be a mapping of settings, got {spec!r}")
            reject_unknown(where, spec, PROJECT_KEYS)
            tier = spec.get("tier")
            if tier is not None and tier not in TIERS:
                raise ValueError(f"{where}: 'tier' must be one of {', '.join(TIERS)}, got {tier!r}")
            keys = spec.get("keys", [])
            if not isinstance(keys, list):
                raise ValueError(f"{where}: 'keys' must be a list of API keys")
            models: dict[str, dict[str, int]] = {}
            for m, lim in (spec.get("models") or {}).items():
                lim = lim or {}
                if not isinstance(lim, dict):
                    raise ValueError(f"{where}: model '{m}' must be a mapping of limits, got {lim!r}")
                reject_unknown(f"{where}, model '{m}'", lim, MODEL_LIMIT_KEYS)
                models[m] = {k: non_negative_int(f"{where}, model '{m}', '{k}'", v) for k, v in lim.items()}
            limits = {k: non_negative_int(f"{where}, '{k}'", spec.get(k, 0) or 0) for k in MODEL_LIMIT_KEYS}
            parsed[name] = ProjectConfig(name=name, keys=[str(k) for k in keys], tier=tier, models=models, **limits)
        self.projects.update(parsed)  # only once the whole file is valid
        self.invalid_keys |= {str(k) for k in data.get("invalid_keys", [])}
        self.strict_keys = bool(data.get("strict_keys", self.strict_keys))
        self.default_project = str(data.get("default_project", self.default_project))
        self._index()

    # --- lookups used per request -------------------------------------------------------
    def key_is_invalid(self, key: str) -> bool:
        if key in ALWAYS_INVALID_KEYS or key in self.invalid_keys:
            return True
        return self.strict_keys and key not in self._key_to_project

    def project_for(self, key: str | None, path_project: str | None = None) -> str:
        if key is not None:
            proj = self._key_to_project.get(key)
            if proj is not None:
                return proj
        return path_project or self.default_project

    def tier_for(self, project: str) -> str:
        p = self.projects.get(project)
        return (p.tier if p and p.tier else None) or self.tier

    def limits_for(self, project: str, model: str) -> Quota:
        rpm, tpm, rpd = self.rpm, self.tpm, self.rpd
        p = self.projects.get(project)
        if p is not None:
            if p.tier and not (p.rpm or p.tpm or p.rpd):
                info = CATALOG.get(model)
                preset = info.quota(p.tier) if info else None
                if preset is not None:
                    rpm, tpm, rpd = preset.rpm, preset.tpm, preset.rpd
            rpm, tpm, rpd = p.rpm or rpm, p.tpm or tpm, p.rpd or rpd
            over = p.models.get(model)
            if over:
                rpm, tpm, rpd = over.get("rpm", rpm), over.get("tpm", tpm), over.get("rpd", rpd)
        return Quota(rpm=rpm, tpm=tpm, rpd=rpd)

    def batch_tokens_for(self, project: str, model: str) -> int:
        """The Batch API's enqueued-token limit for (project, model); 0 = unlimited."""
        limit = self.batch_enqueued_tokens
        p = self.projects.get(project)
        if p is not None:
            limit = p.batch_enqueued_tokens or limit
            limit = p.models.get(model, {}).get("batch_enqueued_tokens", limit)
        return limit

    def batch_turnaround(self) -> float:
        if self.batch_turnaround_s is not None:
            return self.batch_turnaround_s
        return DEFAULT_BATCH_TURNAROUND_S * self.latency_scale

    def apply_settings(self, body: dict[str, Any]) -> None:
        """``POST /_emulator/quotas``: change limits at runtime (validated as the CLI does)."""
        reject_unknown("quotas", body, CONTROL_SETTINGS)
        for k in ("rpm", "tpm", "rpd", "batch_enqueued_tokens", "file_max_bytes"):
            if k in body:
                setattr(self, k, non_negative_int(f"quotas: '{k}'", body[k]))
        if "window_seconds" in body:
            self.window_seconds = non_negative_float("quotas: 'window_seconds'", body["window_seconds"])
            if self.window_seconds <= 0:
                raise ValueError("quotas: 'window_seconds' must be > 0")
        for k in ("flex_latency_factor", "latency_scale"):
            if k in body:
                setattr(self, k, non_negative_float(f"quotas: '{k}'", body[k]))
        if "flex_shed_rate" in body:
            rate = non_negative_float("quotas: 'flex_shed_rate'", body["flex_shed_rate"])
            if rate > 1:
                raise ValueError(f"quotas: 'flex_shed_rate' must be from 0 to 1, got {rate}")
            self.flex_shed_rate = rate
        if "batch_turnaround_s" in body:
            value = body["batch_turnaround_s"]
            self.batch_turnaround_s = None if value is None else non_negative_float(
                "quotas: 'batch_turnaround_s'", value)
        if "tier" in body:
            if body["tier"] not in TIERS:
                raise ValueError(f"quotas: 'tier' must be one of {', '.join(TIERS)}, got {body['tier']!r}")
            self.tier = str(body["tier"])
        projects_part = {k: body[k] for k in PROJECTS_FILE_KEYS if k in body}
        if projects_part:
            self.apply_projects(projects_part)


CONTROL_SETTINGS = (
    "rpm", "tpm", "rpd", "window_seconds", "tier", "latency_scale", "batch_enqueued_tokens",
    "batch_turnaround_s", "flex_latency_factor", "flex_shed_rate", "file_max_bytes", *PROJECTS_FILE_KEYS,
)


def load_data_file(path: str | Path) -> Any:
    """Read a JSON or YAML file (by extension; YAML is a superset so it is the fallback)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith(".json"):
        return json.loads(text)
    import yaml

    return yaml.safe_load(text)


def load_projects_file(config: EmulatorConfig, path: str | Path) -> None:
    data = load_data_file(path) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with a 'projects' key")
    config.apply_projects(data)
