"""One client process for the gateway load tests: N generate calls with the google-genai SDK
(default options: no retries, so any 429 the gateway let through surfaces here).

Usage: python py_worker.py BASE_URL TOKEN N CONCURRENCY  -> one JSON line {"ok", "codes", "errors"}
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from google import genai
from google.genai import errors, types


def main() -> None:
    base_url, token, n, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    client = genai.Client(api_key=token, http_options=types.HttpOptions(base_url=base_url, timeout=120_000))
    codes: Counter[str] = Counter()
    failures: list[str] = []

    def one(i: int) -> None:
        try:
            r = client.models.generate_content(model="gemini-3.1-flash-lite", contents=f"python item {i}")
            codes["200" if r.text else "empty"] += 1
        except errors.APIError as e:
            codes[str(e.code)] += 1
            failures.append(f"{e.code} {e.status}")
        except Exception as e:  # noqa: BLE001 - a transport failure is a result too
            codes["transport"] += 1
            failures.append(type(e).__name__)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    print(json.dumps({"ok": codes["200"], "codes": dict(codes), "errors": failures[:5]}))


if __name__ == "__main__":
    main()
