"""Schedule records as `POST /v1/schedules` stores them, for tests below the HTTP layer."""

from __future__ import annotations

import uuid

from model_trainer.contracts.jobs import JobType
from model_trainer.storage.schedules import ScheduleRecord
from platform_core.json_types import JSONObject

CREATED = "2026-01-01T00:00:00.000000+00:00"


def schedule_record(
    *,
    request: JSONObject,
    job_type: JobType = "train",
    key_id: str = "a" * 12,
    user_id: int = 1,
    cron: str | None = None,
    interval_s: int | None = None,
    created_at: str = CREATED,
    last_fired_at: str | None = None,
) -> ScheduleRecord:
    """A new, active schedule; interval_s 60 unless cron or interval_s is given."""
    return {
        "schedule_id": uuid.uuid4().hex,
        "user_id": user_id,
        "key_id": key_id,
        "name": None,
        "job_type": job_type,
        "request": request,
        "cron": cron,
        "interval_s": 60 if cron is None and interval_s is None else interval_s,
        "paused": False,
        "created_at": created_at,
        "last_fired_at": last_fired_at,
        "fired": 0,
        "refused": 0,
    }
