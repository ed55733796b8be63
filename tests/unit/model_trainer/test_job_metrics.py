"""Jobs' ends counted in Redis as they are recorded: once per job, by type, status and code,
with run-time histograms."""

from __future__ import annotations

import fakeredis
import pytest
from tests.support.records import queued_record

from model_trainer.contracts.jobs import DOMAIN, JobError
from model_trainer.storage.job_metrics import (
    DURATION_BUCKETS,
    JobMetrics,
    count_job_end,
    read_job_metrics,
)
from model_trainer.storage.job_store import JobStore
from platform_core.json_types import PayloadError
from platform_workers.keys import job_durations_key, jobs_ended_key
from platform_workers.redis_conn import RedisClient

T0 = "2026-01-01T00:00:00+00:00"
CANCELLED: JobError = {"code": "TRAINING_CANCELLED", "kind": "user", "message": "stopped"}


@pytest.fixture
def redis() -> RedisClient:
    return fakeredis.FakeRedis()


def nothing_counted() -> JobMetrics:
    return {"ended": {}, "durations": {}}


def buckets(**counts: int) -> list[int]:
    """Jobs per bucket, by bucket index (`b3=2`: two jobs in the fourth bucket)."""
    per_bucket = [0] * (len(DURATION_BUCKETS) + 1)
    for name, count in counts.items():
        per_bucket[int(name[1:])] = count
    return per_bucket


def test_each_end_is_counted_with_its_run_time_in_its_bucket(redis: RedisClient) -> None:
    assert read_job_metrics(redis) == nothing_counted()
    count_job_end(redis, job_type="train", status="completed", code="", duration_s=0.1)
    count_job_end(redis, job_type="train", status="completed", code="", duration_s=7.0)
    count_job_end(redis, job_type="train", status="completed", code="", duration_s=1e9)
    count_job_end(redis, job_type="score", status="failed", code="X", duration_s=None)
    assert read_job_metrics(redis) == {
        "ended": {("train", "completed", ""): 3, ("score", "failed", "X"): 1},
        "durations": {
            ("train", "completed"): {
                # 0.1 falls on the first bound (le="0.1"); 7 s under 10; 1e9 s past the last.
                "buckets": buckets(b0=1, b6=1, b14=1),
                "sum_s": pytest.approx(1e9 + 7.1),
            }
        },
    }


def test_the_store_counts_a_job_once_as_it_first_ended(redis: RedisClient) -> None:
    store = JobStore(redis)
    store.create(queued_record("done", "generate", "r"))
    store.mark_running("done", now=T0)
    store.complete("done", result={}, now="2026-01-01T00:00:02.5+00:00")
    # The reconciler or a late worker ending it again changes nothing counted.
    store.fail("done", error=CANCELLED, status="cancelled", now="2026-01-01T00:00:09+00:00")
    store.create(queued_record("never-ran", "train", "r2"))
    store.fail("never-ran", error=CANCELLED, status="cancelled", now=T0)
    store.create(queued_record("odd-clock", "eval", "r3"))
    store.mark_running("odd-clock", now="t1")
    store.complete("odd-clock", result={}, now="t2")
    assert read_job_metrics(redis) == {
        "ended": {
            ("generate", "completed", ""): 1,
            ("train", "cancelled", "TRAINING_CANCELLED"): 1,
            ("eval", "completed", ""): 1,
        },
        "durations": {("generate", "completed"): {"buckets": buckets(b4=1), "sum_s": 2.5}},
    }


@pytest.mark.parametrize(
    ("key", "field", "value"),
    [
        ("ended", "train|completed", "1"),
        ("ended", "nope|completed|", "1"),
        ("ended", "train|lost|", "1"),
        ("ended", "train|completed|", "many"),
        ("durations", "train|completed|99", "1"),
        ("durations", "train|completed|le", "1"),
        ("durations", "train|completed|sum", "soon"),
        ("durations", "train|completed|sum", "-1"),
    ],
)
def test_a_field_this_service_never_writes_is_refused_by_name(
    redis: RedisClient, key: str, field: str, value: str
) -> None:
    redis.hset(
        jobs_ended_key(DOMAIN) if key == "ended" else job_durations_key(DOMAIN), field, value
    )
    with pytest.raises(PayloadError) as caught:
        read_job_metrics(redis)
    assert caught.value.field == field
