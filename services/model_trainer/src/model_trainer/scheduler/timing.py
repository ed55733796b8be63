"""When a schedule fires: RQ's own CronJob timing (croniter in the local time zone for cron, the
last firing plus `interval_s` for intervals), counted from what the schedule record keeps.

A schedule's next slot is the first one after its base: the time it last fired, or else its
creation. However far back the base lies (the scheduler was down, the schedule was paused),
that is one slot: firing it moves the base to the firing time. So missed slots coalesce into one
catch-up firing, and the schedule continues from there (README, "Schedules").
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from rq.cron import CronJob

from model_trainer.contracts.jobs import QUEUE_FOR_TYPE, WORKER_FUNCTIONS
from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.storage.schedules import ScheduleRecord

CRON_FIELDS = 5
# Five fields never fire twice in one minute; a longer minimum is checked over the first two
# days the expression fires on (its minute and hour fields repeat every day it fires).
_CRON_RESOLUTION_S = 60
_SAMPLED_SPAN = timedelta(days=2)
_CRON_HELP = "minute hour day-of-month month day-of-week, e.g. '0 3 * * *' (03:00 daily)"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def base_of(record: ScheduleRecord) -> datetime:
    """What the next slot is counted from: the last firing, or the schedule's creation."""
    return datetime.fromisoformat(record["last_fired_at"] or record["created_at"])


def cron_job(record: ScheduleRecord) -> CronJob:
    """RQ's CronJob for a schedule, its next slot counted from the record's base. Its function
    and queue name only inform RQ's monitoring: it has no callable, so CronJob.enqueue (and
    RQ's pickle serializer) can never run it."""
    job = CronJob(
        queue_name=QUEUE_FOR_TYPE[record["job_type"]],
        func_name=WORKER_FUNCTIONS[record["job_type"]],
        cron=record["cron"],
        interval=record["interval_s"],
        name=record["schedule_id"],
    )
    job.set_enqueue_time(base_of(record))
    return job


def next_fire_at(record: ScheduleRecord) -> str | None:
    """The next slot (in the past when it is due now), or None while paused."""
    if record["paused"]:
        return None
    slot = cron_job(record).next_enqueue_time
    return None if slot is None else iso(slot)


def checked_cron(expression: str, min_interval_s: int) -> str:
    """The expression with single spaces, refused (INVALID_CONFIG) unless croniter takes its
    five fields and it never fires closer than `min_interval_s` apart."""
    fields = expression.split()
    if len(fields) != CRON_FIELDS:
        raise _invalid(
            "cron", f"cron must have five fields ({_CRON_HELP}), got {quoted(expression)}"
        )
    normalized = " ".join(fields)
    try:
        job = CronJob(queue_name="check", func_name="check", cron=normalized)
    except (ValueError, TypeError) as exc:
        raise _invalid(
            "cron", f"cron {quoted(expression)} is not a valid expression ({_CRON_HELP})"
        ) from exc
    if min_interval_s > _CRON_RESOLUTION_S:
        gap = shortest_gap(job, min_interval_s)
        if gap < min_interval_s:
            raise _invalid(
                "cron",
                f"cron {quoted(expression)} fires {gap:.0f} s apart; schedules fire at most "
                f"every {min_interval_s} s (MIN_SCHEDULE_INTERVAL_S)",
            )
    return normalized


def shortest_gap(job: CronJob, floor_s: float) -> float:
    """The shortest time between consecutive slots over the first two days the job fires on,
    stopping early at one shorter than `floor_s` (each step is at least a minute, so at most
    2 x 1440 steps)."""
    first = current = _next_slot(job)
    shortest = math.inf
    while shortest >= floor_s and current - first <= _SAMPLED_SPAN:
        job.set_enqueue_time(current)
        following = _next_slot(job)
        shortest = min(shortest, (following - current).total_seconds())
        current = following
    return shortest


def _next_slot(job: CronJob) -> datetime:
    """A cron job always has one (RQ types it optional for interval jobs never run)."""
    return job.next_enqueue_time or datetime.max.replace(tzinfo=UTC)


def checked_interval(interval_s: int, min_interval_s: int) -> int:
    if interval_s < min_interval_s:
        raise _invalid(
            "interval_s",
            f"interval_s must be at least {min_interval_s} (MIN_SCHEDULE_INTERVAL_S), "
            f"got {interval_s}",
        )
    return interval_s


def _invalid(field: str, message: str) -> ModelTrainerError:
    return ModelTrainerError("INVALID_CONFIG", message, details={"field": field})
