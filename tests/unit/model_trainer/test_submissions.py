"""The submission script: a job is refused with nothing written, or counted, claimed, recorded
and on its RQ queue at once."""

from __future__ import annotations

import fakeredis
import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from model_trainer.api.admission import active_key, depth_keys
from model_trainer.contracts.jobs import DOMAIN, JobRecord
from model_trainer.storage.api_keys import create_key, key_proof, revoke_key
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.owners import corpora_key, owners_key
from model_trainer.storage.submissions import (
    Claim,
    RQCall,
    Submission,
    outcome,
    rq_fields,
    rq_job,
    submit,
)
from platform_workers.keys import active_jobs_key, user_index_key
from platform_workers.redis_conn import RedisClient

USER = 7
FUNC = "model_trainer.worker.train_job.process_train_job"
CALL: RQCall = {
    "queue": "train",
    "func": FUNC,
    "timeout": 60,
    "retries": 0,
    "result_ttl": 500,
    "failure_ttl": 600,
}


@pytest.fixture
def redis() -> RedisClient:
    return fakeredis.FakeRedis()


def record_of(job_id: str) -> JobRecord:
    return {
        "job_id": job_id,
        "user_id": USER,
        "type": "train",
        "queue": "train",
        "status": "queued",
        "progress": 0.0,
        "message": "queued",
        "attempts": 0,
        "created_at": "2026-12-05T07:00:00.000001+00:00",
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "run_id": f"run-{job_id}",
        "result": None,
        "error": None,
        "priority": "normal",
        "origin": {"kind": "schedule", "id": "nightly", "trial": None},
    }


def submission(
    redis: RedisClient,
    job_id: str = "job-1",
    *,
    claim: Claim | None = None,
    corpus: str | None = None,
    max_depth: int = 10,
    max_active: int = 2,
) -> Submission:
    job = rq_job(CALL, {"job_id": job_id}, job_id=job_id, description=f"train {job_id}")
    return {
        "record": record_of(job_id),
        "active_key": active_key(USER, "train"),
        "depth_keys": depth_keys("train"),
        "max_depth": max_depth,
        "max_active": max_active,
        "claim": claim,
        "corpus": None if corpus is None else (corpora_key(USER), corpus),
        "rq_job": job,
        "key_proof": None,
    }


def run_claim(*, refuse_unclaimed: bool = False) -> Claim:
    return {"owners_key": owners_key("run"), "name": "run-1", "refuse_unclaimed": refuse_unclaimed}


def nothing_written(redis: RedisClient, job_id: str = "job-1") -> bool:
    return (
        JobStore(redis).get(job_id) is None
        and redis.zcard(active_key(USER, "train")) == 0
        and Queue("train", connection=redis).count == 0
        and not redis.exists(Job.key_for(job_id))
    )


def test_an_admitted_job_is_counted_recorded_indexed_and_queued_for_rq(
    redis: RedisClient,
) -> None:
    assert submit(redis, submission(redis), 1000.0) == {"refusal": None, "count": 1}
    assert JobStore(redis).get("job-1") == record_of("job-1")
    assert redis.zscore(user_index_key(DOMAIN, USER), "job-1") == 1796454000000001
    assert redis.zscore(active_jobs_key(DOMAIN), "job-1") == 1796454000000001
    assert redis.zscore(active_key(USER, "train"), "job-1") == 1000.0
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    assert queue.job_ids == ["job-1"]
    assert redis.sismember(Queue.redis_queues_keys, queue.key)
    job = Job.fetch("job-1", connection=redis, serializer=JSONSerializer)
    assert (job.func_name, list(job.args), job.timeout) == (FUNC, [{"job_id": "job-1"}], 60)
    assert (job.get_status(), job.origin) == (JobStatus.QUEUED, "train")


def test_a_full_queue_class_refuses_counting_every_priority(redis: RedisClient) -> None:
    redis.rpush(Queue("train-high", connection=redis).key, "other")
    refused = submit(redis, submission(redis, max_depth=1), 1000.0)
    assert refused == {"refusal": "QUEUE_FULL", "count": 1}
    redis.delete(Queue("train-high", connection=redis).key)
    assert nothing_written(redis)


def test_a_user_at_their_limit_is_refused_with_their_count(redis: RedisClient) -> None:
    redis.zadd(active_key(USER, "train"), {"older": 1.0})
    refused = submit(redis, submission(redis, max_active=1), 1000.0)
    assert refused == {"refusal": "QUOTA_EXCEEDED", "count": 1}
    assert redis.zrange(active_key(USER, "train"), 0, -1) == [b"older"]
    assert JobStore(redis).get("job-1") is None


def test_an_id_another_user_holds_is_taken(redis: RedisClient) -> None:
    redis.hset(owners_key("run"), "run-1", 8)
    refused = submit(redis, submission(redis, claim=run_claim()), 1000.0)
    assert refused == {"refusal": "ID_TAKEN", "count": 0}
    assert nothing_written(redis)
    assert redis.hget(owners_key("run"), "run-1") == b"8"


def test_an_unclaimed_id_on_disk_is_taken_unless_the_caller_may_have_it(
    redis: RedisClient,
) -> None:
    refused = submit(redis, submission(redis, claim=run_claim(refuse_unclaimed=True)), 1000.0)
    assert refused == {"refusal": "ID_TAKEN", "count": 0}
    assert nothing_written(redis)
    assert submit(redis, submission(redis, claim=run_claim()), 1000.0)["refusal"] is None
    assert redis.hget(owners_key("run"), "run-1") == b"7"


def test_the_callers_own_id_is_theirs_again(redis: RedisClient) -> None:
    redis.hset(owners_key("run"), "run-1", USER)
    claim = run_claim(refuse_unclaimed=True)
    assert submit(redis, submission(redis, claim=claim), 1000.0)["refusal"] is None


def test_a_corpus_that_is_not_the_users_upload_is_not_found(redis: RedisClient) -> None:
    refused = submit(redis, submission(redis, corpus="c" * 64), 1000.0)
    assert refused == {"refusal": "CORPUS_NOT_FOUND", "count": 0}
    assert nothing_written(redis)
    redis.hset(corpora_key(USER), "c" * 64, 10)
    assert submit(redis, submission(redis, corpus="c" * 64), 1000.0)["refusal"] is None


def test_a_key_proof_that_no_longer_holds_is_unauthenticated(redis: RedisClient) -> None:
    key = create_key(redis, "alice")
    job = submission(redis)
    job["key_proof"] = key_proof(key, key["key"])
    assert revoke_key(redis, key["key_id"])
    assert submit(redis, job, 1000.0) == {"refusal": "UNAUTHENTICATED", "count": 0}
    assert nothing_written(redis)
    job["key_proof"] = key_proof(key, key["key"][:-1] + "x")  # a forged secret never held
    assert submit(redis, job, 1000.0)["refusal"] == "UNAUTHENTICATED"


def test_a_key_proof_that_holds_admits_the_job(redis: RedisClient) -> None:
    key = create_key(redis, "alice")
    job = submission(redis)
    job["key_proof"] = key_proof(key, key["key"])
    assert submit(redis, job, 1000.0)["refusal"] is None
    assert JobStore(redis).get("job-1") is not None


@pytest.mark.parametrize("reply", [None, [b"OK"], [b"OK", b"1"], [b"NOPE", 0]])
def test_a_reply_the_script_never_gives_is_an_error(reply: object) -> None:
    with pytest.raises(TypeError, match="submission script replied"):
        outcome(reply)


def test_rq_fields_keep_binary_apart_and_refuse_what_rq_never_writes(redis: RedisClient) -> None:
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    text, binary = rq_fields(queue.create_job(FUNC, args=(), job_id="job-1", timeout=60))
    assert (text["timeout"], text["origin"]) == ("60", "train")
    assert binary[0] == "data" and isinstance(binary[1], bytes)
    odd = Queue("train", connection=redis, serializer=JSONSerializer, job_class=FloatJob)
    with pytest.raises(TypeError, match="field 'ttl' has a float value"):
        rq_fields(odd.create_job(FUNC, args=(), job_id="job-2"))


class FloatJob(Job):
    """A job whose RQ would write a float: stored by the script it would read back otherwise."""

    def to_dict(self, include_meta: bool = True, include_result: bool = True) -> dict[str, object]:
        return {**super().to_dict(include_meta, include_result), "ttl": 1.5}
