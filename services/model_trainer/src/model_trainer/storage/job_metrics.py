"""How jobs ended, counted in Redis by whichever process ends them, read by `GET /metrics`.

Every job ends through `JobStore.complete` or `JobStore.fail` (a worker, the reconciler, the
API cancelling a queued job), on any machine: counting there, in Redis, makes the figures the
same whichever API process is scraped, with no port on the workers. Two hashes
(`keys.jobs_ended_key`, `keys.job_durations_key`) hold fields named `{type}|{status}|{part}`:

- ended: `part` is the error code (empty for a completed job), the value how many ended so
- durations: `part` is a bucket's index (`DURATION_BUCKETS[i]` is its upper bound, one past the
  last is +Inf: jobs whose run time fell there, not cumulative) or `sum` (seconds)

A job's run time is from its first start to its end (retries included); a job cancelled before
it started has none.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator

from typing_extensions import TypedDict

from model_trainer.contracts.jobs import DOMAIN, JOB_STATUSES, JOB_TYPES, JobStatus, JobType
from platform_core.json_types import PayloadError
from platform_workers.keys import job_durations_key, jobs_ended_key
from platform_workers.redis_conn import RedisClient, as_text

# Seconds: a generate request takes a fraction of one, a training hours.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
_SEP = "|"


class DurationHistogram(TypedDict):
    """Run times of one (type, status): jobs per bucket (not cumulative) and their sum."""

    buckets: list[int]
    sum_s: float


class JobMetrics(TypedDict):
    ended: dict[tuple[JobType, JobStatus, str], int]
    durations: dict[tuple[JobType, JobStatus], DurationHistogram]


def count_job_end(
    redis: RedisClient,
    *,
    job_type: JobType,
    status: JobStatus,
    code: str,
    duration_s: float | None,
) -> None:
    """Counts one ended job (and its run time, when it ran) in one round trip."""
    pipe = redis.pipeline(transaction=True)
    pipe.hincrby(jobs_ended_key(DOMAIN), _SEP.join((job_type, status, code)), 1)
    if duration_s is not None:
        key = job_durations_key(DOMAIN)
        bucket = bisect.bisect_left(DURATION_BUCKETS, duration_s)
        pipe.hincrby(key, _SEP.join((job_type, status, str(bucket))), 1)
        pipe.hincrbyfloat(key, _SEP.join((job_type, status, "sum")), duration_s)
    pipe.execute()


def read_job_metrics(redis: RedisClient) -> JobMetrics:
    """Everything counted so far, each field's name and value validated."""
    metrics: JobMetrics = {"ended": {}, "durations": {}}
    for name, job_type, status, code, value in _fields(redis, jobs_ended_key(DOMAIN)):
        metrics["ended"][(job_type, status, code)] = _count(name, value)
    for name, job_type, status, part, value in _fields(redis, job_durations_key(DOMAIN)):
        histogram = metrics["durations"].setdefault(
            (job_type, status),
            {"buckets": [0] * (len(DURATION_BUCKETS) + 1), "sum_s": 0.0},
        )
        if part == "sum":
            histogram["sum_s"] = _seconds(name, value)
        elif part.isdigit() and int(part) <= len(DURATION_BUCKETS):
            histogram["buckets"][int(part)] = _count(name, value)
        else:
            raise PayloadError(name, f"job metrics field {name!r}: no part {part!r}")
    return metrics


def _fields(redis: RedisClient, key: str) -> Iterator[tuple[str, JobType, JobStatus, str, str]]:
    """A metrics hash's fields: (name, type, status, part, value)."""
    for raw_name, raw_value in redis.hgetall(key).items():
        name = as_text(raw_name)
        parts = name.split(_SEP)
        types = [known for known in JOB_TYPES if known == parts[0]]
        statuses = [known for known in JOB_STATUSES if len(parts) > 1 and known == parts[1]]
        if len(parts) != 3 or not types or not statuses:
            raise PayloadError(name, f"job metrics field {name!r} is not type|status|part")
        yield name, types[0], statuses[0], parts[2], as_text(raw_value)


def _count(name: str, value: str) -> int:
    if not value.isdigit():
        raise PayloadError(name, f"job metrics field {name!r} must count, got {value!r}")
    return int(value)


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise PayloadError(name, f"job metrics field {name!r} must be seconds, got {value!r}")
    return seconds
