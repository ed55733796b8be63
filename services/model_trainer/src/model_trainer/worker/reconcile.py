"""Our job records against RQ's view of the same jobs, so the two never disagree for long.

A job function records how its job ended, but some endings happen outside it: a work horse
killed until no retry is left, a job abandoned by a dead worker and failed by RQ's registry
cleanup, a job stopped or deleted in RQ. Each would leave a record `running` (or `queued`)
forever and its event stream open. Workers run `reconcile` in their maintenance; it ends such
records with a code (`WORKER_LOST`, or the result RQ kept) and announces the end to followers.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from model_trainer.contracts.jobs import TERMINAL_STATUSES, JobError, JobRecord
from model_trainer.storage.job_store import JobStore
from model_trainer.worker.job_utils import job_context, record_completion, record_failure
from platform_core.json_types import JSONObject, PayloadError, load_json_object
from platform_workers.redis_conn import RedisClient

logger = logging.getLogger(__name__)

# A record is written just before its RQ job is enqueued: a younger one may not be in RQ yet.
GRACE_S = 30.0
# Records and RQ jobs are read in pipelined batches, so thousands of queued jobs cost a few
# round trips per pass.
BATCH = 500


class Lost(NamedTuple):
    """RQ ended the job without a result: the record ends with this error."""

    error: JobError


Ending = Lost | JSONObject


def reconcile(redis: RedisClient, *, now: datetime | None = None) -> list[str]:
    """End every active record whose RQ job has ended (or is gone); returns their ids."""
    store = JobStore(redis)
    moment = datetime.now(UTC) if now is None else now
    cutoff = (moment - timedelta(seconds=GRACE_S)).isoformat(timespec="microseconds")
    repaired: list[str] = []
    active = store.active(created_before=cutoff)
    for start in range(0, len(active), BATCH):
        batch = active[start : start + BATCH]
        records = store.get_many(batch)
        jobs = Job.fetch_many(batch, connection=redis, serializer=JSONSerializer)
        for job_id, record, job in zip(batch, records, jobs, strict=True):
            if record is None or record["status"] in TERMINAL_STATUSES:
                store.forget_active(job_id)
                continue
            ending = rq_ending(job)
            if ending is not None:
                _apply(redis, store, record, ending)
                repaired.append(job_id)
    return repaired


def rq_ending(job: Job | None) -> Ending | None:
    """How RQ says the job ended (None for a job it no longer holds), or None while it is
    still queued or running there."""
    if job is None:
        return _lost("the queue no longer holds this job (deleted or expired in RQ)")
    status = job.get_status(refresh=False)
    if status == JobStatus.FINISHED:
        return _finished_result(job)
    if status == JobStatus.CANCELED:
        return Lost({"code": "TRAINING_CANCELLED", "kind": "user", "message": "cancelled"})
    if status in (JobStatus.FAILED, JobStatus.STOPPED):
        return _lost(f"RQ {status.value} the job: {_last_line(job)}")
    return None


def _lost(message: str) -> Ending:
    return Lost({"code": "WORKER_LOST", "kind": "system", "message": message})


def _last_line(job: Job) -> str:
    """The end of RQ's failure text (the exception line), or a plain note when it kept none."""
    result = job.latest_result()
    text = "" if result is None or result.exc_string is None else result.exc_string.strip()
    return text.splitlines()[-1] if text else "no failure recorded (its worker died)"


def _finished_result(job: Job) -> Ending:
    """RQ's copy of the result, when the job function finished but its record write was lost."""
    try:
        return load_json_object(orjson.dumps(job.return_value()))
    except (TypeError, PayloadError):
        return _lost("RQ finished the job but kept no JSON result")


def _apply(redis: RedisClient, store: JobStore, record: JobRecord, ending: Ending) -> None:
    job_id = record["job_id"]
    ctx = job_context(redis, job_id=job_id, user_id=record["user_id"], queue=record["queue"])
    if isinstance(ending, Lost):
        error = ending.error
        record_failure(
            ctx, store, job_id, code=error["code"], kind=error["kind"], message=error["message"]
        )
        logger.warning("reconciled job %s: ended %s", job_id, error["code"])
        return
    record_completion(ctx, store, job_id, ending)
    logger.warning("reconciled job %s: completed (from RQ's result)", job_id)
