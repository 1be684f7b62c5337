"""The package's shape: layers import downward only, no import cycle, one SDK boundary,
the emulator free of the SDK, and ``__all__`` as the public surface.

Read from the source (AST), so a new module is checked the moment it exists."""

from __future__ import annotations
import __future__

import ast
import importlib
import subprocess
import sys
import types
import typing
from pathlib import Path

import pytest

import flashlane

SRC = Path(flashlane.__file__).parent

# Lower rank = lower layer, one rank per folder (a root module is its own layer). A module may
# import its own rank or below, never above.
RANKS = {
    "models": 0, "clock": 0, "media": 0,  # media: what a file is and costs, shared with the emulator
    "errors": 1, "store": 1,  # the store package owns all SQL: it knows rows, not calls
    "config": 2, "limits": 2,  # the quota limiter needs only the clock, errors, the catalog and the store
    "telemetry": 2,  # OpenTelemetry spans and metrics: every layer above records through it
    "call": 3,  # one call: request, transport, guard, answer judge, streams, tools
    "caching": 4,  # the prefix, context caches and the response cache, built on calls
    "tasks": 5,
    "pipeline": 6,  # the run engine and its runners (standard, flex, batch)
    "eval": 7,  # the eval: grids of pipeline runs, scored (issue 24); the Lane offers it
    "lane": 7, "gateway": 7,
    "ray": 7,  # flashlane.ray: the engine on Ray Data actors (an optional extra, never imported by the rest)
    "cli": 8, "__main__": 8, "pytest_plugin": 8,
    "__init__": 8,  # the façade re-exports every layer (Lane on first use): only the top may import it
}
EMULATOR_MAY_IMPORT = {"emulator", "models", "media"}
# Only these may name SDK or transport exception types (the gateway forwards bytes with its
# own HTTP client and never calls the SDK, so its transport errors are its own business).
BOUNDARY_MODULES = {"flashlane.call.boundary"}
SDK_EXCEPTION_MODULES = ("google.genai", "httpx", "httpx2", "aiohttp", "google.auth", "google.api_core")


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom | ast.Import, is_pkg: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    names = [f"{target}.{a.name}" for a in node.names]
    return [n if n in MODULES else target for n in names]


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _in_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return True
    return False


def _imports() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level edges, function-level edges) between flashlane modules."""
    top: dict[str, set[str]] = {m: set() for m in MODULES}
    lazy: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)) or _in_type_checking(node, parents):
                continue
            for target in _resolve(mod, node, path.name == "__init__.py"):
                if target.startswith("flashlane") and target in MODULES and target != mod:
                    (lazy if _in_function(node, parents) else top)[mod].add(target)
    return top, lazy


def _layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycle_even_counting_imports_inside_functions() -> None:
    top, lazy = _imports()
    # A package __init__ re-exports its children; the edge child -> its own package is the
    # normal "import a sibling through the package" and not a layering cycle.
    merged = {m: {t for t in top[m] | lazy[m] if not m.startswith(t + ".")} for m in MODULES}
    assert _cycle(merged) is None, f"import cycle: {' -> '.join(_cycle(merged) or [])}"


def test_layers_import_downward_only() -> None:
    top, lazy = _imports()
    bad = []
    for mod in MODULES:
        layer = _layer(mod)
        for target in top[mod] | lazy[mod]:
            tl = _layer(target)
            if layer == "emulator":
                if tl not in EMULATOR_MAY_IMPORT:
                    bad.append(f"{mod} -> {target} (the emulator imports only the catalog)")
                continue
            if layer == "__init__" or tl == "emulator":
                continue  # the package façade; the emulator is a leaf anyone may start
            assert layer in RANKS and tl in RANKS, f"unranked module {mod} or {target}: add it to RANKS"
            if RANKS[tl] > RANKS[layer]:
                bad.append(f"{mod} -> {target}")
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_only_the_boundary_handles_sdk_or_transport_exceptions() -> None:
    offenders = []
    for mod, path in MODULES.items():
        if mod in BOUNDARY_MODULES or _layer(mod) in ("gateway", "emulator"):
            continue
        tree = ast.parse(path.read_text())
        aliases = {}  # local name -> module it came from
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(SDK_EXCEPTION_MODULES):
                if node.module == "google.genai" and all(a.name in ("types",) for a in node.names):
                    continue  # the request/response types are not exceptions
                for a in node.names:
                    if a.name != "types" and node.module != "google.genai":
                        aliases[a.asname or a.name] = node.module
                    elif node.module == "google.genai" and a.name == "errors":
                        aliases[a.asname or a.name] = "google.genai.errors"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith(("httpx", "aiohttp", "google.auth")):
                        aliases[(a.asname or a.name).split(".")[0]] = a.name
            elif isinstance(node, ast.ExceptHandler) and node.type is not None:
                names = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
                if names & set(aliases) or any(m in ast.unparse(node.type) for m in ("genai", "httpx", "aiohttp")):
                    offenders.append(f"{mod}: except {ast.unparse(node.type)}")
        offenders += [f"{mod}: imports {m} ({n})" for n, m in aliases.items() if "errors" in m or "httpx" in m
                      or "aiohttp" in m or "google.auth" in m]
    assert not offenders, "\n".join(offenders)


def test_importing_the_emulator_leaves_the_sdk_out_and_the_plugin_is_cheap() -> None:
    code = (
        "import sys, time, pytest\n"
        # CPU time, not wall time: the suite shares two cores with other processes.
        "t = time.process_time(); import flashlane.pytest_plugin; dt = time.process_time() - t\n"
        "import flashlane.emulator\n"
        "print('google.genai' in sys.modules, dt)\n"
    )
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
            for _ in range(3)]
    assert all(r[0] == "False" for r in runs), runs
    assert min(float(r[1]) for r in runs) < 0.1, runs


# What a package's own imports put in its namespace, not its API: ``from __future__ import
# annotations`` and the ``typing`` names its lazy imports need.
_IMPORT_MACHINERY = {"annotations": __future__.annotations, "TYPE_CHECKING": typing.TYPE_CHECKING}


def surface_problems(module: types.ModuleType) -> list[str]:
    """How ``module``'s namespace (``vars``) disagrees with its ``__all__``, once every lazy name
    (``_LAZY``, PEP 562) is loaded: a public name missing from ``__all__``, or an ``__all__``
    name that does not resolve. Submodules are attributes of their package, not exports."""
    problems = []
    for name in getattr(module, "_LAZY", {}):
        try:
            getattr(module, name)
        except (AttributeError, ImportError) as e:
            problems.append(f"lazy name {name!r} does not load: {e}")
    namespace = vars(module)
    exported = set(module.__all__)
    problems += [f"{name!r} is in __all__ but not defined" for name in sorted(exported - set(namespace))]
    for name, value in sorted(namespace.items()):
        if name.startswith("_") or name in exported or not name.isidentifier():
            continue  # (pytest's assertion rewriting adds "@py_builtins" to the modules it rewrites)
        if isinstance(value, types.ModuleType) and value.__name__.startswith(module.__name__ + "."):
            continue
        if name in _IMPORT_MACHINERY and value is _IMPORT_MACHINERY[name]:
            continue
        problems.append(f"public name {name!r} is not in __all__")
    return problems


@pytest.mark.parametrize("package", ["flashlane", "flashlane.emulator"])
def test_all_is_the_public_surface(package: str) -> None:
    module = importlib.import_module(package)
    assert surface_problems(module) == []
    assert flashlane.__version__
    assert (SRC / "py.typed").is_file()


def _fake(source: str, lazy_from: str = "json") -> types.ModuleType:
    """A package built like flashlane's façade: eager names, PEP 562 lazy ones and ``__all__``."""
    from flashlane.emulator.lazy import lazy_attributes

    module = types.ModuleType("fakepkg")
    exec(source, vars(module))  # noqa: S102 - the test's own source
    table = vars(module).get("_LAZY", {})
    module.__getattr__ = lazy_attributes(lazy_from, table, vars(module))  # type: ignore[method-assign]
    return module


def test_the_public_surface_check_fails_when_all_and_the_namespace_disagree() -> None:
    head = "from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
    good = _fake(head + '_LAZY = {"JSONDecoder": "decoder"}\nbase = 1\n__all__ = ["base", "JSONDecoder"]\n',
                 lazy_from="json")
    assert surface_problems(good) == []
    assert surface_problems(_fake(head + "base = 1\nextra = 2\n__all__ = ['base']\n")) == [
        "public name 'extra' is not in __all__"]
    assert surface_problems(_fake(head + "base = 1\n__all__ = ['base', 'gone']\n")) == [
        "'gone' is in __all__ but not defined"]
    lazy_not_exported = _fake(head + '_LAZY = {"JSONDecoder": "decoder"}\n__all__ = []\n', lazy_from="json")
    assert surface_problems(lazy_not_exported) == ["public name 'JSONDecoder' is not in __all__"]
    broken = surface_problems(_fake(head + '_LAZY = {"nothing": "decoder"}\n__all__ = ["nothing"]\n'))
    assert broken[0].startswith("lazy name 'nothing' does not load") and len(broken) == 2
    assert surface_problems(_fake("import os\n__all__ = []\n")) == ["public name 'os' is not in __all__"]
