"""What every job shares: its context, its record, and one lifecycle around the work."""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Literal, TypeVar

import orjson
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import get_current_job
from rq.timeouts import JobTimeoutException

from model_trainer.contracts.jobs import (
    DOMAIN,
    QUEUE_FOR_TYPE,
    ErrorKind,
    EvalJobPayload,
    ExportJobPayload,
    GenerateJobPayload,
    JobError,
    JobType,
    QueueName,
    ScoreJobPayload,
)
from model_trainer.contracts.model import PreparedLMModel, StopCheck
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings, load_settings
from model_trainer.storage.job_store import COMPLETED_MESSAGE, JobStore
from model_trainer.storage.runs import utc_now
from model_trainer.worker.model_cache import load_run
from model_trainer.worker.rq_meta import show_in_rq
from platform_core.job_events import ErrorKind as EventErrorKind
from platform_core.json_types import JSONObject, load_json_object
from platform_core.structured_logs import FIELDS_ATTR, log_context
from platform_workers.job_context import JobContext
from platform_workers.redis_conn import RedisClient, redis_from_url

if TYPE_CHECKING:
    from model_trainer.backends.causal_lm import CausalLMBackend


logger = logging.getLogger(__name__)

# Failures another attempt can get past: Redis went away mid-job.
TRANSIENT_ERRORS = (RedisConnectionError, RedisTimeoutError)
_OOM_SIGNS = ("out of memory", "can't allocate memory", "not enough memory")


# Library loggers that keep their records from the root logger (transformers' does not
# propagate): a job's log lines include their warnings too.
LIBRARY_LOGGERS = ("transformers",)
SUMMARY_TEXT_LIMIT = 200

T = TypeVar("T")
# How long a finished job keeps trying to record its result while Redis is away.
RECORD_PATIENCE_S = 120.0


def through_outage(call: Callable[[], T], fallback: T) -> T:
    """A side-channel call (heartbeat, progress, cancel poll) that must not stop the work while
    Redis is away: the miss is logged and the work goes on; the next call catches up."""
    try:
        return call()
    except TRANSIENT_ERRORS as error:
        logger.warning("Redis unreachable, carrying on without it: %r", error)
        return fallback


def patiently(call: Callable[[], T], *, patience_s: float = RECORD_PATIENCE_S) -> T:
    """A call that must land (a finished job's result): retried until Redis is back or
    `patience_s` has passed, when the last error is raised."""
    deadline = time.monotonic() + patience_s
    delay = 0.1
    while True:
        try:
            return call()
        except TRANSIENT_ERRORS:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(5.0, delay * 2)


def connect() -> tuple[Settings, RedisClient]:
    """Settings and Redis for a job function RQ calls with nothing but its payload.

    Under a worker, the job's own connection: a fresh client would open a new TCP connection
    for every job (half a millisecond of a warm generate's round trip).
    """
    settings = load_settings()
    job = get_current_job()
    connection = None if job is None else job.connection
    return settings, connection if connection is not None else redis_from_url(settings["redis_url"])


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


def coded_failure(error: Exception) -> ModelTrainerError:
    """What a failure inside the work means. The same payload fails the same way on any worker,
    so whatever it is, it is final: a time limit, memory or disk running out, a value the
    validators let through but arithmetic could not take, or (the rest) our own bug."""
    if isinstance(error, ModelTrainerError):
        return error
    if isinstance(error, JobTimeoutException):
        return ModelTrainerError("JOB_TIMEOUT", f"the job ran past its time limit: {error}")
    if _exhausted(error):
        return ModelTrainerError("RESOURCE_EXHAUSTED", f"out of memory or disk: {error}")
    if isinstance(error, ArithmeticError | ValueError) or _overflowed(error):
        return ModelTrainerError(
            "UNSUPPORTED_VALUE", f"a value could not be computed with: {error}"
        )
    return ModelTrainerError("INTERNAL_ERROR", repr(error))


def reported_by_the_job(error: object) -> bool:
    """Whether RQ's own line about a job's exception (with its traceback) would only repeat
    `run_job`'s: a coded failure (a cancel, a refusal, a timeout, memory) was logged as one line
    with its code. Our bugs (INTERNAL_ERROR) and lost Redis connections keep RQ's traceback."""
    return isinstance(error, Exception) and coded_failure(error).code != "INTERNAL_ERROR"


def _exhausted(error: Exception) -> bool:
    if isinstance(error, MemoryError):
        return True
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    # torch raises RuntimeError subclasses (OutOfMemoryError on CUDA) for failed allocations.
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(sign in text for sign in _OOM_SIGNS)


def _overflowed(error: Exception) -> bool:
    return isinstance(error, RuntimeError) and "overflow" in str(error).lower()


def run_job(
    ctx: JobContext,
    store: JobStore,
    job_id: str,
    work: Callable[[], JSONObject],
    *,
    job_type: JobType,
    config: Mapping[str, object] | None,
) -> JSONObject:
    """Run the work, then record and announce how it ended; errors are re-raised for RQ.

    Every failure of the work itself is final (`coded_failure`): the record says failed (or
    cancelled), a failed event names the code, and RQ does not retry. A training preempted by
    its worker's shutdown goes back to the queue instead. Only a lost connection to
    Redis is left to RQ's retries (a dead worker is retried by RQ's abandoned-job handling); it
    is recorded only when no retry is left.

    Meanwhile the job's log records are kept as its log lines (`GET /v1/jobs/{id}/logs`): how
    it started (type and config) and how it ended (with its `duration_s`) come first and last,
    each written before the record changes, so whoever sees the job ended can read its last
    line. The process's own log (JSON lines) gets the same lines, each carrying the job's id,
    user and type; a cancel or a coded failure is one line without a traceback. `config` is the
    payload's, taken with `.get`: a malformed payload still fails inside, coded and final.
    """
    attempt = through_outage(lambda: _attempts(store, job_id), None)
    with (
        ctx.capture_logs(attempt=attempt, loggers=LIBRARY_LOGGERS),
        log_context(job_id=job_id, user_id=ctx.user_id, type=job_type, attempt=attempt),
    ):
        started = {"event": "job.started", "type": job_type, "config": config}
        logger.info("job started: %s", job_type, extra={FIELDS_ATTR: started})
        return _run_and_record(ctx, store, job_id, work)


def _attempts(store: JobStore, job_id: str) -> int | None:
    """Which attempt this is, once the worker has marked the record running."""
    record = store.get(job_id)
    attempts = 0 if record is None else record["attempts"]
    return attempts if attempts > 0 else None


def _run_and_record(
    ctx: JobContext, store: JobStore, job_id: str, work: Callable[[], JSONObject]
) -> JSONObject:
    began = time.monotonic()
    try:
        result = work()
    except TRANSIENT_ERRORS as error:
        if _will_retry():
            logger.warning(
                "job interrupted, RQ will retry it: %r",
                error,
                extra=_ended("job.interrupted", began),
            )
        else:
            _fail(ctx, store, job_id, ModelTrainerError("REDIS_UNAVAILABLE", repr(error)), began)
        raise
    except ModelTrainerError as error:
        if error.code == "TRAINING_PREEMPTED":
            logger.warning("job preempted: %s", error.message, extra=_ended("job.preempted", began))
            _requeue(ctx, store, job_id, error.message)
            raise
        _stop_retries()
        _fail(ctx, store, job_id, error, began)
        raise
    except Exception as error:
        _stop_retries()
        _fail(ctx, store, job_id, coded_failure(error), began)
        raise
    summary = _ended("job.completed", began, outcome_summary(result))
    logger.info("job completed in %.1f s", _since(began), extra=summary)
    patiently(lambda: record_completion(ctx, store, job_id, result))
    return result


def _since(began: float) -> float:
    """Seconds since `began` (a monotonic time), to the millisecond."""
    return round(time.monotonic() - began, 3)


def _ended(event: str, began: float, fields: JSONObject | None = None) -> dict[str, object]:
    """A closing log line's structured fields: what happened, what it gave, how long it took."""
    return {FIELDS_ATTR: {"event": event, **(fields or {}), "duration_s": _since(began)}}


def outcome_summary(result: JSONObject) -> JSONObject:
    """A result's scalar fields, for the completion log line; its lists (outputs, per-token
    scores) stay in the job record."""
    return {
        name: value[:SUMMARY_TEXT_LIMIT] if isinstance(value, str) else value
        for name, value in result.items()
        if not isinstance(value, dict | list)
    }


def _fail(
    ctx: JobContext, store: JobStore, job_id: str, failure: ModelTrainerError, began: float
) -> None:
    """Log how the job ended (one line, no traceback: the code says what happened), then record
    and announce it."""
    code, kind, message = failure.code, failure.kind, failure.message
    ending = "cancelled" if code == "TRAINING_CANCELLED" else "failed"
    error: JSONObject = {"code": code, "kind": kind, "message": message}
    logger.log(
        logging.WARNING if ending == "cancelled" else logging.ERROR,
        "job %s: %s: %s",
        ending,
        code,
        message,
        extra=_ended(f"job.{ending}", began, error),
    )
    record_failure(ctx, store, job_id, code=code, kind=kind, message=message)


def record_completion(ctx: JobContext, store: JobStore, job_id: str, result: JSONObject) -> None:
    """The job's result in its record, then the completed event its followers end on."""
    store.complete(job_id, result=result, now=utc_now())
    show_in_rq(job_id, {"progress": 1.0, "message": COMPLETED_MESSAGE})
    ctx.publish_completed(job_id, len(orjson.dumps(result)))


def _requeue(ctx: JobContext, store: JobStore, job_id: str, message: str) -> None:
    """A preempted job goes back to the queue: RQ requeues it as a retry that does not use up
    the job's retries, our record says `queued`, followers see why (and stay attached)."""
    job = get_current_job()
    if job is not None:
        job.retries_left = (job.retries_left or 0) + 1
    store.requeue(job_id, message)
    show_in_rq(job_id, {"message": message})
    ctx.publish_progress(0.0, message, force=True)


def record_failure(
    ctx: JobContext, store: JobStore, job_id: str, *, code: str, kind: ErrorKind, message: str
) -> None:
    error: JobError = {"code": code, "kind": kind, "message": message}
    status: Literal["failed", "cancelled"] = (
        "cancelled" if code == "TRAINING_CANCELLED" else "failed"
    )
    store.fail(job_id, error=error, status=status, now=utc_now())
    show_in_rq(job_id, {"message": message})
    ctx.publish_failed(_v1_event_kind(kind), code, message)


InferenceJobPayload = EvalJobPayload | ScoreJobPayload | GenerateJobPayload | ExportJobPayload
# A backend function applied to a loaded run; it stops (TRAINING_CANCELLED) once the check says so.
InferenceCall = Callable[["CausalLMBackend", PreparedLMModel, StopCheck], Mapping[str, object]]


def run_inference_job(
    payload: InferenceJobPayload,
    job_type: JobType,
    call: InferenceCall,
    *,
    settings: Settings,
    redis: RedisClient,
) -> JSONObject:
    """Load the run (from this worker's cache when warm) and apply one backend function, which
    polls the job's cancel flag (throttled, and not fatal while Redis is away) as it goes."""
    job_id, user_id = payload["job_id"], payload["user_id"]
    ctx = job_context(redis, job_id=job_id, user_id=user_id, queue=QUEUE_FOR_TYPE[job_type])

    def cancelled() -> bool:
        return through_outage(ctx.cancelled, False)

    def work() -> JSONObject:
        backend, prepared = load_run(payload["run_id"], settings, step=payload.get("step"))
        return to_json_object(call(backend, prepared, cancelled))

    return run_job(
        ctx, JobStore(redis), job_id, work, job_type=job_type, config=payload.get("config")
    )
