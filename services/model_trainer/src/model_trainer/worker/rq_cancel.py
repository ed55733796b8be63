"""RQ's registries agree with our records: a cancelled job is in RQ's canceled registry.

The API cancels a queued job with RQ's `Job.cancel`. A running one stops inside its job
function, which records it `cancelled` and raises TRAINING_CANCELLED so the work ends; RQ would
file that exception as a failure. The worker classes take `CancelledStaysCanceled`: when the
failed job's record says `cancelled`, the job is cancelled in RQ instead (its execution cleaned
up, status `canceled`, in `CanceledJobRegistry`), in one transaction.
"""

from __future__ import annotations

from contextlib import suppress

from rq.exceptions import InvalidJobOperation
from rq.executions import Execution
from rq.job import Job
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.utils import now, utcformat
from rq.worker import BaseWorker

from model_trainer.storage.job_store import JobStore
from model_trainer.worker.job_utils import through_outage


class CancelledStaysCanceled(BaseWorker):
    """A mixin for RQ worker classes (before the RQ class in the bases)."""

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: StartedJobRegistry | None = None,
        exc_string: str = "",
        execution: Execution | None = None,
    ) -> None:
        # While Redis is away RQ's own handling logs that it could not record the failure.
        status = through_outage(lambda: JobStore(self.connection).status(job.id), None)
        if status != "cancelled":
            super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
            return
        through_outage(lambda: self._cancel(job, execution), None)

    def _cancel(self, job: Job, execution: Execution | None) -> None:
        with self.connection.pipeline() as pipe:
            self.cleanup_execution(job, pipeline=pipe, execution=execution)
            # RQ's failure handling would have saved when the job ended; the dashboard shows it.
            pipe.hset(Job.key_for(job.id), "ended_at", utcformat(job.ended_at or now()))
            # Already canceled when the API cancelled it as the worker took it up.
            with suppress(InvalidJobOperation):
                job.cancel(pipeline=pipe)
            pipe.execute()
