"""Documents in bulk (issue 22): 1,000 one-page PDFs through ``flashlane run extract``, four ways.

    python bench/documents.py [--docs 1000] [--big-docs 100] [--big-kb 1024]

Arms, each the real CLI as a child process against an emulator process (no latency, no quota):

- inline: one document per request, sent as an ``inlineData`` part;
- uploaded: every file through the Files API, uploaded once and referenced by ``fileData``
  (``FLASHLANE_INLINE_MAX_BYTES`` set below one document, so the per-request decision of
  call/request.by_reference uploads each);
- packed: ``--pack 10``, ten documents (at most ``MAX_PACK_FILES``) in one request;
- batch: ``--service-tier batch``, the documents inline in a Batch API job (half price).

Per arm: requests, input and output tokens, cost per 1,000 documents (the run's report), wall
time, and peak RSS (the run process's own high-water mark, ``os.wait4`` rusage). Memory must not
grow with file count or file size (files are streamed and read again per request, never held):
the inline arm runs again over a quarter of the documents, and over ``--big-docs`` documents of
``--big-kb`` KB each (a one-page PDF padded with an attachment), and the peaks are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _emu import emulator_process, table  # noqa: E402

SCHEMA = {"type": "object", "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
          "required": ["vendor", "total"]}
PACK = 10
RSS_GROWTH_GOAL = 1.5  # peak RSS over many or large files within 1.5x the small run's


def make_docs(folder: Path, n: int, pad_bytes: int = 0) -> None:
    from pypdf import PdfWriter

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        w = PdfWriter()
        w.add_blank_page(500 + i % 400, 700 + i // 400)  # distinct documents: no two rows the same
        if pad_bytes:
            w.add_attachment("scan.bin", os.urandom(pad_bytes))
        w.add_metadata({"/Title": f"Invoice {i:05d}"})
        w.write(folder / f"inv{i:05d}.pdf")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MB, exit code, stderr tail) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, proc.returncode, err[-1500:]


UPLOAD_ALL_BYTES = 1024  # FLASHLANE_INLINE_MAX_BYTES below any document: every file uploaded


def arm(name: str, docs: Path, work: Path, env: dict[str, str], *extra: str) -> dict[str, object]:
    """One run of the CLI and its report's figures."""
    out = work / f"{name}.jsonl"
    cmd = [sys.executable, "-m", "flashlane", "run", "extract", str(docs), "--schema", str(work / "schema.json"),
           "-o", str(out), "--no-cache", "--quiet", *extra]
    wall, rss, code, err = run(cmd, env)
    if code != 0:
        return {"arm": name, "error": f"exit {code}: {err.strip().splitlines()[-1] if err.strip() else ''}"}
    rep = json.loads(subprocess.run([sys.executable, "-m", "flashlane", "report", str(out), "--json"], env=env,
                                    capture_output=True, text=True, check=True).stdout)
    items = rep["items"]["total"]
    cost = rep["cost_usd"] or 0.0
    return {"arm": name, "docs": items, "requests": rep["requests"], "input": rep["tokens"]["input"],
            "output": rep["tokens"]["output"] + rep["tokens"]["thinking"], "usd_per_1k": cost / items * 1000,
            "wall": wall, "rss": rss}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--big-docs", type=int, default=100)
    ap.add_argument("--big-kb", type=int, default=1024)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="flashlane-docs-") as tmp:
        work = Path(tmp)
        (work / "schema.json").write_text(json.dumps(SCHEMA))
        t0 = time.perf_counter()
        make_docs(work / "docs", args.docs)
        make_docs(work / "few", max(1, args.docs // 4))
        make_docs(work / "big", args.big_docs, args.big_kb * 1024)
        print(f"made {args.docs:,} + {args.docs // 4:,} one-page PDFs and {args.big_docs} of {args.big_kb} KB "
              f"in {time.perf_counter() - t0:.1f} s", flush=True)
        with emulator_process("--latency-scale", "0", "--rpm", "0", "--tpm", "0", "--rpd", "0") as url:
            env = {**os.environ, "GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "bench", "FLASHLANE_LIMITS": "off",
                   "FLASHLANE_STATE_DIR": str(work / "state")}
            rows = [arm("inline", work / "docs", work, env)]
            print(rows[-1], flush=True)
            rows.append(arm("uploaded", work / "docs", work, {**env, "FLASHLANE_INLINE_MAX_BYTES": str(UPLOAD_ALL_BYTES)}))
            print(rows[-1], flush=True)
            rows.append(arm("packed", work / "docs", work, env, "--pack", str(PACK)))
            print(rows[-1], flush=True)
            rows.append(arm("batch", work / "docs", work, env, "--service-tier", "batch"))
            print(rows[-1], flush=True)
            few = arm("inline-quarter", work / "few", work, env)
            big = arm("inline-big", work / "big", work, env)
    headers = ["arm", "docs", "requests", "input tok", "output tok", "$ / 1,000 docs", "wall s", "peak RSS MB"]

    def line(r: dict[str, object]) -> list[object]:
        if "error" in r:
            return [r["arm"], "-", "-", "-", "-", "-", "-", str(r["error"])]
        return [r["arm"], f"{r['docs']:,}", f"{r['requests']:,}", f"{r['input']:,}", f"{r['output']:,}",
                f"{r['usd_per_1k']:.4f}", f"{r['wall']:.1f}", f"{r['rss']:.0f}"]

    print()
    print(table(headers, [line(r) for r in [*rows, few, big]]))
    if all("rss" in r for r in (rows[0], few, big)):
        base = float(few["rss"])  # type: ignore[arg-type]
        print(f"\npeak RSS: {args.docs:,} docs {rows[0]['rss']:.0f} MB vs {args.docs // 4:,} docs {base:.0f} MB "
              f"(x{float(rows[0]['rss']) / base:.2f}); {args.big_docs} docs of {args.big_kb} KB "  # type: ignore[arg-type]
              f"{big['rss']:.0f} MB (x{float(big['rss']) / base:.2f}); goal <= x{RSS_GROWTH_GOAL}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
