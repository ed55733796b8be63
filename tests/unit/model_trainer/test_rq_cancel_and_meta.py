"""RQ agrees with our records: a job whose record ended cancelled is canceled in RQ (not
failed), and a job's progress shows in its RQ meta. A real RQ worker on fakeredis."""

from __future__ import annotations

import fakeredis
import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer
from tests.support.records import queued_record
from tests.support.rq_jobs import PROGRESS_MESSAGE

from model_trainer.storage.job_store import JobStore
from model_trainer.worker.rq_meta import show_in_rq
from model_trainer.worker.worker_entry import make_worker
from platform_workers.redis_conn import RedisClient

ENDS_WITH = "tests.support.rq_jobs.ends_with"


@pytest.fixture
def redis() -> RedisClient:
    return fakeredis.FakeRedis()


def _run(redis: RedisClient, job_id: str, code: str, *, cancelled_in_rq: bool = False) -> Job:
    """One job through the infer worker, as the API would have queued it."""
    JobStore(redis).create(queued_record(job_id, "generate", "run-1"))
    queue = Queue("infer", connection=redis, serializer=JSONSerializer)
    queue.enqueue(ENDS_WITH, job_id, code, cancelled_in_rq=cancelled_in_rq, job_id=job_id)
    make_worker("infer", redis).work(burst=True)
    return Job.fetch(job_id, connection=redis, serializer=JSONSerializer)


def _registries(redis: RedisClient, job_id: str) -> list[str]:
    held = {
        "started": StartedJobRegistry("infer", connection=redis),
        "failed": FailedJobRegistry("infer", connection=redis),
        "canceled": CanceledJobRegistry("infer", connection=redis),
    }
    return [name for name, registry in held.items() if job_id in registry.get_job_ids()]


def test_a_job_that_ends_cancelled_is_canceled_in_rq(redis: RedisClient) -> None:
    job = _run(redis, "c1", "TRAINING_CANCELLED")
    record = JobStore(redis).get("c1")
    assert record is not None and record["status"] == "cancelled"
    assert job.get_status() == JobStatus.CANCELED
    assert _registries(redis, "c1") == ["canceled"]
    assert job.ended_at is not None and job.started_at is not None
    assert job.ended_at >= job.started_at
    assert job.get_meta() == {
        "progress": 0.3,
        "message": "TRAINING_CANCELLED at step 3",
        "step": 3,
    }


def test_a_job_the_api_cancelled_in_rq_as_it_started_ends_canceled_once(
    redis: RedisClient,
) -> None:
    job = _run(redis, "c2", "TRAINING_CANCELLED", cancelled_in_rq=True)
    assert job.get_status() == JobStatus.CANCELED
    assert _registries(redis, "c2") == ["canceled"]
    assert CanceledJobRegistry("infer", connection=redis).get_job_ids().count("c2") == 1


def test_any_other_failure_stays_failed_in_rq(redis: RedisClient) -> None:
    job = _run(redis, "f1", "CORPUS_EMPTY")
    record = JobStore(redis).get("f1")
    assert record is not None and record["status"] == "failed"
    assert job.get_status() == JobStatus.FAILED
    assert _registries(redis, "f1") == ["failed"]
    latest = job.latest_result()
    assert latest is not None and latest.exc_string is not None
    assert "CORPUS_EMPTY at step 3" in latest.exc_string


def test_a_completed_job_shows_its_records_end_in_its_meta(redis: RedisClient) -> None:
    JobStore(redis).create(queued_record("ok", "generate", "run-1"))
    queue = Queue("infer", connection=redis, serializer=JSONSerializer)
    queue.enqueue("tests.support.rq_jobs.completes", "ok", job_id="ok")
    make_worker("infer", redis).work(burst=True)
    job = Job.fetch("ok", connection=redis, serializer=JSONSerializer)
    record = JobStore(redis).get("ok")
    assert record is not None
    assert job.get_status() == JobStatus.FINISHED
    assert job.get_meta() == {
        "progress": record["progress"],
        "message": record["message"],
        "step": 3,
    }
    assert (record["progress"], record["message"]) == (1.0, "completed")


def test_progress_is_merged_into_the_running_jobs_meta(redis: RedisClient) -> None:
    job = Job.create(
        "model_trainer.worker.rq_meta.show_in_rq",
        args=("m1", {"message": PROGRESS_MESSAGE, "step": 3}),
        id="m1",
        meta={"kept": "yes"},
        connection=redis,
        serializer=JSONSerializer,
    )
    job.save()
    job.perform()
    assert Job.fetch("m1", connection=redis, serializer=JSONSerializer).get_meta() == {
        "kept": "yes",
        "message": PROGRESS_MESSAGE,
        "step": 3,
    }


def test_outside_that_job_nothing_is_written(redis: RedisClient) -> None:
    """A job function called directly, or the maintenance thread ending another job."""
    show_in_rq("m2", {"message": "nobody's"})
    other = Job.create(
        "model_trainer.worker.rq_meta.show_in_rq",
        args=("m2", {"message": "not mine"}),
        id="m3",
        connection=redis,
        serializer=JSONSerializer,
    )
    other.save()
    other.perform()
    assert Job.fetch("m3", connection=redis, serializer=JSONSerializer).get_meta() == {}
    assert not redis.exists(Job.key_for("m2"))
