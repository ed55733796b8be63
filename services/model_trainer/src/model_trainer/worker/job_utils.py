"""What every job shares: its context, its record, and one lifecycle around the work."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal

import orjson
from rq import get_current_job

from model_trainer.contracts.jobs import (
    DOMAIN,
    QUEUE_FOR_TYPE,
    ErrorKind,
    JobError,
    JobType,
    QueueName,
    RunJobPayload,
)
from model_trainer.contracts.model import PreparedLMModel
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings, load_settings
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import utc_now
from model_trainer.worker.model_cache import load_run
from platform_core.job_events import ErrorKind as EventErrorKind
from platform_core.json_types import JSONObject, load_json_object
from platform_workers.job_context import JobContext
from platform_workers.redis_conn import RedisClient, redis_from_url

if TYPE_CHECKING:
    from model_trainer.backends.causal_lm import CausalLMBackend


def connect() -> tuple[Settings, RedisClient]:
    """Settings and Redis for a job function RQ calls with nothing but its payload."""
    settings = load_settings()
    return settings, redis_from_url(settings["redis_url"])


def job_context(redis: RedisClient, *, job_id: str, user_id: int, queue: QueueName) -> JobContext:
    return JobContext(redis, domain=DOMAIN, job_id=job_id, user_id=user_id, queue=queue)


def to_json_object(value: Mapping[str, object]) -> JSONObject:
    """An outcome TypedDict as plain JSON data, for the record and the RQ result."""
    return load_json_object(orjson.dumps(value))


def _v1_event_kind(kind: ErrorKind) -> EventErrorKind:
    """The kind `trainer.job.failed.v1` carries: that version allows only user and system, and its
    subscribers reject other values, so a resource failure is announced as system. The record
    keeps the precise kind."""
    return "user" if kind == "user" else "system"


def _stop_retries() -> None:
    """A coded failure repeats on every attempt, so RQ must not retry it."""
    job = get_current_job()
    if job is not None:
        job.retries_left = 0


def _will_retry() -> bool:
    job = get_current_job()
    return job is not None and job.should_retry


def run_job(
    ctx: JobContext, store: JobStore, job_id: str, work: Callable[[], JSONObject]
) -> JSONObject:
    """Run the work, then record and announce how it ended; errors are re-raised for RQ.

    A coded error is final: the record says failed (or cancelled) and a failed event names the
    code. Any other exception is a system error that RQ may retry; it is announced as final
    only when no retry is left.
    """
    try:
        result = work()
    except ModelTrainerError as error:
        _stop_retries()
        _record_failure(ctx, store, job_id, code=error.code, kind=error.kind, message=error.message)
        raise
    except Exception as error:
        if not _will_retry():
            _record_failure(
                ctx, store, job_id, code="INTERNAL_ERROR", kind="system", message=repr(error)
            )
        raise
    store.complete(job_id, result=result, now=utc_now())
    ctx.publish_completed(job_id, len(orjson.dumps(result)))
    return result


def _record_failure(
    ctx: JobContext, store: JobStore, job_id: str, *, code: str, kind: ErrorKind, message: str
) -> None:
    error: JobError = {"code": code, "kind": kind, "message": message}
    status: Literal["failed", "cancelled"] = (
        "cancelled" if code == "TRAINING_CANCELLED" else "failed"
    )
    store.fail(job_id, error=error, status=status, now=utc_now())
    ctx.publish_failed(_v1_event_kind(kind), code, message)


InferenceCall = Callable[["CausalLMBackend", PreparedLMModel], Mapping[str, object]]


def run_inference_job(
    payload: RunJobPayload,
    job_type: JobType,
    call: InferenceCall,
    *,
    settings: Settings,
    redis: RedisClient,
) -> JSONObject:
    """Load the run (from this worker's cache when warm) and apply one backend function."""
    job_id, user_id = payload["job_id"], payload["user_id"]
    ctx = job_context(redis, job_id=job_id, user_id=user_id, queue=QUEUE_FOR_TYPE[job_type])

    def work() -> JSONObject:
        backend, prepared = load_run(payload["run_id"], settings)
        return to_json_object(call(backend, prepared))

    return run_job(ctx, JobStore(redis), job_id, work)
