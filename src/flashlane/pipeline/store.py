"""The run store lives in ``flashlane.store.run`` (SQL only inside the store package); the names
are kept here for the code that imports them from the pipeline."""

from ..store.run import INSERT_CHUNK, MIGRATIONS, SCHEMA_VERSION, RunStore, StoredResult, StoredRow

__all__ = ["RunStore", "StoredResult", "StoredRow", "SCHEMA_VERSION", "MIGRATIONS", "INSERT_CHUNK"]
