"""Who may use the gateway: gateway tokens mapped to a project and an upstream credential.

A tokens file (TOML or YAML; its format is in docs/gateway.md, Gateway tokens) keeps the real API
keys on the gateway; clients present a gateway token as their API key. An entry's name is its
label in the ledger and metrics; its ``project`` (default: the name) is its quota project. With
neither ``api_key`` nor ``api_key_env`` an entry uses the gateway's own credential
(``GEMINI_API_KEY``, Vertex ADC, or the emulator's dummy key).

``--pass-keys`` instead forwards each client's own key; its project and label are then a hash
of the key, never the key itself. Secrets are held only in ``Principal.upstream_key`` (not in
its repr); tokens are kept only as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["LABEL_HEX", "Principal", "TokenBook", "label_for", "load_tokens"]

LABEL_HEX = 12  # 48 bits of a SHA-256: enough to tell keys apart in a ledger, useless to recover one
ENTRY_KEYS = ("token", "project", "api_key", "api_key_env")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def label_for(secret: str) -> str:
    """A short non-reversible label for a key or token: ``key-`` + a SHA-256 prefix."""
    return "key-" + hashlib.sha256(secret.encode()).hexdigest()[:LABEL_HEX]


@dataclass(frozen=True)
class Principal:
    label: str  # safe to log: an entry name or a hash
    project: str  # the quota project (limiter key prefix)
    upstream_key: str | None = field(default=None, repr=False)  # None: the gateway's own credential


class TokenBook:
    """Resolves the API key a client sent to a ``Principal``, or None when it is not valid."""

    def __init__(self, entries: list[tuple[str, Principal]] | None = None, *, pass_keys: bool = False) -> None:
        self.pass_keys = pass_keys
        # Keyed by the token's digest: a dict lookup stays O(1) and the raw tokens aren't kept.
        self._by_digest = {hashlib.sha256(tok.encode()).digest(): p for tok, p in entries or []}
        self._cache: dict[str, Principal] = {}

    def __len__(self) -> int:
        return len(self._by_digest)

    def principals(self) -> list[Principal]:
        return list(self._by_digest.values())

    def resolve(self, key: str) -> Principal | None:
        if self.pass_keys:
            p = self._cache.get(key)
            if p is None:
                label = label_for(key)
                p = Principal(label=label, project=label, upstream_key=key)
                if len(self._cache) < 10_000:  # bounded: a flood of random keys can't grow it
                    self._cache[key] = p
            return p
        # Looked up by digest: what is compared is a hash of the candidate, so timing says
        # nothing useful about the tokens themselves.
        return self._by_digest.get(hashlib.sha256(key.encode()).digest())


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read tokens file {path}: {e.strerror or e}",
                          hint="pass an existing file to --tokens") from None
    if path.suffix.lower() == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"tokens file {path} is not valid TOML: {e}", hint="fix the syntax") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"tokens file {path} is not valid YAML{where}", hint="fix the syntax") from None


def load_tokens(path: str | os.PathLike[str], *, env: dict[str, str] | None = None) -> TokenBook:
    """Parse a tokens file. Every problem is a ``ConfigError`` naming the entry and key; the
    message never contains a token or key value."""
    p = Path(path)
    data = _read(p)
    environ = os.environ if env is None else env
    if not isinstance(data, dict):
        raise ConfigError(f"tokens file {p} must be a mapping with a 'tokens' table", hint="see docs/gateway.md (tokens file)")
    unknown = sorted(set(data) - {"tokens"})
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in tokens file {p}", hint="the only top-level key is 'tokens'")
    table = data.get("tokens")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"tokens file {p} has no entries under 'tokens'",
                          hint="add [tokens.NAME] with token = \"...\" and project = \"...\"")
    entries: list[tuple[str, Principal]] = []
    seen: set[str] = set()
    for name, spec in table.items():
        name = str(name)
        where = f"tokens.{name} in {p}"
        if not _NAME.match(name):
            raise ConfigError(f"bad entry name {name!r} in {p}", hint="use letters, digits, '.', '_' or '-'")
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a table with token, project, api_key or api_key_env")
        bad = sorted(set(spec) - set(ENTRY_KEYS))
        if bad:
            raise ConfigError(f"unknown key {bad[0]!r} in {where}", hint=f"known keys: {', '.join(ENTRY_KEYS)}")
        token = spec.get("token")
        if not isinstance(token, str) or not token.strip():
            raise ConfigError(f"{where} has no token", hint="set token = \"<what the client sends as its API key>\"")
        token = token.strip()
        if token in seen:
            raise ConfigError(f"{where} repeats another entry's token", hint="give every entry its own token")
        seen.add(token)
        project = str(spec.get("project") or name)
        key: str | None = None
        if "api_key" in spec and "api_key_env" in spec:
            raise ConfigError(f"{where} sets both api_key and api_key_env", hint="keep one of them")
        if "api_key" in spec:
            key = str(spec["api_key"]).strip() or None
        elif "api_key_env" in spec:
            var = str(spec["api_key_env"])
            key = (environ.get(var) or "").strip() or None
            if key is None:
                raise ConfigError(f"{where}: the environment variable {var} is not set",
                                  hint=f"export {var}=<the upstream API key> before starting the gateway")
        entries.append((token, Principal(label=name, project=project, upstream_key=key)))
    return TokenBook(entries)
