"""Versioned job lifecycle events, so any subscriber can follow a trainer job without our code.

Decoders drop fields they do not know: a newer producer's additive field never breaks an older
subscriber, while a changed meaning gets a new version suffix. `ts` (when the event was
published, `event_time`) is such an additive field: every make_* sets it, and an event from a
publisher older than it decodes without it.
"""

from collections.abc import Callable
from typing import Literal, NotRequired, TypedDict, TypeGuard, TypeVar

from platform_core.event_time import check_event_time, event_time, received_time
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
    ts: NotRequired[str]
    queue: str


class JobProgressV1(TypedDict):
    """The job moved forward; progress is the done fraction in [0, 1]."""

    type: Literal["trainer.job.progress.v1"]
    job_id: str
    user_id: int
    ts: NotRequired[str]
    progress: float
    message: str
    payload: NotRequired[JSONObject]


class JobCompletedV1(TypedDict):
    """The job finished and stored its result."""

    type: Literal["trainer.job.completed.v1"]
    job_id: str
    user_id: int
    ts: NotRequired[str]
    result_id: str
    result_bytes: int


class JobFailedV1(TypedDict):
    """The job stopped with an error; error_kind says whose fault it was."""

    type: Literal["trainer.job.failed.v1"]
    job_id: str
    user_id: int
    ts: NotRequired[str]
    error_kind: ErrorKind
    code: str
    message: str


JobEventV1 = JobStartedV1 | JobProgressV1 | JobCompletedV1 | JobFailedV1
_EventT = TypeVar("_EventT", JobStartedV1, JobProgressV1, JobCompletedV1, JobFailedV1)


def _stamped(event: _EventT, ts: str | None) -> _EventT:
    """Every event says when it was published: now, unless the caller names the time."""
    event["ts"] = event_time() if ts is None else check_event_time(ts)
    return event


def _as_received(event: _EventT, obj: JSONObject) -> _EventT:
    """Decoders build through make_*, which stamps now: a decoded event keeps its publisher's
    `ts` instead, and one from a publisher older than `ts` stays without (never the reader's
    clock)."""
    ts = received_time(obj)
    if ts is None:
        del event["ts"]
    else:
        event["ts"] = ts
    return event


def make_started_event(
    *, job_id: str, user_id: int, queue: str, ts: str | None = None
) -> JobStartedV1:
    """Builds the event a worker publishes when it starts a job."""
    event: JobStartedV1 = {
        "type": "trainer.job.started.v1",
        "job_id": job_id,
        "user_id": user_id,
        "queue": queue,
    }
    return _stamped(event, ts)


def make_progress_event(
    *,
    job_id: str,
    user_id: int,
    progress: float,
    message: str,
    payload: JSONObject | None = None,
    ts: str | None = None,
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
    return _stamped(event, ts)


def make_completed_event(
    *, job_id: str, user_id: int, result_id: str, result_bytes: int, ts: str | None = None
) -> JobCompletedV1:
    """Builds the event a worker publishes once the job's result is stored."""
    if result_bytes < 0:
        raise PayloadError("result_bytes", f"field 'result_bytes' must be >= 0, got {result_bytes}")
    event: JobCompletedV1 = {
        "type": "trainer.job.completed.v1",
        "job_id": job_id,
        "user_id": user_id,
        "result_id": result_id,
        "result_bytes": result_bytes,
    }
    return _stamped(event, ts)


def make_failed_event(
    *,
    job_id: str,
    user_id: int,
    error_kind: ErrorKind,
    code: str,
    message: str,
    ts: str | None = None,
) -> JobFailedV1:
    """Builds the event a worker publishes when the job ends in an error."""
    event: JobFailedV1 = {
        "type": "trainer.job.failed.v1",
        "job_id": job_id,
        "user_id": user_id,
        "error_kind": error_kind,
        "code": code,
        "message": message,
    }
    return _stamped(event, ts)


def _decode_started(obj: JSONObject) -> JobStartedV1:
    return _as_received(
        make_started_event(
            job_id=require_str(obj, "job_id"),
            user_id=require_int(obj, "user_id"),
            queue=require_str(obj, "queue"),
        ),
        obj,
    )


def _decode_progress(obj: JSONObject) -> JobProgressV1:
    return _as_received(
        make_progress_event(
            job_id=require_str(obj, "job_id"),
            user_id=require_int(obj, "user_id"),
            progress=require_float(obj, "progress"),
            message=require_str(obj, "message"),
            payload=optional_object(obj, "payload"),
        ),
        obj,
    )


def _decode_completed(obj: JSONObject) -> JobCompletedV1:
    return _as_received(
        make_completed_event(
            job_id=require_str(obj, "job_id"),
            user_id=require_int(obj, "user_id"),
            result_id=require_str(obj, "result_id"),
            result_bytes=require_int(obj, "result_bytes"),
        ),
        obj,
    )


def _decode_failed(obj: JSONObject) -> JobFailedV1:
    return _as_received(
        make_failed_event(
            job_id=require_str(obj, "job_id"),
            user_id=require_int(obj, "user_id"),
            error_kind=require_literal(obj, "error_kind", ERROR_KINDS),
            code=require_str(obj, "code"),
            message=require_str(obj, "message"),
        ),
        obj,
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
