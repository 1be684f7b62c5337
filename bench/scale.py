"""Memory and speed of ``flashlane run`` and ``lane.map`` as rows grow: 10K, 100K, 1M short rows.

    python bench/scale.py [--sizes 10000,100000,1000000] [--map-sizes 10000,100000] [--no-resume]

Each size runs the real CLI as a child process (``flashlane run classify in.csv --column text
--pack auto --no-cache --limits off --quiet``) against an emulator process with no quota and
no latency (``flashlane emulator --latency-scale 0``, RPM/TPM/RPD unlimited). Peak RSS is the
run process's own high-water mark (``os.wait4`` rusage), not the emulator's. Emulator CPU
seconds are shown too: at packed rates the emulator, on the same two cores, can be what
bounds rows/s. Then the finished largest run is started again: resuming a run with nothing
left to do should take seconds.

``lane.map`` runs in a child process too (``MAP_SCRIPT``): the same rows from a generator,
``pack="auto"``, the response cache off, every ``ItemResult`` read back in order.

Goals (issue 9): peak RSS at 1M <= 300 MB and <= 1.5x the 10K figure; rows/s at 1M >= 0.8x
the 10K rate; resume of a finished 1M run <= 10 s. Issue 19: ``lane.map`` at 100K peaks within
1.5x its 10K figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _emu import table  # noqa: E402

LABELS = "positive,negative,neutral"
PHRASES = ["works great", "broke after a week", "fast shipping", "too loud", "good value", "meh", "love the color",
           "battery died", "easy setup", "would not buy again", "solid build", "okay for the price"]
RSS_GOAL_MB = 300
RSS_RATIO_GOAL = 1.5
RATE_RATIO_GOAL = 0.8
RESUME_GOAL_S = 10.0


MAP_SCRIPT = """
import sys
import flashlane as fl
n = int(sys.argv[1])
phrases = {phrases!r}
texts = (f"{{phrases[i % len(phrases)]}} (#{{i}})" for i in range(n))
with fl.Lane(limits="off", cache=False) as lane:
    res = lane.map("classify", texts, labels=["positive", "negative", "neutral"], pack="auto")
    ok = sum(1 for r in res if r.ok)
assert len(res) == n and ok == n, (len(res), ok)
"""


def make_input(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("id,text\n")
        for i in range(n):
            f.write(f"R{i:07d},{PHRASES[i % len(PHRASES)].capitalize()} and {PHRASES[(i * 7) % len(PHRASES)]} "
                    f"(#{i})\n")


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "flashlane", "emulator", "--port", "0", "--latency-scale", "0",
                             "--rpm", "0", "--tpm", "0", "--rpd", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        raise RuntimeError(f"emulator did not start: {url!r}")
    return proc, url


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MB, exit code, stderr tail) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return wall, usage.ru_maxrss / 1024, proc.returncode, err[-2000:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--map-sizes", default="10000,100000", help="lane.map sizes ('' to skip)")
    ap.add_argument("--no-resume", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    map_sizes = [int(s) for s in args.map_sizes.split(",") if s]
    map_results: dict[int, tuple[float, float]] = {}
    rows: list[list[object]] = []
    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="flashlane-scale-") as tmp:
        d = Path(tmp)
        emu, url = start_emulator()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASHLANE_", "GEMINI_", "GOOGLE_"))}
        env.update({"GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "bench", "FLASHLANE_STATE_DIR": str(d / "state")})
        try:
            last_cmd: list[str] = []
            for n in sizes:
                src = d / f"in{n}.csv"
                make_input(src, n)
                out = d / f"out{n}.jsonl"
                last_cmd = [sys.executable, "-m", "flashlane", "run", "classify", str(src), "--column", "text",
                            "--labels", LABELS, "-o", str(out), "--pack", "auto", "--no-cache", "--limits", "off",
                            "--quiet"]
                emu_cpu0 = cpu_s(emu.pid)
                wall, rss, code, err = run(last_cmd, env)
                emu_cpu = cpu_s(emu.pid) - emu_cpu0
                if code != 0:
                    raise SystemExit(f"run of {n} rows failed ({code}):\n{err}")
                lines = sum(1 for _ in out.open("rb"))
                assert lines == n, (lines, n)
                results[n] = (n / wall, rss)
                rows.append([f"{n:,}", f"{wall:.1f}", f"{n / wall:,.0f}", f"{rss:.0f}", f"{emu_cpu:.1f}",
                             f"{emu_cpu / wall:.0%}"])
                print(f"{n:,} rows: {wall:.1f} s, {n / wall:,.0f} rows/s, peak RSS {rss:.0f} MB", flush=True)
            script = MAP_SCRIPT.format(phrases=PHRASES)
            for n in map_sizes:
                wall, rss, code, err = run([sys.executable, "-c", script, str(n)], env)
                if code != 0:
                    raise SystemExit(f"lane.map of {n} items failed ({code}):\n{err}")
                map_results[n] = (n / wall, rss)
                rows.append([f"lane.map {n:,}", f"{wall:.1f}", f"{n / wall:,.0f}", f"{rss:.0f}", "-", "-"])
                print(f"lane.map {n:,} items: {wall:.1f} s, {n / wall:,.0f} items/s, peak RSS {rss:.0f} MB", flush=True)
            resume_s: float | None = None
            if not args.no_resume and last_cmd:
                resume_s, rss, code, err = run(last_cmd, env)
                if code != 0:
                    raise SystemExit(f"resume failed ({code}):\n{err}")
                rows.append([f"resume {sizes[-1]:,} (done)", f"{resume_s:.1f}", "-", f"{rss:.0f}", "-", "-"])
                print(f"resume of the finished {sizes[-1]:,}-row run: {resume_s:.1f} s, peak RSS {rss:.0f} MB",
                      flush=True)
        finally:
            emu.terminate()
            try:
                emu.wait(60)  # an emulator that served 100,000 requests takes a while to shut down
            except subprocess.TimeoutExpired:
                emu.kill()
                emu.wait(10)
    print()
    print(table(["rows", "wall s", "rows/s", "peak RSS MB", "emulator CPU s", "emulator busy"], rows))
    if len(map_results) > 1:
        lo, hi = min(map_results), max(map_results)
        print(f"lane.map peak RSS {hi:,} items: {map_results[hi][1]:.0f} MB, {map_results[hi][1] / map_results[lo][1]:.2f}x "
              f"the {lo:,}-item figure (goal <= {RSS_RATIO_GOAL})")
    if not results:
        return
    small, big = min(results), max(results)
    rate_ratio = results[big][0] / results[small][0]
    rss_ratio = results[big][1] / results[small][1]
    print()
    print(f"peak RSS {big:,} rows: {results[big][1]:.0f} MB (goal <= {RSS_GOAL_MB}); "
          f"{rss_ratio:.2f}x the {small:,}-row figure (goal <= {RSS_RATIO_GOAL})")
    print(f"rows/s {big:,} rows: {rate_ratio:.2f}x the {small:,}-row rate (goal >= {RATE_RATIO_GOAL})")
    if resume_s is not None:
        print(f"resume of the finished {big:,}-row run: {resume_s:.1f} s (goal <= {RESUME_GOAL_S:.0f})")


if __name__ == "__main__":
    main()
