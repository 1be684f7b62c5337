"""The package's metadata tells the truth: one version, and the Python it really needs."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import tomllib
from pathlib import Path

import pytest

import flashlane
from tests.conftest import cli

SRC = Path(flashlane.__file__).parent
ROOT = SRC.parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# hatchling's default pattern for [tool.hatch.version] path (hatchling.version.source.regex)
HATCH_VERSION_PATTERN = r"(?i)^(__version__|VERSION) *= *([\'\"])v?(?P<version>.+?)\2"


def test_one_version_source() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]  # the wheel takes it from the code
    source = ROOT / PYPROJECT["tool"]["hatch"]["version"]["path"]
    assert source == SRC / "__init__.py"
    found = re.search(HATCH_VERSION_PATTERN, source.read_text(encoding="utf-8"), re.MULTILINE)
    assert found is not None and found["version"] == flashlane.__version__ == "0.2.0"


def test_flashlane_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"flashlane, version {flashlane.__version__}"


def test_installed_metadata_agrees_when_installed_from_this_tree() -> None:
    dist = importlib.metadata.distribution("flashlane")
    url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    if url != ROOT.resolve().as_uri():
        pytest.skip(f"the installed flashlane is not this tree ({url or 'from an index'}): its version is its own")
    assert dist.version == flashlane.__version__, "stale install: run `pip install -e .` again"


def test_requires_python_is_what_the_code_needs() -> None:
    minimum = PYPROJECT["project"]["requires-python"]
    assert minimum == ">=3.11"  # tomllib (config, tasks, gateway tokens), asyncio.timeout (gateway)
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py311"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == "3.11"
    newer = []
    for path in sorted(SRC.rglob("*.py")):  # no syntax newer than 3.11 (type aliases, PEP 695 generics, ...)
        try:
            ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 11))
        except SyntaxError as e:
            newer.append(f"{path.relative_to(ROOT)}:{e.lineno}: {e.msg}")
    assert not newer, "\n".join(newer)
