"""The run database: its schema and migrations, its repositories, and ``RunStore`` over them."""

from .batch_jobs import BatchJobs, JobRecord
from .items import INSERT_CHUNK, StoredResult, StoredRow
from .schema import MIGRATIONS, RUN_SCHEMA, SCHEMA_VERSION
from .store import NOT_A_RUN_DB_HINT, RunStore
from .uploads import UploadRecord, UploadsRepo

__all__ = ["BatchJobs", "INSERT_CHUNK", "JobRecord", "MIGRATIONS", "NOT_A_RUN_DB_HINT", "RUN_SCHEMA", "RunStore",
           "SCHEMA_VERSION", "StoredResult", "StoredRow", "UploadRecord", "UploadsRepo"]
