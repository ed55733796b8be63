"""A firing: one due slot of a schedule, submitted as an ordinary job by the schedule's owner.

The job goes through the API's own submit functions, so keys, quotas, ownership and limits apply
as to any submission, and its record names the schedule (`origin`). Whatever the outcome, the
job's id or the refusal's code and message, it is recorded on the schedule: a refused firing is
never lost silently.
"""

from __future__ import annotations

import logging
from datetime import datetime

from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from model_trainer.api import SubmitContext
from model_trainer.api.job_requests import KEPT_REQUESTS
from model_trainer.contracts.jobs import JobOrigin
from model_trainer.errors import ModelTrainerError
from model_trainer.scheduler.timing import iso
from model_trainer.storage.api_keys import key_principal
from model_trainer.storage.schedules import Firing, ScheduleRecord, ScheduleStore

logger = logging.getLogger(__name__)
# Redis out of reach: the scheduler waits for it; any other failure is recorded on the schedule.
REDIS_AWAY = (RedisConnectionError, RedisTimeoutError, BusyLoadingError)


def fire(
    ctx: SubmitContext,
    store: ScheduleStore,
    record: ScheduleRecord,
    *,
    slot: datetime,
    now: datetime,
) -> Firing | None:
    """Claims the slot, submits, records the outcome. None when the slot was not ours to fire:
    another scheduler claimed it, or the schedule was paused or deleted meanwhile."""
    schedule_id = record["schedule_id"]
    if not store.claim(schedule_id, since=record["last_fired_at"], fired_at=iso(now)):
        return None
    firing: Firing = {
        "scheduled_for": iso(slot),
        "fired_at": iso(now),
        "job_id": None,
        "error": None,
    }
    try:
        firing["job_id"] = _submit(ctx, record)
    except ModelTrainerError as exc:
        firing["error"] = {"code": exc.code, "message": exc.message}
    except REDIS_AWAY:
        raise  # the scheduler's loop waits for Redis; the slot stays claimed
    except Exception as exc:  # a bug in one submission must not stop every other schedule
        logger.exception("schedule %s: submission failed", schedule_id)
        firing["error"] = {
            "code": "INTERNAL_ERROR",
            "message": f"internal error ({type(exc).__name__})",
        }
    store.record_firing(schedule_id, firing)
    logger.info(
        "schedule %s fired for %s: %s",
        schedule_id,
        firing["scheduled_for"],
        firing["job_id"] or firing["error"],
    )
    return firing


def _submit(ctx: SubmitContext, record: ScheduleRecord) -> str:
    """The new job's id, submitted as the key that created the schedule."""
    caller = key_principal(ctx["redis"], record["key_id"])
    if caller is None:
        raise ModelTrainerError(
            "UNAUTHENTICATED",
            f"the API key {record['key_id']} this schedule was created with has been revoked; "
            "delete the schedule and create it again with a valid key",
        )
    origin: JobOrigin = {"kind": "schedule", "id": record["schedule_id"], "trial": None}
    submitted = KEPT_REQUESTS[record["job_type"]].submit(ctx, caller, record["request"], origin)
    return submitted["job_id"]
