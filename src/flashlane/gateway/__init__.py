"""``flashlane gateway``: a Gemini-wire HTTP server that gives any client flashlane's policy.

Any official SDK (``google-genai``, ``@google/genai``, …) points its base URL at the gateway
and gets the library's per-project limiter, RetryInfo-aware retries within its own deadline,
retired-model diagnosis and a cost ledger, with its requests forwarded byte for byte.

::

    app.py       the ASGI app: auth, the per-request policy loop, streaming pass-through
    wire.py      paths, input-token estimates, optional defaults, usage from answers
    upstream.py  Gemini / Vertex AI / emulator addressing and the pooled async HTTP client
    tokens.py    the tokens file (gateway token -> project + upstream key), --pass-keys
    ledger.py    SQLite usage ledger per (token label, project, model); `flashlane report` on it
    metrics.py   Prometheus text at /metrics
    server.py    Gateway: settings -> app -> uvicorn on a bound socket
"""

from __future__ import annotations

from .app import GatewayApp, GatewayConfig
from .ledger import Ledger, format_ledger, is_ledger
from .server import Gateway
from .tokens import Principal, TokenBook, load_tokens

__all__ = ["Gateway", "GatewayApp", "GatewayConfig", "Ledger", "Principal", "TokenBook", "format_ledger",
           "is_ledger", "load_tokens"]
