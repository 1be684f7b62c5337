"""flashlane eval / lane.evaluate (issue 24): a grid of configurations through the same engine as
lane.map, scored against a truth column. Scenario rules make the emulator's answers known, so the
metrics are checked against hand-computed values."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from flashlane.eval.metrics import (
    field_metrics,
    label_set,
    multilabel_metrics,
    normalise,
    translation_metrics,
)

from .conftest import run_cli, scenario, subprocess_env, write_csv

LABELS = ["positive", "negative"]


def _answer(label: str) -> dict[str, Any]:
    return {"reasoning": "scripted", "label": label, "confidence": 0.9}


def labelled() -> list[dict[str, Any]]:
    """12 rows: 8 say GOOD (answered positive by the scenario), 4 do not (answered negative).
    Truth: 6 of the GOOD rows are positive, 2 negative; the other 4 negative. So 10 of 12 right;
    positive: precision 6/8, recall 6/6; negative: precision 4/4, recall 4/6."""
    rows = [{"id": f"g{i}", "text": f"GOOD item {i}", "label": "positive" if i < 6 else "negative"} for i in range(8)]
    rows += [{"id": f"b{i}", "text": f"plain item {i}", "label": "negative"} for i in range(4)]
    return rows


def _script(emu: Any) -> None:
    scenario(emu.base_url, {"match": {"prompt_contains": "GOOD"}, "action": {"json": _answer("positive")}},
             {"action": {"json": _answer("negative")}})


def test_classification_metrics_cost_and_recommendation(lane: Any, emu: Any) -> None:
    _script(emu)
    r = lane.evaluate("classify", labelled(), truth="label", labels=LABELS, service_tier=["standard", "flex"],
                      id_column="id", resamples=200)
    assert [c["config"]["service_tier"] for c in r.configs] == ["standard", "flex"]
    for c in r.configs:
        m = c["metrics"]
        assert m["accuracy"]["value"] == pytest.approx(10 / 12)
        lo, hi = m["accuracy"]["ci"]
        assert 0 <= lo < 10 / 12 < hi <= 1
        assert m["per_label"]["positive"] == {"precision": 0.75, "recall": 1.0, "f1": pytest.approx(6 / 7),
                                              "support": 6}
        assert m["per_label"]["negative"]["precision"] == 1.0
        assert m["per_label"]["negative"]["recall"] == pytest.approx(4 / 6)
        assert m["macro_f1"]["value"] == pytest.approx((6 / 7 + 0.8) / 2)
        # rows: truth positive, negative, (failed); columns: predicted
        assert m["confusion"]["matrix"] == [[6, 0, 0], [2, 4, 0], [0, 0, 0]]
        assert c["rates"]["failed"] == 0
    std, flex = r.configs
    assert std["requests"] == 12 and std["shared_items"] == 0
    assert std["latency_per_item_s"]["p50"] <= std["latency_per_item_s"]["p95"]
    # flex sends the very same requests: answered from the eval's cache, priced at the flex tier, not paid
    assert flex["requests"] == 0 and flex["shared_items"] == 12 and flex["spent_usd"] == 0
    assert flex["latency_per_item_s"] is None
    assert flex["cost_per_1000_items_usd"] == pytest.approx(std["cost_per_1000_items_usd"] / 2, rel=1e-3)
    assert r.recommended == 1 and r.configs[1]["pareto"] and not r.configs[0]["pareto"]
    assert "recommended: " in r.table() and "tier=flex" in r.table().splitlines()[-1]
    assert emu.stats()["requests_total"] == 12  # each distinct request once across the grid


def test_failures_count_as_wrong_and_rates(lane: Any, emu: Any) -> None:
    scenario(emu.base_url, {"match": {"prompt_contains": "item 0"}, "action": {"block": "PROHIBITED_CONTENT"}},
             {"match": {"prompt_contains": "GOOD"}, "action": {"json": _answer("positive")}},
             {"action": {"json": _answer("negative")}})
    r = lane.evaluate("classify", labelled(), truth="label", labels=LABELS, id_column="id", resamples=100)
    c = r.configs[0]
    # g0 (right before) and b0 (right before) are now failures: 8 of 12 right
    assert c["metrics"]["accuracy"]["value"] == pytest.approx(8 / 12)
    assert c["rates"]["blocked"] == pytest.approx(2 / 12, abs=1e-4)
    assert c["metrics"]["confusion"]["matrix"][0][2] == 1 and c["metrics"]["confusion"]["matrix"][1][2] == 1


def test_a_tolerance_picks_the_cheaper_less_accurate_configuration(lane: Any, emu: Any) -> None:
    _script(emu)
    # pack 4: the scripted single answer does not fit a packed request's schema, so its accuracy differs;
    # with a tolerance of 1.0 any configuration qualifies and the cheapest wins
    r = lane.evaluate("classify", labelled(), truth="label", labels=LABELS, pack=[None, 4], tolerance=1.0,
                      id_column="id", resamples=100)
    costs = [c["cost_per_1000_items_usd"] for c in r.configs]
    assert r.recommended == costs.index(min(costs))


def test_extraction_fields_are_normalised() -> None:
    truth = [{"total": "1,200.50", "date": "2024-03-05", "address.city": "New  York"},
             {"total": "7", "date": "5 March 2024", "address.city": "Paris"},
             {"total": "3.5", "date": "2024-01-01", "address.city": "Rome"}]
    predicted = [{"total": 1200.5, "date": "March 5, 2024", "address": {"city": "new york"}},
                 {"total": 7, "date": "2024-03-05", "address": {"city": "Lyon"}},
                 None]  # a failed item: every field wrong
    m = field_metrics(truth, predicted, ["total", "date", "address.city"], resamples=100)
    assert m["fields"]["total"]["value"] == pytest.approx(2 / 3)
    assert m["fields"]["date"]["value"] == pytest.approx(2 / 3)
    assert m["fields"]["address.city"]["value"] == pytest.approx(1 / 3)
    assert m["record_accuracy"]["value"] == pytest.approx(1 / 3)
    assert normalise(" Hello\tWORLD ") == "hello world" and normalise("") is None
    assert normalise("05/03/2024") == "2024-03-05"  # day first: see DATE_FORMATS


class Address(BaseModel):
    city: str | None = None
    country: str | None = None


class Invoice(BaseModel):
    total: float | None = None
    date: str | None = None
    address: Address


def test_extraction_eval_on_nested_fields_numbers_and_dates(lane: Any, emu: Any) -> None:
    """A labelled file whose truth is written otherwise than the answers (thousands separators, date
    spellings, case and spaces, a nested city), scored end to end; every figure computed by hand."""
    rows = [
        {"text": "INV-1 total 1,200.50 dated 2024-03-05 from New  York, USA",
         "total": "1,200.50", "date": "2024-03-05", "address.city": "New  York", "address.country": "USA"},
        {"text": "INV-2 total 7 dated 5 March 2024 from Paris, France",
         "total": "7", "date": "5 March 2024", "address.city": "Paris", "address.country": "France"},
        {"text": "INV-3 no total dated 1 Feb 2024 from Oslo, Norway",
         "total": "", "date": "01/02/2024", "address.city": "Oslo", "address.country": "norway"},
        {"text": "INV-4 total 3.5 dated 2024-01-01 from Rome, Italy",
         "total": "3.5", "date": "2024-01-01", "address.city": "Rome", "address.country": "Italy"},
    ]
    answers = {  # what the model says for each invoice
        "INV-1": {"total": 1200.5, "date": "March 5, 2024", "address": {"city": "new york", "country": "usa"}},
        "INV-2": {"total": 7, "date": "2024-03-05", "address": {"city": "Lyon", "country": "France"}},
        "INV-3": {"total": 5, "date": "1 Feb 2024", "address": {"city": None, "country": "Norway"}},
    }
    scenario(emu.base_url, *({"match": {"prompt_contains": k}, "action": {"json": v}} for k, v in answers.items()),
             {"action": {"block": "PROHIBITED_CONTENT"}})  # INV-4 fails: every field wrong
    fields = ["total", "date", "address.city", "address.country"]
    r = lane.evaluate("extract", rows, truth=fields, schema=Invoice, resamples=200)
    m = r.configs[0]["metrics"]
    # total:   ok (1,200.50 = 1200.5), ok, wrong (5 given, none true), failed          -> 2/4
    # date:    ok (March 5, 2024), ok (5 March 2024), ok (01/02/2024 day first), failed -> 3/4
    # city:    ok (case, spaces), wrong (Lyon), wrong (none given), failed             -> 1/4
    # country: ok (case), ok, ok (case), failed                                        -> 3/4
    assert {f: m["fields"][f]["value"] for f in fields} == {"total": 0.5, "date": 0.75, "address.city": 0.25,
                                                            "address.country": 0.75}
    assert m["record_accuracy"]["value"] == 0.25  # INV-1 only
    # Field F1: TP 4 + 3 + 2 = 9; FP: INV-2 city, INV-3 total = 2; FN: INV-2 city, INV-3 city, INV-4's 4 = 6
    assert (m["field_f1"]["tp"], m["field_f1"]["fp"], m["field_f1"]["fn"]) == (9, 2, 6)
    assert m["field_f1"]["value"] == pytest.approx(18 / (18 + 2 + 6))
    lo, hi = m["field_f1"]["ci"]
    assert lo <= 18 / 26 <= hi
    assert r.configs[0]["rates"]["blocked"] == 0.25


def test_multilabel_micro_and_macro_f1() -> None:
    truth = ["a;b", "b", "", '["a", "c"]']
    predicted = [["a", "b"], ["a"], [], None]  # the last item failed: no labels
    m = multilabel_metrics(truth, predicted, ["a", "b", "c"], resamples=200)
    # a: tp 1 (row 1), fp 1 (row 2), fn 1 (row 4) -> f1 2/4; b: tp 1, fn 1 -> 2/3; c: fn 1 -> 0
    assert m["micro_f1"]["value"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 3))
    assert m["macro_f1"]["value"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert m["exact_set_accuracy"]["value"] == 0.5  # rows 1 and 3
    assert m["micro_f1"]["ci"][0] <= m["micro_f1"]["value"] <= m["micro_f1"]["ci"][1]
    assert label_set("x | y") == ["x", "y"] and label_set(["x"]) == ["x"]


def test_translation_chrf() -> None:
    m = translation_metrics(["le chat noir", "bonjour"], ["le chat noir", None], resamples=100)
    assert m["chrf"]["value"] == pytest.approx(50.0)  # 100 for the exact one, 0 for the failed one
    assert m["chrf"]["ci"][0] <= 50.0 <= m["chrf"]["ci"][1]


def _cli(emu: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flashlane", "eval", *args], capture_output=True, text=True,
                          env=subprocess_env(emu.base_url), timeout=120)


@pytest.mark.timeout(300)  # each eval process loads scikit-learn
def test_cli_table_json_and_bad_input(emu: Any, tmp_path: Path) -> None:
    _script(emu)
    path = write_csv(tmp_path / "labelled.csv", labelled())
    out = _cli(emu, "classify", str(path), "--truth", "label", "--labels", "positive,negative",
               "--service-tier", "standard,flex", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [c["metrics"]["accuracy"]["value"] for c in report["configs"]] == [pytest.approx(10 / 12)] * 2
    assert report["recommended"] == 1
    sent = emu.stats()["requests_total"]
    bad = _cli(emu, "classify", str(path), "--truth", "verdict", "--labels", "positive,negative")
    assert bad.returncode == 2 and "no truth column 'verdict'" in bad.stderr
    bad = _cli(emu, "classify", str(path), "--truth", "label", "--labels", "positive,negative", "--examples", "3")
    assert bad.returncode == 2 and "worked examples" in bad.stderr
    assert emu.stats()["requests_total"] == sent  # nothing was sent for the bad command lines


@pytest.mark.timeout(300)  # each eval process loads scikit-learn
def test_budget_stops_the_grid_with_a_partial_table(emu: Any, tmp_path: Path) -> None:
    _script(emu)
    path = write_csv(tmp_path / "labelled.csv", labelled())
    out = _cli(emu, "classify", str(path), "--truth", "label", "--labels", "positive,negative",
               "--pack", "1,4", "--service-tier", "standard,flex", "--budget-usd", "0.0000005")
    assert out.returncode == 1, out.stderr  # stopped early, as a run stopped by its budget
    assert "stopped: budget" in out.stdout and "(the table is partial)" in out.stdout


class _Page(HTMLParser):
    """What a browser would fetch (src, href, CSS url()), the SVG groups' ids, the table's names."""

    def __init__(self) -> None:
        super().__init__()
        self.fetches: list[str] = []
        self.ids: set[str] = set()
        self.names: list[str] = []
        self.tags: set[str] = set()
        self._in_name = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        a = dict(attrs)
        for key in ("src", "href", "xlink:href", "data"):
            v = a.get(key)
            if v is not None and not v.startswith("#"):
                self.fetches.append(v)
        self.fetches += re.findall(r"url\(\s*['\"]?(?!#)([^)'\"]+)", a.get("style") or "")
        if a.get("id"):
            self.ids.add(str(a["id"]))
        self._in_name = tag == "td" and a.get("class") == "name"

    def handle_data(self, data: str) -> None:
        if self._in_name:
            self.names.append(data)
            self._in_name = False
        self.fetches += re.findall(r"url\(\s*['\"]?(?!#)([^)'\"]+)", data)


def test_the_plot_is_a_self_contained_page_showing_every_configuration(lane: Any, emu: Any, tmp_path: Path) -> None:
    _script(emu)
    r = lane.evaluate("classify", labelled(), truth="label", labels=LABELS, pack=[None, 4],
                      service_tier=["standard", "flex"], resamples=100)
    page = r.plot(tmp_path / "eval.html")
    png = r.plot(tmp_path / "eval.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    p = _Page()
    p.feed(page.read_text(encoding="utf-8"))
    assert p.fetches == [] and "script" not in p.tags and "link" not in p.tags  # nothing from the network
    assert "svg" in p.tags
    assert p.names == [c["name"] for c in r.configs]  # every configuration in the table...
    assert {f"config-{i}" for i in range(len(r.configs))} <= p.ids  # ...and drawn as a point
    assert f'id="row-{r.recommended}"' in page.read_text(encoding="utf-8")


def test_an_unpacked_run_says_what_pack_auto_would_save_and_names_flashlane_eval(
        cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHLANE_LIMITS", "rpm=300,tpm=1000000")
    src = write_csv(tmp_path / "r.csv", [{"text": f"review {i}: fine, works."} for i in range(40)])
    assert run_cli("run", "classify", str(src), "--labels", "positive,negative", "-o", str(tmp_path / "a.jsonl"),
                   "--no-cache") == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("packing   unpacked"))
    requests = int(re.search(r"would have sent (\d+) requests instead of 40", line).group(1))  # type: ignore[union-attr]
    pack = int(re.search(r"--pack auto \((\d+) per request\)", line).group(1))  # type: ignore[union-attr]
    assert requests == -(-40 // pack) and "less" in line and "under 300 RPM" in line
    assert f"flashlane eval classify LABELLED_FILE --truth COLUMN --pack 1,{pack}" in err
    report = json.loads(subprocess.run([sys.executable, "-m", "flashlane", "report", str(tmp_path / "a.jsonl"),
                                        "--json"], capture_output=True, text=True, timeout=60).stdout)
    hint = report["pack_auto"]
    assert hint["requests"] == 40 and hint["requests_packed"] == requests and 0 < hint["saved_usd"] < report["cost_usd"]
    assert hint["minutes"] == pytest.approx(40 / 300, abs=0.01) and hint["minutes_packed"] < hint["minutes"]
    # asked to pack (or a free-text task): nothing to say
    assert run_cli("run", "classify", str(src), "--labels", "positive,negative", "-o", str(tmp_path / "b.jsonl"),
                   "--no-cache", "--pack", "5") == 0
    assert "packing   unpacked" not in capsys.readouterr().err
