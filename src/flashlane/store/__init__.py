"""The store: every SQLite database flashlane keeps, and the only place SQL is written.

- ``db``: how a file is opened (WAL, busy timeout) and written (``BEGIN IMMEDIATE`` transactions);
- ``migrate``: the one upgrade path, each database's steps recorded with their version;
- ``run``: the run database, ``RunStore`` and its repositories (meta, items, sessions, the
  request ledger, context caches, batch jobs, report totals);
- ``limiter``, ``response_cache``, ``gateway_ledger``: the other three databases' tables.

It knows rows, not calls: it imports only the catalog's ``Usage``, the clock and the errors.
"""
