"""run_job: a coded failure keeps its precise kind in the record, in the v1 event's terms."""

import errno
import time
from collections.abc import Callable

import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.timeouts import JobTimeoutException

from model_trainer.contracts.jobs import DOMAIN, QUEUE_FOR_TYPE, ErrorKind, JobRecord, JobStatus
from model_trainer.errors import ModelTrainerError, ModelTrainerErrorCode
from model_trainer.storage.job_store import JobStore
from model_trainer.worker import job_utils
from model_trainer.worker.job_utils import (
    coded_failure,
    job_context,
    patiently,
    run_job,
    through_outage,
)
from model_trainer.worker.worker_entry import make_worker
from platform_core.job_events import ErrorKind as EventErrorKind
from platform_core.job_events import decode_job_event, is_failed
from platform_core.json_types import JSONObject
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient


def _record(job_id: str) -> JobRecord:
    return {
        "job_id": job_id,
        "user_id": 1,
        "type": "train",
        "queue": QUEUE_FOR_TYPE["train"],
        "status": "running",
        "progress": 0.0,
        "message": "",
        "attempts": 1,
        "created_at": "2026-11-01T00:00:00+00:00",
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "run_id": "run-1",
        "result": None,
        "error": None,
        "priority": "normal",
        "origin": None,
    }


# What run_job logs as the job's start, with its type.
CONFIG = {"max_steps": 1}


@pytest.fixture
def redis() -> RedisClient:
    return fakeredis.FakeRedis()


@pytest.mark.parametrize(
    ("code", "kind", "event_kind", "status"),
    [
        ("TRAINING_OOM", "resource", "system", "failed"),
        ("CUDA_OOM", "resource", "system", "failed"),
        ("CORPUS_EMPTY", "user", "user", "failed"),
        ("TRAINING_CANCELLED", "user", "user", "cancelled"),
        ("MODEL_LOAD_FAILED", "system", "system", "failed"),
    ],
)
def test_a_coded_failure_records_its_kind_and_announces_the_v1_kind(
    redis: RedisClient,
    code: ModelTrainerErrorCode,
    kind: ErrorKind,
    event_kind: EventErrorKind,
    status: JobStatus,
) -> None:
    store = JobStore(redis)
    store.create(_record("j1"))
    ctx = job_context(redis, job_id="j1", user_id=1, queue=QUEUE_FOR_TYPE["train"])

    def work() -> JSONObject:
        raise ModelTrainerError(code, "it stopped")

    with pytest.raises(ModelTrainerError):
        run_job(ctx, store, "j1", work, job_type="train", config=CONFIG)
    record = store.get("j1")
    assert record is not None
    assert record["status"] == status
    assert record["error"] == {"code": code, "kind": kind, "message": "it stopped"}
    event = decode_job_event(read_events(redis, DOMAIN, "j1")[-1][1])
    assert is_failed(event)
    assert (event["error_kind"], event["code"]) == (event_kind, code)


@pytest.mark.parametrize(
    ("error", "code", "kind"),
    [
        (MemoryError(), "RESOURCE_EXHAUSTED", "resource"),
        (
            RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"),
            "RESOURCE_EXHAUSTED",
            "resource",
        ),
        (
            RuntimeError("DefaultCPUAllocator: can't allocate memory"),
            "RESOURCE_EXHAUSTED",
            "resource",
        ),
        (OSError(errno.ENOSPC, "No space left on device"), "RESOURCE_EXHAUSTED", "resource"),
        (OSError(errno.EACCES, "Permission denied"), "INTERNAL_ERROR", "system"),
        (
            RuntimeError("value cannot be converted to type float without overflow"),
            "UNSUPPORTED_VALUE",
            "user",
        ),
        (ValueError("Overflow when unpacking long long"), "UNSUPPORTED_VALUE", "user"),
        (ZeroDivisionError("division by zero"), "UNSUPPORTED_VALUE", "user"),
        (RuntimeError("shape mismatch"), "INTERNAL_ERROR", "system"),
        (KeyError("run_id"), "INTERNAL_ERROR", "system"),
        (
            JobTimeoutException("Task exceeded maximum timeout value (1 seconds)"),
            "JOB_TIMEOUT",
            "resource",
        ),
        (ModelTrainerError("CORPUS_EMPTY", "empty"), "CORPUS_EMPTY", "user"),
    ],
)
def test_every_failure_of_the_work_gets_a_final_code(
    error: Exception, code: ModelTrainerErrorCode, kind: ErrorKind
) -> None:
    failure = coded_failure(error)
    assert (failure.code, failure.kind) == (code, kind)
    assert failure is error or str(error) in failure.message or repr(error) in failure.message


class _RQJob:
    """The two attributes run_job reads from RQ's current job."""

    def __init__(self, retries_left: int) -> None:
        self.retries_left = retries_left

    @property
    def should_retry(self) -> bool:
        return self.retries_left > 0


def _failing(error: Exception) -> Callable[[], JSONObject]:
    def work() -> JSONObject:
        raise error

    return work


def test_a_failure_of_the_work_is_final_even_with_retries_left(
    redis: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    rq_job = _RQJob(retries_left=2)
    monkeypatch.setattr(job_utils, "get_current_job", lambda: rq_job)
    store = JobStore(redis)
    store.create(_record("j2"))
    ctx = job_context(redis, job_id="j2", user_id=1, queue=QUEUE_FOR_TYPE["train"])
    with pytest.raises(ValueError, match="Overflow"):
        run_job(
            ctx,
            store,
            "j2",
            _failing(ValueError("Overflow when unpacking long long")),
            job_type="train",
            config=CONFIG,
        )
    assert rq_job.retries_left == 0
    record = store.get("j2")
    assert record is not None and record["error"] is not None
    assert (record["status"], record["error"]["code"]) == ("failed", "UNSUPPORTED_VALUE")


def test_a_lost_redis_connection_is_left_to_rqs_retries(
    redis: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    rq_job = _RQJob(retries_left=1)
    monkeypatch.setattr(job_utils, "get_current_job", lambda: rq_job)
    store = JobStore(redis)
    store.create(_record("j3"))
    ctx = job_context(redis, job_id="j3", user_id=1, queue=QUEUE_FOR_TYPE["train"])
    with pytest.raises(RedisConnectionError):
        run_job(
            ctx,
            store,
            "j3",
            _failing(RedisConnectionError("Connection refused")),
            job_type="train",
            config=CONFIG,
        )
    assert rq_job.retries_left == 1
    record = store.get("j3")
    assert record is not None and (record["status"], record["error"]) == ("running", None)
    rq_job.retries_left = 0
    with pytest.raises(RedisConnectionError):
        run_job(
            ctx,
            store,
            "j3",
            _failing(RedisConnectionError("Connection refused")),
            job_type="train",
            config=CONFIG,
        )
    record = store.get("j3")
    assert record is not None and record["error"] is not None
    assert (record["status"], record["error"]["code"]) == ("failed", "REDIS_UNAVAILABLE")


def test_a_result_is_recorded_patiently_through_a_short_outage() -> None:
    failures = iter([RedisConnectionError("down"), RedisConnectionError("still down")])

    def record() -> str:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return "recorded"

    assert patiently(record, patience_s=5.0) == "recorded"


def test_patience_runs_out_with_the_last_error() -> None:
    calls: list[int] = []

    def record() -> None:
        calls.append(1)
        raise RedisConnectionError("down for good")

    started = time.monotonic()
    with pytest.raises(RedisConnectionError, match="down for good"):
        patiently(record, patience_s=0.5)
    assert len(calls) >= 2
    assert time.monotonic() - started < 1.0


def test_side_channel_calls_carry_on_through_an_outage() -> None:
    def poll() -> bool:
        raise RedisConnectionError("down")

    assert through_outage(poll, False) is False
    assert through_outage(lambda: True, False) is True


def test_a_preempted_training_goes_back_to_the_queue_without_using_a_retry(
    redis: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    rq_job = _RQJob(retries_left=2)
    monkeypatch.setattr(job_utils, "get_current_job", lambda: rq_job)
    store = JobStore(redis)
    store.create(_record("j4"))
    ctx = job_context(redis, job_id="j4", user_id=1, queue=QUEUE_FOR_TYPE["train"])
    preempted = ModelTrainerError("TRAINING_PREEMPTED", "worker shutting down; back in the queue")
    with pytest.raises(ModelTrainerError):
        run_job(ctx, store, "j4", _failing(preempted), job_type="train", config=CONFIG)
    assert rq_job.retries_left == 3  # RQ's retry takes one back: the budget is unchanged
    record = store.get("j4")
    assert record is not None
    assert (record["status"], record["error"]) == ("queued", None)
    assert record["message"] == "worker shutting down; back in the queue"
    event = decode_job_event(read_events(redis, DOMAIN, "j4")[-1][1])
    assert event["type"] == "trainer.job.progress.v1"


def test_a_preempted_job_outside_rq_is_still_recorded_as_queued(redis: RedisClient) -> None:
    store = JobStore(redis)
    store.create(_record("j5"))
    ctx = job_context(redis, job_id="j5", user_id=1, queue=QUEUE_FOR_TYPE["train"])
    preempted = ModelTrainerError("TRAINING_PREEMPTED", "worker shutting down; back in the queue")
    with pytest.raises(ModelTrainerError):
        run_job(ctx, store, "j5", _failing(preempted), job_type="train", config=CONFIG)
    record = store.get("j5")
    assert record is not None and record["status"] == "queued"


def test_a_job_function_reuses_its_workers_connection_and_opens_one_outside_a_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redis = fakeredis.FakeRedis()
    JobStore(redis).create({**_record("job-1"), "status": "queued", "attempts": 0})
    queue = Queue("infer", connection=redis, serializer=JSONSerializer)
    queue.enqueue(
        "tests.support.rq_jobs.uses_the_workers_connection", {"user_id": 1}, job_id="job-1"
    )
    make_worker("infer", redis).work(burst=True)
    assert Job.fetch("job-1", connection=redis, serializer=JSONSerializer).return_value() is True

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/3")
    settings, client = job_utils.connect()
    assert settings["redis_url"] == "redis://127.0.0.1:1/3"
    assert client.connection_pool.connection_kwargs["db"] == 3
