"""Emulator settings, and the projects file that maps API keys to projects and quotas.

Quotas on the live API are per Google Cloud project and model, shared by every key of the
project. The projects file (JSON or YAML) says which keys belong together::

    projects:
      proj-a:
        keys: [key-a1, key-a2]   # both keys share proj-a's limits
        tier: free               # quotaId naming: free -> "...-FreeTier", tier1/2/3 -> paid ids
        rpm: 10                  # per model; 0 or absent = the global --rpm/--tpm/--rpd value
        tpm: 100000              #   (or, if only `tier` is given, the catalog preset of that tier)
        rpd: 500
        models:                  # optional per-model overrides
          gemini-2.5-flash-lite: {rpm: 5}
    invalid_keys: [revoked-key]  # answered 400 API_KEY_INVALID
    strict_keys: false           # true: any key not listed under a project is API_KEY_INVALID
    default_project: default     # where unlisted keys go (default "default")

Besides ``invalid_keys``, the literal keys ``invalid``, ``bad-key`` and ``invalid-key`` are
always rejected with API_KEY_INVALID, so tests can trigger it without a file. A request with
no key at all (and no ``Authorization: Bearer``) gets 403 PERMISSION_DENIED.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import CATALOG, Quota
from .caches import DEFAULT_IMPLICIT_RATE

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_WINDOW_SECONDS = 60.0
DEFAULT_PROJECT = "default"
DEFAULT_TIER = "free"
REQUEST_LOG_SIZE = 100_000
ALWAYS_INVALID_KEYS = frozenset({"invalid", "bad-key", "invalid-key"})


@dataclass
class ProjectConfig:
    name: str
    keys: list[str] = field(default_factory=list)
    tier: str | None = None
    rpm: int = 0
    tpm: int = 0
    rpd: int = 0
    models: dict[str, dict[str, int]] = field(default_factory=dict)


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

    def __post_init__(self) -> None:
        self._key_to_project: dict[str, str] = {}
        self._index()

    def _index(self) -> None:
        self._key_to_project = {k: p.name for p in self.projects.values() for k in p.keys}

    def apply_projects(self, data: dict[str, Any]) -> None:
        """Merge a parsed projects file into this config."""
        projects = data.get("projects") or {}
        if not isinstance(projects, dict):
            raise ValueError("projects file: 'projects' must be a mapping of name -> settings")
        for name, spec in projects.items():
            spec = spec or {}
            self.projects[name] = ProjectConfig(
                name=name,
                keys=[str(k) for k in spec.get("keys", [])],
                tier=spec.get("tier"),
                rpm=int(spec.get("rpm", 0) or 0),
                tpm=int(spec.get("tpm", 0) or 0),
                rpd=int(spec.get("rpd", 0) or 0),
                models={
                    m: {k: int(v) for k, v in (lim or {}).items()}
                    for m, lim in (spec.get("models") or {}).items()
                },
            )
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
