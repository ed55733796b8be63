"""The submission script against a real redis-server: the RQ job it writes is the one RQ's own
`Queue.enqueue_call` writes for the same call, and RQ's worker side dequeues it as its own."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import orjson
from rq import Queue, Retry
from rq.job import Job
from rq.serializers import JSONSerializer
from tests.unit.model_trainer.test_submissions import FUNC, submission

from model_trainer.api.submit import FAILURE_TTL_S, RESULT_TTL_S
from model_trainer.storage.submissions import RQCall, rq_job, submit
from platform_workers.redis_conn import RedisClient, as_text

PAYLOAD = {"job_id": "a", "user_id": 7, "config": {"model_family": "char_lstm", "steps": [1, 2]}}


def test_the_script_stores_the_job_hash_rq_itself_stores(redis: RedisClient) -> None:
    """Field by field, but for the moments each was made and the call's encoding: RQ compresses
    its JSON, the script stores it plain, and RQ reads both back as the same call."""
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    queue.enqueue_call(
        FUNC,
        args=(PAYLOAD,),
        job_id="by-rq",
        timeout=600,
        retry=Retry(max=2),
        description="d",
        result_ttl=RESULT_TTL_S,
        failure_ttl=FAILURE_TTL_S,
    )
    ours = submission(redis, "by-script")
    call: RQCall = {
        "queue": "train",
        "func": FUNC,
        "timeout": 600,
        "retries": 2,
        "result_ttl": RESULT_TTL_S,
        "failure_ttl": FAILURE_TTL_S,
    }
    ours["rq_job"] = rq_job(call, PAYLOAD, job_id="by-script", description="d")
    assert submit(redis, ours, 1000.0)["refusal"] is None
    stored = [redis.hgetall(Job.key_for(job_id)) for job_id in ("by-rq", "by-script")]
    for fields in stored:
        for moment in (b"created_at", b"enqueued_at"):
            assert datetime.fromisoformat(as_text(fields.pop(moment))) <= datetime.now(UTC)
    compressed, plain = stored[0].pop(b"data"), stored[1].pop(b"data")
    assert isinstance(compressed, bytes)
    assert orjson.loads(zlib.decompress(compressed)) == orjson.loads(plain)
    assert stored[0] == stored[1]
    assert queue.job_ids == ["by-rq", "by-script"]
    fetched = [
        Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
        for job_id in ("by-rq", "by-script")
    ]
    calls = [(job.func_name, list(job.args), job.kwargs) for job in fetched]
    assert calls == [(FUNC, [PAYLOAD], {})] * 2


def test_rqs_worker_side_takes_the_scripts_job_as_its_own(redis: RedisClient) -> None:
    assert submit(redis, submission(redis, "job-1"), 1000.0)["refusal"] is None
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    dequeued = Queue.dequeue_any([queue], None, connection=redis, serializer=JSONSerializer)
    assert dequeued is not None
    job, origin = dequeued
    assert (job.id, origin.name, job.func_name) == ("job-1", "train", FUNC)
    assert list(job.args) == [{"job_id": "job-1"}]
