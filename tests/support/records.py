"""Job records as the API writes them at submit, for tests that run job functions directly."""

from __future__ import annotations

from model_trainer.contracts.jobs import QUEUE_FOR_TYPE, JobRecord, JobType
from model_trainer.storage.runs import utc_now


def queued_record(job_id: str, job_type: JobType, run_id: str | None) -> JobRecord:
    """A fresh queued record of user 1, on its type's queue."""
    return {
        "job_id": job_id,
        "user_id": 1,
        "type": job_type,
        "queue": QUEUE_FOR_TYPE[job_type],
        "status": "queued",
        "progress": 0.0,
        "message": "queued",
        "attempts": 0,
        "created_at": utc_now(),
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "run_id": run_id,
        "result": None,
        "error": None,
        "priority": "normal",
        "origin": None,
    }
