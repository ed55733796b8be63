"""Job functions for tests that run a real RQ worker: each ends its job the way a job function
does (through `run_job`), without a model."""

from __future__ import annotations

import os
import time

from rq import get_current_job
from rq.job import Job
from rq.serializers import JSONSerializer

from model_trainer.contracts.jobs import parse_queue
from model_trainer.errors import ModelTrainerError, ModelTrainerErrorCode
from model_trainer.storage.job_store import JobStore
from model_trainer.worker.job_utils import connect, job_context, run_job
from model_trainer.worker.rq_meta import show_in_rq
from platform_core.json_types import JSONObject

PROGRESS_MESSAGE = "step 3/10 loss 2.5000"


def ends_with(job_id: str, code: ModelTrainerErrorCode, *, cancelled_in_rq: bool = False) -> None:
    """Reports progress, then fails with `code` (TRAINING_CANCELLED: how a running job stops
    when it sees its cancel flag). `cancelled_in_rq`: the API cancelled the RQ job meanwhile,
    as it does when it saw the record still queued."""
    job = get_current_job()
    assert job is not None and job.id == job_id
    redis = job.connection

    def work() -> JSONObject:
        show_in_rq(job_id, {"progress": 0.3, "message": PROGRESS_MESSAGE, "step": 3})
        if cancelled_in_rq:
            Job.fetch(job_id, connection=redis, serializer=JSONSerializer).cancel()
        raise ModelTrainerError(code, f"{code} at step 3")

    ctx = job_context(redis, job_id=job_id, user_id=1, queue="infer")
    run_job(ctx, JobStore(redis), job_id, work, job_type="generate", config=None)


def completes(job_id: str) -> JSONObject:
    """Reports progress, then completes with an empty result."""
    job = get_current_job()
    assert job is not None and job.id == job_id
    redis = job.connection

    def work() -> JSONObject:
        show_in_rq(job_id, {"progress": 0.3, "message": PROGRESS_MESSAGE, "step": 3})
        return {}

    ctx = job_context(redis, job_id=job_id, user_id=1, queue="infer")
    return run_job(ctx, JobStore(redis), job_id, work, job_type="generate", config=None)


def reports_pid(job_id: str, queue: str = "train", sleep_s: float = 0.0) -> JSONObject:
    """Completes (after `sleep_s`) with the id of the process that ran it: which horse, or
    which of several workers, took the job."""
    job = get_current_job()
    assert job is not None and job.id == job_id

    def work() -> JSONObject:
        time.sleep(sleep_s)
        return {"pid": os.getpid()}

    ctx = job_context(job.connection, job_id=job_id, user_id=1, queue=parse_queue(queue))
    return run_job(ctx, JobStore(job.connection), job_id, work, job_type="train", config=None)


def uses_the_workers_connection(payload: JSONObject) -> bool:
    """Whether a job function's `connect()` hands back the connection RQ runs the job on
    (`payload` is what the infer worker reads its user from)."""
    job = get_current_job()
    assert job is not None
    return connect()[1] is job.connection
