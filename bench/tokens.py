"""Tokens per item for each built-in task, beside the tutorial-style prompt for the same job.

The tutorial baseline is what most guides show: a one-line instruction, a free-text answer,
no thinking setting, no output cap, no schema ("Classify this review as positive, negative,
or neutral: ..."). Both run on one emulator process in the same run. "usable" counts answers
a program can consume without parsing prose (a label from the set, JSON that validates).

    python bench/tokens.py [--items 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

from _emu import emulator_process, table
from google import genai
from google.genai import types
from pydantic import BaseModel

import flashlane as fl

LABELS = ["positive", "negative", "neutral"]
REVIEWS = [
    "Fast shipping, great quality.", "Broke after two days, very disappointed.", "It works. Nothing special.",
    "Absolutely love it, would buy again!", "The color was not as pictured and support never answered.",
    "Decent value for the price, though the manual is confusing.", "Terrible smell, returned it.",
    "Exactly what I needed for my kitchen.", "Arrived late but works fine.", "Five stars, my kids adore it.",
]
INVOICES = [f"Invoice INV-{i:04d} from ACME GmbH, total {100 + i * 7.5:.2f} EUR, due in 30 days." for i in range(10)]
ARTICLE = ("The city council approved a new plan to expand bike lanes across the downtown area. The project, "
           "funded by a mix of state grants and local taxes, will add 40 kilometres of protected lanes over three "
           "years. Supporters say it will cut traffic and emissions; critics worry about parking and delivery access. ")


class Invoice(BaseModel):
    number: str
    total: float
    currency: str


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=30)
    args = ap.parse_args()
    n = args.items
    rows: list[list[object]] = []
    with emulator_process("--latency-scale", "0") as url:
        bare = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=url))
        lane = fl.Lane(base_url=url, api_key="bench", cache=False)

        def tutorial(prompt: str) -> tuple[int, int, int, str]:
            r = bare.models.generate_content(model="gemini-3.1-flash-lite", contents=prompt)
            u = r.usage_metadata
            assert u is not None
            return u.prompt_token_count or 0, u.candidates_token_count or 0, u.thoughts_token_count or 0, r.text or ""

        def ours(fn) -> tuple[int, int, int, bool]:  # type: ignore[no-untyped-def]
            before = lane.totals.usage
            try:
                fn()
                ok = True
            except fl.FlashlaneError:
                ok = False
            after = lane.totals.usage
            return (after.prompt_tokens - before.prompt_tokens, after.output_tokens - before.output_tokens,
                    after.thoughts_tokens - before.thoughts_tokens, ok)

        def usable_json(text: str) -> bool:
            try:
                Invoice.model_validate_json(text)
                return True
            except Exception:
                return False

        jobs = [
            ("classify",
             lambda i: tutorial(f"Classify this review as positive, negative, or neutral: {REVIEWS[i % 10]}"),
             lambda t: t.strip().lower() in LABELS,
             lambda i: lane.classify(REVIEWS[i % 10], labels=LABELS)),
            ("extract",
             lambda i: tutorial(f"Extract the invoice number, total and currency from this text as JSON: {INVOICES[i % 10]}"),
             usable_json,
             lambda i: lane.extract(INVOICES[i % 10], schema=Invoice)),
            ("translate",
             lambda i: tutorial(f"Translate the following text to French: {REVIEWS[i % 10]}"),
             lambda t: bool(t.strip()),
             lambda i: lane.translate(REVIEWS[i % 10], to="French")),
            ("summarize",
             lambda i: tutorial(f"Summarize the following text: {ARTICLE}"),
             lambda t: bool(t.strip()),
             lambda i: lane.summarize(ARTICLE, max_words=40)),
        ]
        packed = {
            "classify": lambda: lane.map("classify", [REVIEWS[i % 10] for i in range(n)], labels=LABELS, pack=10),
            "extract": lambda: lane.map("extract", [INVOICES[i % 10] for i in range(n)], schema=Invoice, pack=10),
            "translate": lambda: lane.map("translate", [REVIEWS[i % 10] for i in range(n)], to="French", pack=10),
        }
        model = fl.CATALOG["gemini-3.1-flash-lite"]
        assert model.prices is not None
        for name, tut, tut_ok, mine in jobs:
            t_in = t_out = t_th = t_usable = 0
            f_in = f_out = f_th = f_usable = 0
            for i in range(n):
                a, b, c, text = tut(i)
                t_in, t_out, t_th, t_usable = t_in + a, t_out + b, t_th + c, t_usable + tut_ok(text)
                a, b, c, ok = ours(lambda mine=mine, i=i: mine(i))
                f_in, f_out, f_th, f_usable = f_in + a, f_out + b, f_th + c, f_usable + ok
            for who, i_, o_, th_, us in (("tutorial", t_in, t_out, t_th, t_usable), ("flashlane", f_in, f_out, f_th, f_usable)):
                cost = model.prices.cost(i_, o_ + th_, 0) / n * 1000
                rows.append([name, who, f"{i_ / n:.1f}", f"{o_ / n:.1f}", f"{th_ / n:.1f}", f"{(i_ + o_ + th_) / n:.1f}",
                             f"${cost:.4f}", f"{us}/{n}"])
            tot_t = (t_in + t_out + t_th) / n
            tot_f = (f_in + f_out + f_th) / n
            rows.append([name, "ratio flashlane/tutorial", "", "", "", f"{tot_f / tot_t:.2f}", "", ""])
            if name in packed:
                before = lane.totals.usage
                out = packed[name]()
                u = lane.totals.usage
                p_in, p_out, p_th = (u.prompt_tokens - before.prompt_tokens, u.output_tokens - before.output_tokens,
                                     u.thoughts_tokens - before.thoughts_tokens)
                ok = sum(1 for r in out if r.status == "ok")
                cost = model.prices.cost(p_in, p_out + p_th, 0) / n * 1000
                tot_p = (p_in + p_out + p_th) / n
                rows.append([name, "flashlane, packed x10", f"{p_in / n:.1f}", f"{p_out / n:.1f}", f"{p_th / n:.1f}",
                             f"{tot_p:.1f}", f"${cost:.4f}", f"{ok}/{n}"])
                rows.append([name, "ratio packed/tutorial", "", "", "", f"{tot_p / tot_t:.2f}", "", ""])
        lane.close()
    print(table(["task", "prompt style", "in/item", "out/item", "thinking/item", "total/item", "cost/1k items",
                 "usable"], rows))
    print(json.dumps({"items_per_task": n}))


if __name__ == "__main__":
    main()
