"""flashlane eval against the graded emulator scenario (issue 24, Must show): the scenario answers
from a truth file, wrong on exactly round(rate x rows) rows for each (model, thinking, pack size),
so every configuration's true accuracy is known before the eval runs; the eval must report it,
cover it with its interval, recommend what those rates imply, and send each distinct request once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from flashlane.eval import evaluate, load_eval

from .conftest import control, finished_items, quiet_total, scenario, subprocess_env, wait_for, write_csv

LABELS = ["positive", "negative", "neutral"]
N = 300
BASE, MINIMAL_EXTRA, PER_PACK_ITEM = 0.02, 0.08, 0.004  # error rates of the scenario (synthetic)
PACKS, THINKING, TIERS = [None, 5, 10], ["minimal", "low"], ["standard", "flex"]


def labelled() -> list[dict[str, Any]]:
    return [{"id": f"r{i:03d}", "text": f"Review {i:03d}: the bag number {i} arrived on day {i % 7}.",
             "label": LABELS[i % 3]} for i in range(N)]


def true_accuracy(thinking: str, pack: int) -> float:
    rate = BASE + (MINIMAL_EXTRA if thinking == "minimal" else 0.0) + PER_PACK_ITEM * (pack - 1)
    return 1 - round(rate * N) / N  # the scenario answers exactly round(rate x rows) rows wrong


def _wire(data: dict[str, Any], key: str) -> Any:
    """A field of a logged request body, as the SDK spelled it (camelCase or snake_case)."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in key)
    return data.get(key, data.get(snake, ""))


def _level(entry: dict[str, Any]) -> str:
    return str(_wire(_wire(entry["generation_config"], "thinkingConfig") or {}, "thinkingLevel")).lower()


def graded_rule(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"graded": {"rows": [{"text": r["text"], "label": r["label"]} for r in rows], "fields": ["label"],
                       "error_rate": BASE, "thinking": {"minimal": MINIMAL_EXTRA}, "per_pack_item": PER_PACK_ITEM}}


@pytest.mark.timeout(600)  # 1,080 requests and 12 configurations scored with 1,000 resamples each
def test_the_eval_reports_the_scenarios_rates_and_recommends_what_they_imply(lane: Any, emu: Any,
                                                                             tmp_path: Path) -> None:
    rows = labelled()
    scenario(emu.base_url, graded_rule(rows))
    r = evaluate(lane._client, "classify", rows, truth="label", labels=",".join(LABELS), pack=PACKS,
                 thinking=THINKING, service_tier=TIERS, eval_dir=tmp_path / "ev", resamples=1000)
    assert len(r.configs) == 12 and r.n_items == N
    by_name = {c["name"]: c for c in r.configs}
    for c in r.configs:
        cfg = c["config"]
        want = true_accuracy(cfg["thinking"], cfg["pack"] or 1)
        acc = c["metrics"]["accuracy"]
        assert acc["value"] == pytest.approx(want), c["name"]  # the whole truth file: exact
        assert acc["ci"][0] <= want <= acc["ci"][1], c["name"]
        assert c["rates"]["failed"] == 0 and c["items"]["ok"] == N
    # The tiers share their requests: flex is the standard configuration's answers at half the price.
    for c in r.configs:
        if c["config"]["service_tier"] == "flex":
            std = by_name[c["name"].replace("tier=flex", "tier=standard")]
            assert c["requests"] == 0 and c["shared_items"] == N and c["spent_usd"] == 0
            assert c["metrics"]["accuracy"]["value"] == std["metrics"]["accuracy"]["value"]
            assert c["cost_per_1000_items_usd"] == pytest.approx(std["cost_per_1000_items_usd"] / 2, rel=1e-4)
    # What the rates imply: the best is low thinking, one item per request (98.0 %). Minimal thinking
    # (90.0 %) and packs of 10 (94.3 %) are significantly below it at n=300; packs of 5 (96.3 %) are not,
    # and cost less than single requests; flex halves the price. So: low thinking, pack 5, flex.
    assert true_accuracy("low", 1) == max(true_accuracy(t, p or 1) for t in THINKING for p in PACKS)
    assert r.best is not None and r.best["name"] == "gemini-3.1-flash-lite thinking=low pack=5 examples=all tier=flex"
    assert by_name["gemini-3.1-flash-lite thinking=low pack=10 examples=all tier=flex"]["metrics"]["accuracy"]["ci"][1] \
        < true_accuracy("low", 1)
    costs = [by_name[f"gemini-3.1-flash-lite thinking=low pack={p or 1} examples=all tier=flex"]
             ["cost_per_1000_items_usd"] for p in PACKS]
    assert costs[0] > costs[1] > costs[2]  # packing shares the prompt: cheaper per item
    # Each distinct request was sent once across the whole grid: 6 request sets (3 packs x 2 levels).
    assert emu.stats()["requests_total"] == 2 * (N + N // 5 + N // 10)
    sent = [e for e in control(emu.base_url, "/_emulator/requests")["requests"] if "enerateContent" in e["method"]]
    assert len(sent) == emu.stats()["requests_total"]
    keys = Counter(json.dumps([e["model"], e["system"], e["contents"], e["generation_config"]], sort_keys=True)
                   for e in sent)
    assert max(keys.values()) == 1
    # The folder alone gives the same table (flashlane report DIR).
    again = load_eval(tmp_path / "ev")
    assert [c["name"] for c in again.configs] == [c["name"] for c in r.configs]
    assert again.best is not None and again.best["name"] == r.best["name"]


@pytest.mark.timeout(600)
def test_an_eval_killed_by_sigkill_resumes_without_asking_finished_items_again(emu: Any, tmp_path: Path) -> None:
    rows = labelled()[:120]
    src = write_csv(tmp_path / "labelled.csv", rows)
    folder = tmp_path / "ev"
    rule = graded_rule(rows)
    rule["delay"] = 0.05  # slow enough to be killed in the middle of the second configuration
    scenario(emu.base_url, rule)
    cmd = [sys.executable, "-m", "flashlane", "eval", "classify", str(src), "--truth", "label",
           "--labels", ",".join(LABELS), "--thinking", "minimal,low", "--eval-dir", str(folder), "--concurrency", "4"]
    env = subprocess_env(emu.base_url)
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second_db = folder / "config-001.flashlane.db"
    wait_for(lambda: len(finished_items(second_db)) >= 20 or first.poll() is not None, timeout=240)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    assert first.returncode == -signal.SIGKILL, "the eval finished before it could be killed"
    done = {"minimal": finished_items(folder / "config-000.flashlane.db"), "low": finished_items(second_db)}
    assert len(done["minimal"]) == len(rows) and 0 < len(done["low"]) < len(rows)
    before = quiet_total(emu.base_url)  # the killed eval's requests in flight are logged late under load

    again = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    log = control(emu.base_url, "/_emulator/requests")["requests"][before:]
    by_text = {r["text"]: r["id"] for r in rows}
    for e in log:
        level = _level(e)
        ids = {i for t, i in by_text.items() if t in e["prompt"]}
        assert not ids & done[level], f"finished items asked again at thinking={level}: {sorted(ids & done[level])}"
    assert len(log) == len(rows) - len(done["low"])  # exactly the unfinished ones (none was in flight twice)
    report = json.loads(again.stdout)
    for c in report["configs"]:
        want = true_accuracy(c["config"]["thinking"], 1)
        assert c["items"]["ok"] == len(rows) and c["metrics"]["accuracy"]["ci"][0] <= want + 0.1
    shown = subprocess.run([sys.executable, "-m", "flashlane", "report", str(folder)], env=env, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "thinking=minimal" in shown.stdout and "thinking=low" in shown.stdout and "recommended:" in shown.stdout


@pytest.mark.timeout(600)
def test_the_chosen_configuration_as_a_task_file_that_flashlane_run_takes(emu: Any, tmp_path: Path) -> None:
    rows = labelled()
    src = write_csv(tmp_path / "labelled.csv", rows)
    scenario(emu.base_url, graded_rule(rows))
    env = subprocess_env(emu.base_url)
    chosen = tmp_path / "chosen.yaml"
    out = subprocess.run([sys.executable, "-m", "flashlane", "eval", "classify", str(src), "--truth", "label",
                          "--labels", ",".join(LABELS), "--thinking", "low", "--pack", "1,5",
                          "--service-tier", "standard,flex", "--write-task", str(chosen), "--eval-dir",
                          str(tmp_path / "ev")], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "> gemini-3.1-flash-lite thinking=low pack=5 examples=all tier=flex" in out.stdout.replace(">*", "> ")
    data = yaml.safe_load(chosen.read_text())
    assert data["task"] == "classify" and data["defaults"] == {"labels": ",".join(LABELS)}
    assert data["thinking"] == "low"
    assert data["run"] == {"model": "gemini-3.1-flash-lite", "service_tier": "flex", "pack": 5}
    # flashlane run takes the file as it is: packs of 5, low thinking, on flex
    inp = write_csv(tmp_path / "new.csv", [{"text": r["text"]} for r in rows[:20]])
    before = emu.stats()["requests_total"]
    run = subprocess.run([sys.executable, "-m", "flashlane", "run", str(chosen), str(inp), "-o",
                          str(tmp_path / "new.jsonl"), "--no-cache"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    log = control(emu.base_url, "/_emulator/requests")["requests"][before:]
    assert len(log) == 4  # 20 rows in packs of 5
    assert all(_level(e) == "low" for e in log)
    shown = subprocess.run([sys.executable, "-m", "flashlane", "report", str(tmp_path / "new.jsonl"), "--json"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(shown.stdout)["requests_by_tier"] == {"flex": 4}
    # a flag on the command line still wins
    run = subprocess.run([sys.executable, "-m", "flashlane", "run", str(chosen), str(inp), "-o",
                          str(tmp_path / "new1.jsonl"), "--no-cache", "--pack", "1"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert emu.stats()["requests_total"] == before + 4 + 20
