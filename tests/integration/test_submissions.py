"""The submission script against a real redis-server: the RQ job it writes is the one RQ's own
`Queue.enqueue_call` writes for the same call, and RQ's worker side dequeues it as its own."""

from __future__ import annotations

from datetime import UTC, datetime

from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from tests.unit.model_trainer.test_submissions import FUNC, submission

from model_trainer.api.submit import FAILURE_TTL_S, RESULT_TTL_S
from model_trainer.storage.submissions import submit
from platform_workers.redis_conn import RedisClient

PAYLOAD = {"job_id": "a", "user_id": 7, "config": {"model_family": "char_lstm", "steps": [1, 2]}}


def test_the_script_stores_the_job_hash_rq_itself_stores(redis: RedisClient) -> None:
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    retry, ttl = Retry(max=2), RESULT_TTL_S
    queue.enqueue_call(
        FUNC,
        args=(PAYLOAD,),
        job_id="by-rq",
        timeout=600,
        retry=retry,
        description="d",
        result_ttl=ttl,
        failure_ttl=FAILURE_TTL_S,
    )
    ours = submission(redis, "by-script")
    job = queue.create_job(
        FUNC,
        args=(PAYLOAD,),
        job_id="by-script",
        timeout=600,
        retry=retry,
        description="d",
        status=JobStatus.QUEUED,
        result_ttl=ttl,
        failure_ttl=FAILURE_TTL_S,
    )
    job.enqueued_at = datetime.now(UTC)
    ours["rq_job"] = job
    assert submit(redis, ours, 1000.0)["refusal"] is None
    stored = [redis.hgetall(Job.key_for(job_id)) for job_id in ("by-rq", "by-script")]
    for fields in stored:  # the two were made a moment apart
        del fields[b"created_at"], fields[b"enqueued_at"]
    assert stored[0] == stored[1]
    assert queue.job_ids == ["by-rq", "by-script"]


def test_rqs_worker_side_takes_the_scripts_job_as_its_own(redis: RedisClient) -> None:
    assert submit(redis, submission(redis, "job-1"), 1000.0)["refusal"] is None
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    dequeued = Queue.dequeue_any([queue], None, connection=redis, serializer=JSONSerializer)
    assert dequeued is not None
    job, origin = dequeued
    assert (job.id, origin.name, job.func_name) == ("job-1", "train", FUNC)
    assert list(job.args) == [{"job_id": "job-1"}]
