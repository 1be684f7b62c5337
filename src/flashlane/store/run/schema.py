"""The run database's schema: one SQLite file per run, the checkpoint that makes resume exact.

Items live here, not in memory: the reader inserts them in chunks, the engine pulls bounded
windows of pending ones, and the writers stream the output back in input order, so a run's
memory does not grow with its rows.

Schema (current version; WAL journal, one transaction per finished request, so a SIGKILL
loses at most the answers of the requests in flight)::

    meta       (key TEXT PRIMARY KEY, value TEXT)       fingerprint, task, model, status, schema_version, ...
    migrations (version INTEGER PRIMARY KEY, applied REAL, what TEXT)
                                                        the schema steps applied to this file, in order
    items      (idx INTEGER PRIMARY KEY, item_id TEXT UNIQUE, hash TEXT, status TEXT, row TEXT)
                                                        status: pending | ok | failed; row: the input row
                                                        as JSON (every column, for the output)
    requests   (id INTEGER PRIMARY KEY, session INTEGER, started REAL, ended REAL, n_items INTEGER,
                outcome TEXT, error TEXT, max_cost_usd REAL, attempts INTEGER)
                                                        one row per request, written before it is sent
                                                        (outcome 'sent' until its answer is recorded,
                                                        'unanswered' if its session ended first), with
                                                        the most it can cost; never deleted; attempts:
                                                        the answer judge's SDK calls (2: a re-ask)
    attempts   (request_id INTEGER, item_id TEXT, outcome TEXT, error TEXT)
                                                        which items rode in which request (written
                                                        with the request, before it is sent); indexed
                                                        by item and by request
    results    (item_id TEXT PRIMARY KEY, value TEXT, prompt_tokens, output_tokens, thoughts_tokens,
                cost_usd REAL, cached INTEGER, request_id INTEGER, cached_tokens INTEGER, evidence TEXT,
                provenance TEXT)
                                                        cached: answered from the response cache;
                                                        cached_tokens: input billed at the cached rate;
                                                        evidence: sources, citations, search queries (JSON);
                                                        provenance: where each value was found (JSON)
    failures   (item_id TEXT PRIMARY KEY, reason TEXT, error TEXT, attempts INTEGER)
    usage      (request_id INTEGER PRIMARY KEY, prompt_tokens, output_tokens, thoughts_tokens,
                cached_tokens, cost_usd REAL)           the cost ledger, exact per request
    sessions   (id INTEGER PRIMARY KEY, started REAL, ended REAL, outcome TEXT, requests INTEGER,
                rate_limited INTEGER, retries INTEGER, pid INTEGER)
                                                        one row per `flashlane run` invocation
    request_tiers (request_id INTEGER PRIMARY KEY, tier TEXT)
                                                        the service tier that served a request (flex, batch)
    batch_jobs, batch_requests, batch_items             Batch API jobs of a --service-tier batch run,
                                                        recorded before they are created
    context_caches (name TEXT PRIMARY KEY, model TEXT, prefix TEXT, tokens INTEGER, created REAL,
                expires REAL, ended REAL, input_per_m REAL, storage_per_m_hour REAL)
                                                        explicit caches of the run's shared prefix: made,
                                                        extended (expires), deleted or found gone (ended)
    uploads    (sha256 TEXT PRIMARY KEY, name TEXT, uri TEXT, mime_type TEXT, size INTEGER, state TEXT,
                intended REAL, uploaded REAL, expires REAL, ended REAL)
                                                        media sent through the Files API, one per content
                                                        hash: intended before the upload, active with the
                                                        file's name, uri and expiry, then deleted or gone

Schema changes are steps in ``MIGRATIONS``, applied in order on open by ``store.migrate`` and
recorded in ``migrations`` and ``meta.schema_version`` (where every release since the first
reads it), so a run database written by an older release resumes after an upgrade; one written
by a newer release is refused rather than damaged.

Per-item token counts of a packed request are the request's counts shared evenly; the
``usage`` table holds the exact totals, and reports add up from it.
No API key is ever written here: nothing that reaches this module carries one.
"""

from __future__ import annotations

from ..migrate import MetaKey, Migration, Schema

__all__ = ["MIGRATIONS", "RUN_SCHEMA", "SCHEMA_VERSION"]

_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS items (idx INTEGER PRIMARY KEY, item_id TEXT UNIQUE NOT NULL, hash TEXT,
    status TEXT NOT NULL DEFAULT 'pending');
CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, session INTEGER, started REAL, ended REAL,
    n_items INTEGER, outcome TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS attempts (request_id INTEGER, item_id TEXT, outcome TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS results (item_id TEXT PRIMARY KEY, value TEXT, prompt_tokens INTEGER,
    output_tokens INTEGER, thoughts_tokens INTEGER, cost_usd REAL, cached INTEGER, request_id INTEGER);
CREATE TABLE IF NOT EXISTS failures (item_id TEXT PRIMARY KEY, reason TEXT, error TEXT, attempts INTEGER);
CREATE TABLE IF NOT EXISTS usage (request_id INTEGER PRIMARY KEY, prompt_tokens INTEGER, output_tokens INTEGER,
    thoughts_tokens INTEGER, cached_tokens INTEGER, cost_usd REAL);
CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, started REAL, ended REAL, outcome TEXT,
    requests INTEGER DEFAULT 0, rate_limited INTEGER DEFAULT 0, retries INTEGER DEFAULT 0);
CREATE INDEX IF NOT EXISTS attempts_item ON attempts (item_id);
"""

# v2: the input row is kept with its item (output keeps every input column; the engine
# rebuilds items from the store instead of holding them); sessions know their process.
_V2 = """
ALTER TABLE items ADD COLUMN row TEXT;
ALTER TABLE sessions ADD COLUMN pid INTEGER;
"""

# v3: service tiers (issue 12). The tier each answered request was served at; batch jobs and the
# requests (by key) and items each carries, recorded before a job is created (batch_jobs.py).
_V3 = """
CREATE TABLE IF NOT EXISTS request_tiers (request_id INTEGER PRIMARY KEY, tier TEXT);
CREATE TABLE IF NOT EXISTS batch_jobs (id INTEGER PRIMARY KEY, display_name TEXT UNIQUE NOT NULL, name TEXT,
    state TEXT, mode TEXT, file_name TEXT, model TEXT, n_requests INTEGER, n_items INTEGER, reserved_usd REAL,
    created REAL, updated REAL, stats TEXT, collected INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE TABLE IF NOT EXISTS batch_requests (job_id INTEGER, key TEXT, item_ids TEXT, outcome TEXT,
    PRIMARY KEY (job_id, key));
CREATE TABLE IF NOT EXISTS batch_items (item_id TEXT, job_id INTEGER, key TEXT);
CREATE INDEX IF NOT EXISTS batch_items_item ON batch_items (item_id);
CREATE INDEX IF NOT EXISTS batch_items_job ON batch_items (job_id);
"""


# v4: explicit context caches of the run's prefix (caching/context_cache.py), so a resumed run reuses a
# live one, the last session deletes it, and the report charges creation and storage hours.
_V4 = """
CREATE TABLE IF NOT EXISTS context_caches (name TEXT PRIMARY KEY, model TEXT, prefix TEXT, tokens INTEGER,
    created REAL, expires REAL, ended REAL, input_per_m REAL, storage_per_m_hour REAL);
"""

# v5: each result keeps its share of cached input tokens (explicit or implicit cache hits), so an
# item's output row shows what of its input was billed at the cached rate.
_V5 = """
ALTER TABLE results ADD COLUMN cached_tokens INTEGER;
"""

# v6: a grounded answer's evidence (issue 20): the sources, citations and search queries of the request
# that answered the item, as JSON, for tasks with built-in tools; output rows carry them.
_V6 = """
ALTER TABLE results ADD COLUMN evidence TEXT;
"""

# v7: the ledger never forgets (issue 20). A request's most possible cost is written with it before
# it is sent (its items go to ``attempts`` then too), so one whose answer a kill lost still counts
# in the report: as what the same items cost when answered again, or at most this bound.
_V7 = """
ALTER TABLE requests ADD COLUMN max_cost_usd REAL;
"""

# v8: provenance (issue 22): where each value of an extraction was found in its item (character
# offsets, the page of a PDF) or that it was not, as JSON, for runs that ask for it; output rows carry it.
_V8 = """
ALTER TABLE results ADD COLUMN provenance TEXT;
"""

# v9: the SDK calls the answer judge made for a request (issue 24): more than one is a re-ask after
# invalid JSON or a retry with a larger output cap, which the eval reports as a rate.
_V9 = """
ALTER TABLE requests ADD COLUMN attempts INTEGER;
"""

# v10: media sent through the Files API (issue 22, store/run/uploads.py): one row per content hash,
# written before the upload (state 'uploading'), so a killed run's rerun looks the file up instead of
# uploading it again, reuses it while it lives, and the session that finishes the run deletes it.
_V10 = """
CREATE TABLE IF NOT EXISTS uploads (sha256 TEXT PRIMARY KEY, name TEXT, uri TEXT, mime_type TEXT, size INTEGER,
    state TEXT NOT NULL, intended REAL, uploaded REAL, expires REAL, ended REAL);
"""

# v11: the items of a request are found by its id, not by a scan of every attempt (issue 23). Settling a
# request rewrites its 'sent' attempts (requests.py ``record``), the report joins attempts to requests,
# and a resumed run asks which items are still in flight (items.IN_LIVE_REQUESTS): without the index each
# of these read the whole table, so the CPU of every request grew with the rows before it (0.10 ms per
# settle at 1,000 rows, 0.47 ms at 10,000; bench/cluster.py --engine-only).
_V11 = """
CREATE INDEX IF NOT EXISTS attempts_request ON attempts (request_id);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "first release: items, requests, attempts, results, failures, usage, sessions", _V1),
    Migration(2, "input rows stored with their items; sessions record their pid", _V2),
    Migration(3, "service tiers: the tier per request; batch jobs, their requests and items", _V3),
    Migration(4, "explicit context caches of the run's shared prefix", _V4),
    Migration(5, "results keep their cached input tokens", _V5),
    Migration(6, "results keep the evidence of grounded answers", _V6),
    Migration(7, "requests keep their most possible cost, written before they are sent", _V7),
    Migration(8, "results keep the provenance of extracted values", _V8),
    Migration(9, "requests keep the answer judge's calls (re-asks)", _V9),
    Migration(10, "media uploaded through the Files API, one per content hash", _V10),
    Migration(11, "attempts are indexed by their request", _V11),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

RUN_SCHEMA = Schema(
    "run database", MIGRATIONS, MetaKey("meta", "schema_version"),
    marker="items",  # the first release wrote schema_version only once a file run was set up
    upgrade_hint="upgrade flashlane to resume this run", log="migrations")
