"""Reconciliation ends every record whose RQ job ended, or vanished, outside the job function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.results import Result
from rq.serializers import JSONSerializer

from model_trainer.contracts.jobs import DOMAIN, JobRecord
from model_trainer.contracts.jobs import JobStatus as RecordStatus
from model_trainer.storage.job_store import JobStore
from model_trainer.worker.reconcile import GRACE_S, reconcile
from platform_core.job_events import decode_job_event, is_completed, is_failed
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD = (NOW - timedelta(seconds=GRACE_S + 1)).isoformat(timespec="microseconds")
YOUNG = (NOW - timedelta(seconds=GRACE_S - 1)).isoformat(timespec="microseconds")


@pytest.fixture
def redis() -> RedisClient:
    return fakeredis.FakeRedis()


def _record(job_id: str, status: RecordStatus = "running", created_at: str = OLD) -> JobRecord:
    return {
        "job_id": job_id,
        "user_id": 7,
        "type": "generate",
        "queue": "infer",
        "status": status,
        "progress": 0.0,
        "message": "",
        "attempts": 1,
        "created_at": created_at,
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "run_id": "run-1",
        "result": None,
        "error": None,
        "priority": "normal",
        "origin": None,
    }


def _enqueue(redis: RedisClient, job_id: str) -> Job:
    queue = Queue("infer", connection=redis, serializer=JSONSerializer)
    return queue.enqueue_call(
        "model_trainer.worker.generate_job.process_generate_job", job_id=job_id
    )


def _last_event(redis: RedisClient, job_id: str) -> str:
    return read_events(redis, DOMAIN, job_id)[-1][1]


def test_a_record_whose_rq_job_vanished_ends_as_worker_lost(redis: RedisClient) -> None:
    store = JobStore(redis)
    store.create(_record("gone"))
    assert reconcile(redis, now=NOW) == ["gone"]
    record = store.get("gone")
    assert record is not None and record["error"] is not None
    assert (record["status"], record["error"]["code"]) == ("failed", "WORKER_LOST")
    assert "no longer holds" in record["error"]["message"]
    event = decode_job_event(_last_event(redis, "gone"))
    assert is_failed(event) and event["code"] == "WORKER_LOST" and event["user_id"] == 7
    assert store.active(created_before=NOW.isoformat()) == []
    assert reconcile(redis, now=NOW) == []


def test_failed_stopped_and_canceled_rq_jobs_end_their_records(redis: RedisClient) -> None:
    store = JobStore(redis)
    for job_id, status in (
        ("failed", JobStatus.FAILED),
        ("stopped", JobStatus.STOPPED),
        ("canceled", JobStatus.CANCELED),
    ):
        store.create(_record(job_id))
        _enqueue(redis, job_id).set_status(status)
    crashed = Job.fetch("failed", connection=redis, serializer=JSONSerializer)
    Result.create(crashed, Result.Type.FAILED, ttl=60, exc_string="Traceback\nKeyError: 'x'\n")
    assert sorted(reconcile(redis, now=NOW)) == ["canceled", "failed", "stopped"]
    failed, stopped, canceled = (store.get(j) for j in ("failed", "stopped", "canceled"))
    assert failed is not None and failed["error"] is not None
    assert failed["error"]["message"] == "RQ failed the job: KeyError: 'x'"
    assert stopped is not None and stopped["error"] is not None
    assert stopped["error"]["code"] == "WORKER_LOST"
    assert "no failure recorded" in stopped["error"]["message"]
    assert canceled is not None and canceled["status"] == "cancelled"
    cancel_event = decode_job_event(_last_event(redis, "canceled"))
    assert is_failed(cancel_event) and cancel_event["error_kind"] == "user"


def test_a_finished_rq_job_gives_its_result_to_a_record_that_missed_it(redis: RedisClient) -> None:
    store = JobStore(redis)
    for job_id, value in (("done", {"outputs": ["To be"]}), ("odd", {1, 2})):
        store.create(_record(job_id))
        job = _enqueue(redis, job_id)
        job.set_status(JobStatus.FINISHED)
        Result.create(job, Result.Type.SUCCESSFUL, ttl=60, return_value=value)
    assert sorted(reconcile(redis, now=NOW)) == ["done", "odd"]
    done, odd = store.get("done"), store.get("odd")
    assert done is not None and (done["status"], done["result"]) == (
        "completed",
        {"outputs": ["To be"]},
    )
    assert is_completed(decode_job_event(_last_event(redis, "done")))
    assert odd is not None and odd["error"] is not None
    assert odd["error"]["message"] == "RQ finished the job but kept no JSON result"


def test_live_young_and_ended_jobs_are_left_alone(redis: RedisClient) -> None:
    store = JobStore(redis)
    store.create(_record("queued", status="queued"))
    _enqueue(redis, "queued")
    store.create(_record("young", created_at=YOUNG))
    store.create(_record("ended"))
    store.fail(
        "ended",
        error={"code": "CORPUS_EMPTY", "kind": "user", "message": "empty"},
        status="failed",
        now=OLD,
    )
    store.create(_record("erased"))
    redis.delete("trainer:job:erased")
    assert reconcile(redis, now=NOW) == []
    queued = store.get("queued")
    assert queued is not None and queued["status"] == "queued"
    assert store.active(created_before=NOW.isoformat()) == ["queued", "young"]
