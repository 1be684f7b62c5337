"""Batch job records live in ``flashlane.store.run.batch_jobs`` (SQL only inside the store
package); the names are kept here for the code that imports them from the pipeline."""

from ..store.run.batch_jobs import BatchJobs, JobRecord

__all__ = ["JobRecord", "BatchJobs"]
