"""Versioned job lifecycle events, so any subscriber can follow a trainer job without our code.

Decoders drop fields they do not know: a newer producer's additive field never breaks an older
subscriber, while a changed meaning gets a new version suffix.
"""

from collections.abc import Callable
from typing import Literal, NotRequired, TypedDict, TypeGuard

from platform_core.json_types import (
    JSONObject,
    PayloadError,
    dump_json_object,
    load_json_object,
    optional_object,
    require_float,
    require_int,
    require_literal,
    require_str,
)

JobEventType = Literal[
    "trainer.job.started.v1",
    "trainer.job.progress.v1",
    "trainer.job.completed.v1",
    "trainer.job.failed.v1",
]
# The events after which a job's stream has nothing more to say.
TERMINAL_JOB_EVENT_TYPES: frozenset[JobEventType] = frozenset(
    {"trainer.job.completed.v1", "trainer.job.failed.v1"}
)
ErrorKind = Literal["user", "system"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("user", "system")


class JobStartedV1(TypedDict):
    """A worker picked the job up."""

    type: Literal["trainer.job.started.v1"]
    job_id: str
    user_id: int
    queue: str


class JobProgressV1(TypedDict):
    """The job moved forward; progress is the done fraction in [0, 1]."""

    type: Literal["trainer.job.progress.v1"]
    job_id: str
    user_id: int
    progress: float
    message: str
    payload: NotRequired[JSONObject]


class JobCompletedV1(TypedDict):
    """The job finished and stored its result."""

    type: Literal["trainer.job.completed.v1"]
    job_id: str
    user_id: int
    result_id: str
    result_bytes: int


class JobFailedV1(TypedDict):
    """The job stopped with an error; error_kind says whose fault it was."""

    type: Literal["trainer.job.failed.v1"]
    job_id: str
    user_id: int
    error_kind: ErrorKind
    code: str
    message: str


JobEventV1 = JobStartedV1 | JobProgressV1 | JobCompletedV1 | JobFailedV1


def make_started_event(*, job_id: str, user_id: int, queue: str) -> JobStartedV1:
    """Builds the event a worker publishes when it starts a job."""
    return {"type": "trainer.job.started.v1", "job_id": job_id, "user_id": user_id, "queue": queue}


def make_progress_event(
    *,
    job_id: str,
    user_id: int,
    progress: float,
    message: str,
    payload: JSONObject | None = None,
) -> JobProgressV1:
    """Builds a progress event, refusing a fraction outside [0, 1] before anyone sees it."""
    if not 0.0 <= progress <= 1.0:
        raise PayloadError("progress", f"field 'progress' must be within [0, 1], got {progress}")
    event: JobProgressV1 = {
        "type": "trainer.job.progress.v1",
        "job_id": job_id,
        "user_id": user_id,
        "progress": float(progress),
        "message": message,
    }
    if payload is not None:
        event["payload"] = payload
    return event


def make_completed_event(
    *, job_id: str, user_id: int, result_id: str, result_bytes: int
) -> JobCompletedV1:
    """Builds the event a worker publishes once the job's result is stored."""
    if result_bytes < 0:
        raise PayloadError("result_bytes", f"field 'result_bytes' must be >= 0, got {result_bytes}")
    return {
        "type": "trainer.job.completed.v1",
        "job_id": job_id,
        "user_id": user_id,
        "result_id": result_id,
        "result_bytes": result_bytes,
    }


def make_failed_event(
    *, job_id: str, user_id: int, error_kind: ErrorKind, code: str, message: str
) -> JobFailedV1:
    """Builds the event a worker publishes when the job ends in an error."""
    return {
        "type": "trainer.job.failed.v1",
        "job_id": job_id,
        "user_id": user_id,
        "error_kind": error_kind,
        "code": code,
        "message": message,
    }


def _decode_started(obj: JSONObject) -> JobStartedV1:
    return make_started_event(
        job_id=require_str(obj, "job_id"),
        user_id=require_int(obj, "user_id"),
        queue=require_str(obj, "queue"),
    )


def _decode_progress(obj: JSONObject) -> JobProgressV1:
    return make_progress_event(
        job_id=require_str(obj, "job_id"),
        user_id=require_int(obj, "user_id"),
        progress=require_float(obj, "progress"),
        message=require_str(obj, "message"),
        payload=optional_object(obj, "payload"),
    )


def _decode_completed(obj: JSONObject) -> JobCompletedV1:
    return make_completed_event(
        job_id=require_str(obj, "job_id"),
        user_id=require_int(obj, "user_id"),
        result_id=require_str(obj, "result_id"),
        result_bytes=require_int(obj, "result_bytes"),
    )


def _decode_failed(obj: JSONObject) -> JobFailedV1:
    return make_failed_event(
        job_id=require_str(obj, "job_id"),
        user_id=require_int(obj, "user_id"),
        error_kind=require_literal(obj, "error_kind", ERROR_KINDS),
        code=require_str(obj, "code"),
        message=require_str(obj, "message"),
    )


_DECODERS: dict[JobEventType, Callable[[JSONObject], JobEventV1]] = {
    "trainer.job.started.v1": _decode_started,
    "trainer.job.progress.v1": _decode_progress,
    "trainer.job.completed.v1": _decode_completed,
    "trainer.job.failed.v1": _decode_failed,
}
JOB_EVENT_TYPES: tuple[JobEventType, ...] = tuple(_DECODERS)


def encode_job_event(event: JobEventV1) -> str:
    """Serialises an event for pub/sub and the per-job stream."""
    return dump_json_object(event)


def decode_job_event(payload: str | bytes) -> JobEventV1:
    """Validates every known field of a received event and drops the unknown ones."""
    obj = load_json_object(payload)
    event_type = require_literal(obj, "type", JOB_EVENT_TYPES)
    return _DECODERS[event_type](obj)


def is_started(event: JobEventV1) -> TypeGuard[JobStartedV1]:
    """Lets a subscriber read started fields with their types checked."""
    return event["type"] == "trainer.job.started.v1"


def is_progress(event: JobEventV1) -> TypeGuard[JobProgressV1]:
    """Lets a subscriber read progress fields with their types checked."""
    return event["type"] == "trainer.job.progress.v1"


def is_completed(event: JobEventV1) -> TypeGuard[JobCompletedV1]:
    """Lets a subscriber read completed fields with their types checked."""
    return event["type"] == "trainer.job.completed.v1"


def is_failed(event: JobEventV1) -> TypeGuard[JobFailedV1]:
    """Lets a subscriber read the error code of a failed job with its type checked."""
    return event["type"] == "trainer.job.failed.v1"
