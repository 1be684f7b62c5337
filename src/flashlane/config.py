"""Settings: one object, resolved once, with a fixed precedence.

    call arguments  >  environment  >  TOML file  >  defaults

The TOML file is the first that exists of ``$FLASHLANE_CONFIG``, ``./flashlane.toml`` and
``~/.config/flashlane/config.toml``; keys are the setting names (a ``[flashlane]`` table
is also accepted). Environment names are ``FLASHLANE_<NAME>`` plus the SDK's own
variables (``GEMINI_API_KEY``, ``GOOGLE_API_KEY``, ``GOOGLE_GENAI_USE_VERTEXAI``,
``GOOGLE_CLOUD_PROJECT``, ``GOOGLE_CLOUD_LOCATION``, ``GOOGLE_GEMINI_BASE_URL``) with the
SDK's precedence, so a setup that works with google-genai works here unchanged.

Safe defaults are the named constants below; nothing else in flashlane invents one.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tomllib
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import FrameType
from typing import Any, cast

from .errors import AI_STUDIO_KEY_URL, ConfigError
from .limits import BACKENDS
from .limits.config import Limits
from .media import FILES_API_PROJECT_BYTES, INLINE_REQUEST_LIMIT_BYTES
from .models import DEFAULT_MODEL, SERVICE_TIERS, THINKING_LEVELS, lookup

__all__ = [
    "CACHE_PREFIX_MODES",
    "check_settings",
    "DEFAULT_BREAKER_COOLDOWN_S",
    "DEFAULT_CACHE_PREFIX",
    "DEFAULT_CONTEXT_CACHE_TTL_S",
    "DEFAULT_BREAKER_THRESHOLD",
    "DEFAULT_DEADLINE_S",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "RUN_DEADLINE_S",
    "DEFAULT_OUTPUT_CEILING",
    "DEFAULT_THINKING_LEVEL",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_VERTEX_LOCATION",
    "RENAMED_SETTINGS",
    "Settings",
    "deprecated",
    "load_settings",
]

DEFAULT_TIMEOUT_S = 30.0  # the SDK's default is no timeout at all: a stuck call hangs forever
# A base URL is tried once (a TCP connect) before anything is sent, so a refused connection fails
# at once naming the URL and where it was set, not after the retry schedule (29.6 s measured,
# issue 20). A connect that takes longer than this is left to the requests' own timeout.
CONNECT_CHECK_S = 3.0
DEFAULT_THINKING_LEVEL = "minimal"  # Flash-Lite's cheapest; "high" doubles output tokens for simple tasks
DEFAULT_MAX_OUTPUT_TOKENS = 2048  # always sent: without a cap Gemini 3 can think without end
DEFAULT_OUTPUT_CEILING = 16_384  # the truncation retry never asks for more than this
DEFAULT_VERTEX_LOCATION = "global"
# Retries: google-api-core / google-genai use 1 s initial, 60 s cap, x2; we allow more attempts
# than the SDK's 5 because a free-tier run meets per-minute 429s routinely, each cheap to wait out.
DEFAULT_MAX_ATTEMPTS = 8
# One call, all attempts included, ends within this: a hung or failing service must not hold
# an interactive command for minutes (8 attempts x 30 s measured 269-319 s before). Each
# attempt's timeout is cut to what is left of it. Runs raise it per item (RUN_DEADLINE_S).
DEFAULT_DEADLINE_S = 60.0
RUN_DEADLINE_S = 600.0  # a row in a file run may wait out several per-minute windows
# The outage breaker (breaker.py): this many failed attempts in a row across calls opens it.
DEFAULT_BREAKER_THRESHOLD = 10
DEFAULT_BREAKER_COOLDOWN_S = 30.0
DEFAULT_PROJECT = "default"  # quotas are per project; AI Studio keys don't reveal theirs
EMULATOR_API_KEY = "emulator-key"  # a dummy key; the in-process emulator accepts any
# Explicit context caches of a run's shared prefix (context_cache.py): auto = when the arithmetic
# says it pays. The TTL is short and extended while the run lasts, so a killed run's cache lapses
# (and stops costing storage) soon after; the API's own default is 1 hour (model-facts 2.4).
CACHE_PREFIX_MODES = ("auto", "on", "off")
DEFAULT_CACHE_PREFIX = "auto"
DEFAULT_CONTEXT_CACHE_TTL_S = 600.0


@dataclass(frozen=True)
class Settings:
    model: str = DEFAULT_MODEL
    api_key: str | None = field(default=None, repr=False)  # never printed
    backend: str = "gemini"  # gemini | vertex | emulator
    base_url: str | None = None
    vertex_project: str | None = None
    vertex_location: str = DEFAULT_VERTEX_LOCATION
    timeout_s: float = DEFAULT_TIMEOUT_S
    thinking: str | None = None  # a level (minimal/low/medium/high) or a budget as digits
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    output_ceiling: int = DEFAULT_OUTPUT_CEILING
    project: str = DEFAULT_PROJECT
    limits: str = "adaptive"  # adaptive | free | tier1..3 | "rpm=..,tpm=..,rpd=.." | off
    limiter: str = "memory"  # memory | sqlite | redis | ray (limits.BACKENDS)
    limiter_path: str | None = None
    redis_url: str | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    retry_deadline_s: float = DEFAULT_DEADLINE_S  # one call, all attempts
    on_outage: str = "stop"  # stop | wait: what calls do while the outage breaker is open
    budget_usd: float | None = None  # a Lane refuses calls that could pass it (BudgetExceeded)
    cache: bool = True  # the response cache: answers kept per item (--no-cache)
    cache_prefix: str = DEFAULT_CACHE_PREFIX  # auto | on | off: a context cache for a run's shared prefix
    context_cache_ttl_s: float = DEFAULT_CONTEXT_CACHE_TTL_S  # that context cache's TTL, extended while the run lasts
    state_dir: str | None = None
    emulator_latency_scale: float = 0.0
    reframe_on_block: bool = False
    service_tier: str = "standard"  # standard | flex | batch (call/service_tier.py): how requests are served and billed
    # Media (call/uploads.py): a request whose files would pass this many bytes (base64 included)
    # sends its largest files through the Files API instead of inline (media.INLINE_REQUEST_LIMIT_BYTES).
    inline_max_bytes: int = INLINE_REQUEST_LIMIT_BYTES
    files_quota_bytes: int = FILES_API_PROJECT_BYTES  # the project's Files API storage: uploads stay under it
    config_file: str | None = None  # which TOML file was read, for doctor
    base_url_from: str | None = None  # where base_url was set (GOOGLE_GEMINI_BASE_URL, a config file, --base-url)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in _renamed(changes).items() if v is not None})

    def _old_name(self, old: str) -> Any:
        deprecated(f"Settings.{old} is deprecated; use Settings.{RENAMED_SETTINGS[old]}")
        return getattr(self, RENAMED_SETTINGS[old])

    tier = property(lambda self: self._old_name("tier"), doc="Deprecated name of ``service_tier``.")
    cache_ttl_s = property(lambda self: self._old_name("cache_ttl_s"), doc="Deprecated name of ``context_cache_ttl_s``.")

    @property
    def has_credentials(self) -> bool:
        return self.backend in ("emulator", "vertex") or bool(self.api_key)

    def require_credentials(self) -> None:
        if self.backend == "gemini" and not self.api_key:
            raise ConfigError(
                f"no Gemini credentials: set GEMINI_API_KEY (get a key at {AI_STUDIO_KEY_URL}) or "
                "GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT for Vertex AI",
                hint="add --emulator to try flashlane offline against the built-in emulator",
            )
        if self.backend == "vertex" and not self.vertex_project and not self.api_key:
            raise ConfigError(
                "Vertex AI is selected but GOOGLE_CLOUD_PROJECT is not set",
                hint="export GOOGLE_CLOUD_PROJECT=<project> (and run 'gcloud auth application-default login')",
            )


_INT = {"max_output_tokens", "output_ceiling", "max_attempts", "inline_max_bytes", "files_quota_bytes"}
_FLOAT = {"timeout_s", "retry_deadline_s", "emulator_latency_scale", "budget_usd", "context_cache_ttl_s"}
_BOOL = {"cache", "reframe_on_block"}
_ENV_ALIASES = {"timeout_s": "FLASHLANE_TIMEOUT"}
_TRUE = {"1", "true", "yes", "on"}
# Renamed settings, old -> new ("tier" also meant the quota tier, "cache" also the response cache). The
# old spelling still works (keyword, config key, environment, flag) and says the new name: a
# DeprecationWarning in Python, one line on stderr elsewhere.
RENAMED_SETTINGS = {"tier": "service_tier", "cache_ttl_s": "context_cache_ttl_s"}
_noted: set[str] = set()
_INTERNAL = (str(Path(__file__).parent), str(Path(asyncio.__file__).parent))


def deprecated(message: str) -> None:
    """A DeprecationWarning pointed at the user's line: the first frame outside flashlane and asyncio."""
    level, frame = 2, cast("FrameType | None", sys._getframe(1))
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def note_renamed(old: str, new: str) -> None:
    """One line on stderr, once per process, for an old spelling outside Python (env, file, flag)."""
    if old not in _noted:
        _noted.add(old)
        print(f"flashlane: {old} is deprecated; use {new}", file=sys.stderr)


def _renamed(values: dict[str, Any]) -> dict[str, Any]:
    """Python keywords under an old name, under their new one (with a DeprecationWarning)."""
    out = dict(values)
    for old, new in RENAMED_SETTINGS.items():
        if (value := out.pop(old, None)) is not None:
            deprecated(f"{old}= is deprecated; use {new}=")
            out[new] = value if out.get(new) is None else out[new]
    return out


def _coerce(name: str, value: Any, source: str) -> Any:
    try:
        if name in _INT:
            out: Any = int(value)
            if out <= 0:
                raise ValueError
            return out
        if name in _FLOAT:
            out = float(value)
            if out < 0 or (name == "timeout_s" and out == 0):
                raise ValueError
            return out
        if name in _BOOL:
            return value if isinstance(value, bool) else str(value).strip().lower() in _TRUE
    except (TypeError, ValueError):
        raise ConfigError(f"invalid value {value!r} for {name} in {source}",
                          hint=f"{name} must be a positive number") from None
    return str(value)


def _config_path(explicit: str | None) -> Path | None:
    candidates = [explicit or os.environ.get("FLASHLANE_CONFIG"), "flashlane.toml",
                  str(Path.home() / ".config" / "flashlane" / "config.toml")]
    for i, c in enumerate(candidates):
        if not c:
            continue
        p = Path(c).expanduser()
        if p.is_file():
            return p
        if i == 0:
            raise ConfigError(f"config file {c} does not exist", hint="fix FLASHLANE_CONFIG or create the file")
    return None


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}", hint="fix the TOML syntax") from None
    data = data.get("flashlane", data)
    for old, new in RENAMED_SETTINGS.items():
        if old in data:
            note_renamed(f"the {old!r} key in {path}", repr(new))
            data.setdefault(new, data.pop(old))
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} in {path}",
                          hint=f"known settings: {', '.join(sorted(known - {'config_file', 'api_key'}))}")
    if "api_key" in data:
        raise ConfigError(f"{path} contains api_key; keys don't belong in config files",
                          hint="set GEMINI_API_KEY in the environment instead")
    return {k: _coerce(k, v, str(path)) for k, v in data.items()}


def _from_env(env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name in ("api_key", "backend", "base_url", "vertex_project", "vertex_location", "config_file"):
            continue
        var = _ENV_ALIASES.get(f.name, f"FLASHLANE_{f.name.upper()}")
        if env.get(var, "") != "":
            out[f.name] = _coerce(f.name, env[var], var)
    for old, new in RENAMED_SETTINGS.items():
        var, new_var = f"FLASHLANE_{old.upper()}", f"FLASHLANE_{new.upper()}"
        if env.get(var, "") != "":
            note_renamed(var, new_var)
            out.setdefault(new, _coerce(new, env[var], var))
    # The SDK's precedence: GOOGLE_API_KEY wins over GEMINI_API_KEY.
    key = env.get("GOOGLE_API_KEY") or env.get("GEMINI_API_KEY")
    if key:
        out["api_key"] = key.strip()
    if env.get("GOOGLE_GEMINI_BASE_URL"):
        out["base_url"] = env["GOOGLE_GEMINI_BASE_URL"]
    if env.get("GOOGLE_CLOUD_PROJECT"):
        out["vertex_project"] = env["GOOGLE_CLOUD_PROJECT"]
    if env.get("GOOGLE_CLOUD_LOCATION"):
        out["vertex_location"] = env["GOOGLE_CLOUD_LOCATION"]
    if env.get("FLASHLANE_EMULATOR", "").lower() in _TRUE:
        out["backend"] = "emulator"
    elif env.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() in _TRUE:
        out["backend"] = "vertex"
    return out


def load_settings(*, emulator: bool = False, config_file: str | None = None,
                  env: dict[str, str] | None = None, defaults: dict[str, Any] | None = None,
                  **overrides: Any) -> Settings:
    """Resolve settings. ``overrides`` are call arguments; ``None`` means "not given".
    ``defaults`` replace the built-in defaults for one command (a file run allows each row a
    longer deadline than an interactive call); the file and the environment still win."""
    environ = dict(os.environ if env is None else env)
    values: dict[str, Any] = dict(defaults or {})
    path = _config_path(config_file) if env is None or config_file else None
    if path is not None:
        values.update(_from_toml(path))
        values["config_file"] = str(path)
        if "base_url" in values:
            values["base_url_from"] = f"base_url in config file {path}"
    env_values = _from_env(environ)
    values.update(env_values)
    if "base_url" in env_values:
        values["base_url_from"] = "GOOGLE_GEMINI_BASE_URL"
    given = {k: v for k, v in _renamed(overrides).items() if v is not None}
    values.update(given)
    if "base_url" in given:
        values["base_url_from"] = given.get("base_url_from") or "the base_url argument"
    if emulator:
        values["backend"] = "emulator"
    for name in ("max_output_tokens", "timeout_s"):
        if name in overrides and overrides[name] is not None:
            values[name] = _coerce(name, overrides[name], "arguments")
    settings = Settings(**values)
    if settings.backend == "gemini" and settings.base_url and not settings.api_key:
        # A base URL without a key is a local server (our emulator or a user's); it needs a dummy key.
        settings = replace(settings, api_key=EMULATOR_API_KEY)
    _validate(settings)
    return settings


def check_settings(s: Settings) -> None:
    """Raise ConfigError for settings no request could be made with (a grid of them is checked
    before the first request: flashlane eval)."""
    _validate(s)


def _validate(s: Settings) -> None:
    if s.service_tier not in SERVICE_TIERS:
        raise ConfigError(f"unknown service tier {s.service_tier!r}", hint=f"use one of {', '.join(SERVICE_TIERS)}")
    if s.cache_prefix not in CACHE_PREFIX_MODES:
        raise ConfigError(f"unknown cache_prefix setting {s.cache_prefix!r}", hint="use auto, on or off")
    if s.context_cache_ttl_s <= 0:
        raise ConfigError("context_cache_ttl_s must be positive", hint="e.g. FLASHLANE_CONTEXT_CACHE_TTL_S=600")
    if s.on_outage not in ("stop", "wait"):
        raise ConfigError(f"unknown on_outage setting {s.on_outage!r}", hint="use 'stop' or 'wait'")
    if s.thinking is not None:
        t = s.thinking.strip().lower()
        if t not in THINKING_LEVELS and not t.lstrip("-").isdigit():
            raise ConfigError(f"unknown thinking setting {s.thinking!r}",
                              hint=f"use one of {', '.join(THINKING_LEVELS)} or a token budget such as 512")
        info = lookup(s.model)
        if info is not None and t in THINKING_LEVELS and not info.uses_thinking_levels:
            raise ConfigError(f"{s.model} takes a thinking budget, not a level ({s.thinking!r})",
                              hint="pass a budget such as --thinking 0 (off) or --thinking 1024")
        if info is not None and t not in THINKING_LEVELS and info.uses_thinking_levels:
            raise ConfigError(f"{s.model} takes a thinking level, not a budget ({s.thinking!r})",
                              hint=f"use one of {', '.join(info.thinking_levels)}")
    info = lookup(s.model)
    if info is not None and s.max_output_tokens > info.output_token_limit:
        raise ConfigError(f"max_output_tokens {s.max_output_tokens} exceeds {s.model}'s output limit of "
                          f"{info.output_token_limit}", hint=f"use at most {info.output_token_limit}")
    if s.output_ceiling < s.max_output_tokens:
        raise ConfigError(f"output_ceiling ({s.output_ceiling}) is below max_output_tokens ({s.max_output_tokens})",
                          hint="raise FLASHLANE_OUTPUT_CEILING")
    if s.limiter not in BACKENDS:
        raise ConfigError(f"unknown limiter backend {s.limiter!r}", hint=f"use one of {', '.join(BACKENDS)}")
    if s.limiter == "redis" and not s.redis_url:
        raise ConfigError("the redis limiter needs a URL", hint="set FLASHLANE_REDIS_URL=redis://host:6379/0")
    # Parsed here, not first when a Lane builds its limiter, so that every command and
    # `flashlane doctor` refuse a bad quota string with the same message.
    Limits.parse(s.limits, s.model)
