"""The README's Python examples run as written (offline, with emulator=True)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int, gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    code = BLOCKS[index]
    namespace: dict[str, object] = {"__name__": f"readme_example_{index}"}
    exec(compile(code, f"README.md[python block {index}]", "exec"), namespace)  # noqa: S102
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value(gemini_emulator)  # a pytest example: run it with the fixture it asks for
