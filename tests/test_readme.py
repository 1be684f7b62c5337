"""Every fenced command block in README.md, examples/README.md and every page of the docs (docs/*.md,
in the order of ``nav`` in mkdocs.yml) runs as written, so an example cannot break unnoticed.

Which blocks run
    ```bash, ```sh and ```console blocks (for console, the lines starting with "$ "), and every
    ```python block. Other fences (yaml, toml, text, an unlabelled synopsis) are data, not commands.

How they run
    Blocks run in order (README.md, examples/README.md, then the docs pages in nav order, each page's
    blocks in page order), in one scratch copy of the repository (so a block can use what an
    earlier one wrote, as a reader following along would, and nothing lands in the real tree), as
    separate processes with a clean environment (no real keys) that points at an emulator process
    the test starts: ``flashlane emulator --port <free>`` with ``GOOGLE_GEMINI_BASE_URL`` and
    ``GEMINI_API_KEY`` set. Blocks that pass ``--emulator`` or ``fl.Lane(emulator=True)`` use their
    own in-process emulator, as the README says. bash blocks run with ``bash -e -o pipefail``; a
    python block runs with ``python``, or with ``python -m pytest`` when it defines ``test_*``
    functions (it is then a test file, run in a directory of its own like a user's project). A block
    passes when it exits 0. After every block, ``examples/`` must be unchanged: outputs belong in
    ``out/``.

Markers (an HTML comment on the line just before the fence; invisible on GitHub, visible in the
source). Without a marker a block runs as above. An unknown marker is an error.

    <!-- readme-test: server -->
        The block is one command that starts a long-running server (``flashlane emulator``,
        ``flashlane gateway``). The test starts it on a free port in place of its ``--port P``,
        checks that it answers HTTP, and keeps it until the last block; later blocks that say
        ``:P`` (e.g. ``http://127.0.0.1:P``) talk to it, with P rewritten to the free port.
    <!-- readme-test: install -->
        The block installs flashlane (``python3 -m venv``, ``. .venv/bin/activate``,
        ``pip install``) and then uses it. The test checks every extra named in ``pip install``
        exists in pyproject.toml, drops the install steps (flashlane is already installed where
        the test runs) and runs the rest as written.
    <!-- readme-test: ci -->
        The block is the test command itself (``./scripts/test``): the test checks that ``.ci/run``
        runs exactly this command rather than running the suite from inside the suite.
    <!-- readme-test: skip: REASON -->
        Not run; reported as a skip with REASON. Use only when none of the above fits.

The blocks run in order in one scratch copy (a later block uses what an earlier one wrote), so
under pytest-xdist this file must stay on one worker: scripts/test runs with ``--dist loadfile``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MKDOCS_YML = ROOT / "mkdocs.yml"


def docs_pages() -> list[Path]:
    """The docs pages in the order of mkdocs.yml's nav (the order a reader follows the site)."""
    import yaml

    def walk(node: object) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for x in node:
                yield from walk(x)
        elif isinstance(node, dict):
            for x in node.values():
                yield from walk(x)

    nav = yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8")).get("nav", [])
    return [ROOT / "docs" / page for page in walk(nav) if page.endswith(".md")]


READMES = (ROOT / "README.md", ROOT / "examples" / "README.md", *docs_pages())  # run in this order
RUNNABLE = {"bash", "sh", "console", "python"}
MODES = {"run", "server", "install", "ci", "skip"}
BLOCK_TIMEOUT_S = 180
SERVER_START_TIMEOUT_S = 30
_FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*readme-test:\s*([a-z-]+)\s*(?::\s*(.*?))?\s*-->\s*$")
_INSTALL_STEP = re.compile(r"^\s*(python3?\s+-m\s+venv\b|\.\s+\S*\.venv/bin/activate\b|source\s+\S*\.venv/bin/activate\b"
                           r"|(python3?\s+-m\s+)?pip3?\s+install\b)")
_PORT_OPTION = re.compile(r"--port[ =](\d+)")
_IGNORED_IN_COPY = {".git", ".venv", "out", "site", "node_modules", "__pycache__", ".pytest_cache", ".mypy_cache",
                    ".ruff_cache", ".node"}


@dataclass
class Block:
    source: str
    line: int
    lang: str
    code: str
    mode: str = "run"
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.source}:{self.line} ```{self.lang} ({self.mode})"


def parse_blocks(text: str, source: str = "README.md") -> list[Block]:
    blocks: list[Block] = []
    for m in _FENCE.finditer(text):
        lang = m.group(1).lower()
        if lang not in RUNNABLE:
            continue
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        mode, reason = ("run", "")
        if marker:
            mode, reason = marker.group(1), (marker.group(2) or "")
        elif "readme-test" in before:
            raise ValueError(f"{source}:{line - 1}: malformed readme-test marker {before!r}")
        if mode not in MODES:
            raise ValueError(f"{source}:{line - 1}: unknown readme-test marker {mode!r}; known: {sorted(MODES)}")
        if mode == "skip" and not reason:
            raise ValueError(f"{source}:{line - 1}: 'readme-test: skip' needs a reason ('skip: why')")
        blocks.append(Block(source, line, lang, m.group(2), mode, reason))
    return blocks


BLOCKS = [b for path in READMES for b in parse_blocks(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]


# ---------------------------------------------------------------- the environment the blocks run in

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(args: list[str], ws_root: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A server process whose output goes to a file (a pipe nobody reads would fill and stall it)."""
    with log.open("wb") as out:
        return subprocess.Popen(args, cwd=ws_root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_until_answering(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = log.read_text(errors="replace") if log.exists() else ""
            raise AssertionError(f"{what} exited with {proc.returncode} before answering:\n{out[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer (404 included) means it is serving
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{what} did not answer on port {port} within {SERVER_START_TIMEOUT_S} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def tree_state(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.is_file()}


@dataclass
class Workspace:
    """One scratch copy of the repo, the environment for the blocks, and the servers they started."""

    root: Path
    env: dict[str, str]
    ports: dict[str, str] = field(default_factory=dict)  # port as written in the README -> the real one
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def rewrite(self, code: str) -> str:
        for written, real in self.ports.items():
            code = re.sub(rf"(?<=[:=\s]){written}\b", real, code)
        return code

    def run(self, args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, cwd=cwd or self.root, env=self.env, capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT_S, start_new_session=True)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    root = tmp_path_factory.mktemp("readme") / "flashlane"
    shutil.copytree(ROOT, root, ignore=lambda _d, names: [n for n in names if n in _IGNORED_IN_COPY])
    home = tmp_path_factory.mktemp("readme-home")
    bindir = str(Path(sys.executable).parent)  # `flashlane` and `python` as installed for the tests
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "FLASHLANE_"))}
    env.update(PATH=bindir + os.pathsep + env.get("PATH", ""), HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_STATE_HOME=str(home / ".state"), XDG_CACHE_HOME=str(home / ".cache"), PYTHONUNBUFFERED="1",
               COLUMNS="100")
    port = free_port()
    log = home / "emulator.log"
    emulator = start_server([str(Path(bindir) / "flashlane"), "emulator", "--port", str(port), "--latency-scale", "0"],
                            root, env, log)
    ws = Workspace(root, env, servers=[emulator])
    try:
        wait_until_answering(port, emulator, "the test's emulator", log)
        env.update(GOOGLE_GEMINI_BASE_URL=f"http://127.0.0.1:{port}", GEMINI_API_KEY="readme-test-key")
        yield ws
    finally:
        for proc in ws.servers:
            stop(proc)


# ---------------------------------------------------------------- one runner per mode

def commands(block: Block) -> str:
    if block.lang != "console":
        return block.code
    return "\n".join(ln[2:] for ln in block.code.splitlines() if ln.startswith("$ "))


def unmarked_problem(block: Block) -> str | None:
    """Steps an unmarked block must not run here: installing would replace the flashlane under
    test, and ./scripts/test would run the suite from inside itself."""
    for line in commands(block).splitlines():
        for step in line.split("&&"):
            if _INSTALL_STEP.match(step):
                return f"installs ({step.strip()!r}): mark it <!-- readme-test: install -->"
            if re.match(r"\s*(\./)?scripts/test\b", step):
                return "runs the test suite: mark it <!-- readme-test: ci -->"
    return None


def run_shell(ws: Workspace, block: Block, script: str) -> None:
    p = ws.run(["bash", "-e", "-o", "pipefail", "-c", ws.rewrite(script)])
    assert p.returncode == 0, f"{block.name} exited {p.returncode}\n--- script\n{script}\n--- stdout\n" \
                              f"{p.stdout[-3000:]}\n--- stderr\n{p.stderr[-3000:]}"


def run_python(ws: Workspace, block: Block, tmp_path: Path) -> None:
    code = ws.rewrite(block.code)
    if re.search(r"^def test_\w+\(", code, re.M):  # a pytest file: run it as a user's project would
        (tmp_path / "test_readme_block.py").write_text(code, encoding="utf-8")
        p = ws.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_block.py"],
                   cwd=tmp_path)
        assert " passed" in p.stdout, f"{block.name}: no test ran\n{p.stdout[-2000:]}"
    else:
        script = tmp_path / "readme_block.py"
        script.write_text(code, encoding="utf-8")
        p = ws.run([sys.executable, str(script)])
    assert p.returncode == 0, f"{block.name} exited {p.returncode}\n--- stdout\n{p.stdout[-3000:]}\n" \
                              f"--- stderr\n{p.stderr[-3000:]}"


def run_server(ws: Workspace, block: Block) -> None:
    lines = [ln for ln in commands(block).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) == 1, f"{block.name}: a server block holds exactly one command"
    cmd = lines[0].rstrip().removesuffix("&").rstrip()
    written = _PORT_OPTION.search(cmd)
    assert written, f"{block.name}: a server block names its port (--port P) so the test can check it answers"
    real = str(free_port())
    ws.ports[written.group(1)] = real
    log = ws.root.parent / f"server-{block.line}.log"
    proc = start_server(["bash", "-c", "exec " + ws.rewrite(cmd)], ws.root, ws.env, log)
    ws.servers.append(proc)
    wait_until_answering(int(real), proc, block.name, log)


def run_install(ws: Workspace, block: Block) -> None:
    extras = {name for name in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
              .get("optional-dependencies", {})}
    kept: list[str] = []
    dropped = 0
    for line in commands(block).splitlines():
        steps = [s.strip() for s in line.split("&&")]
        for step in steps:
            for named in re.findall(r"\.\[([\w,\s-]+)\]", step):
                missing = {x.strip() for x in named.split(",")} - extras
                assert not missing, f"{block.name}: pip install names extras {sorted(missing)} not in pyproject.toml"
        rest = [s for s in steps if s and not _INSTALL_STEP.match(s)]
        dropped += len([s for s in steps if s]) - len(rest)
        if rest:
            kept.append(" && ".join(rest))
    assert dropped, f"{block.name}: marked 'install' but has no install step"
    if kept:
        run_shell(ws, block, "\n".join(kept))


def check_ci(block: Block) -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for cmd in (ln.strip() for ln in commands(block).splitlines() if ln.strip()):
        assert cmd in (ln.strip() for ln in ci), f"{block.name}: .ci/run does not run {cmd!r}"
    # What CI needs beyond the command must come with the command, so a user's green run skips
    # nothing CI runs: the command installs redis-server itself and makes its absence a failure.
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert "install -y -qq redis-server" in script and "FLASHLANE_REQUIRE_REDIS=${FLASHLANE_REQUIRE_REDIS:-1}" in script
    assert not any("apt-get" in ln for ln in ci), ".ci/run installs something the README's command does not"


# ---------------------------------------------------------------- the tests

def test_readme_blocks_are_found_and_marked() -> None:
    langs = {b.lang for b in BLOCKS}
    assert {"bash", "python"} <= langs and len(BLOCKS) >= 6
    assert any(b.mode == "install" for b in BLOCKS) and any(b.mode == "ci" for b in BLOCKS)


def test_markers_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown readme-test marker"):
        parse_blocks("<!-- readme-test: sever -->\n```bash\nls\n```\n")
    with pytest.raises(ValueError, match="needs a reason"):
        parse_blocks("<!-- readme-test: skip -->\n```bash\nls\n```\n")
    assert [b.mode for b in parse_blocks("<!-- readme-test: server -->\n```sh\nx --port 1\n```\n```yaml\na: 1\n```\n")] \
        == ["server"]


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: f"{b.source}:{b.line}-{b.lang}-{b.mode}")
def test_readme_block_runs(block: Block, workspace: Workspace, tmp_path: Path) -> None:
    examples_before = tree_state(workspace.root / "examples")
    if block.mode == "skip":
        pytest.skip(f"{block.name}: {block.reason}")
    elif block.mode == "ci":
        check_ci(block)
    elif block.mode == "server":
        run_server(workspace, block)
    elif block.mode == "install":
        run_install(workspace, block)
    elif block.lang == "python":
        run_python(workspace, block, tmp_path)
    else:
        problem = unmarked_problem(block)
        assert problem is None, f"{block.name} {problem}"
        run_shell(workspace, block, commands(block))
    assert tree_state(workspace.root / "examples") == examples_before, \
        f"{block.name} wrote into examples/; send outputs to out/ (-o out/...)"


def test_every_docs_page_is_in_the_nav_and_runs() -> None:
    pages = docs_pages()
    assert pages, "mkdocs.yml has no nav"
    missing = [p.name for p in pages if not p.exists()]
    assert not missing, f"mkdocs.yml's nav names pages that do not exist: {missing}"
    unlisted = sorted(p.name for p in (ROOT / "docs").glob("*.md") if p not in pages)
    assert not unlisted, f"docs pages missing from mkdocs.yml's nav (their blocks would not run): {unlisted}"
    assert len(pages) == len(set(pages)), "a page is listed twice in mkdocs.yml's nav"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """The site builds with no warning (broken links between pages, a page outside the nav, a bad config)."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.skip("mkdocs is not installed: pip install -e '.[docs]' (the test extra installs it)")
    p = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(MKDOCS_YML),
                        "-d", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert p.returncode == 0, f"mkdocs build --strict failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    assert (tmp_path / "site" / "index.html").exists()
