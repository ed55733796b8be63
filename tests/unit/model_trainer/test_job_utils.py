"""run_job: a coded failure keeps its precise kind in the record, in the v1 event's terms."""

import fakeredis
import pytest

from model_trainer.contracts.jobs import DOMAIN, QUEUE_FOR_TYPE, ErrorKind, JobRecord, JobStatus
from model_trainer.errors import ModelTrainerError, ModelTrainerErrorCode
from model_trainer.storage.job_store import JobStore
from model_trainer.worker.job_utils import job_context, run_job
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
    }


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
        run_job(ctx, store, "j1", work)
    record = store.get("j1")
    assert record is not None
    assert record["status"] == status
    assert record["error"] == {"code": code, "kind": kind, "message": "it stopped"}
    event = decode_job_event(read_events(redis, DOMAIN, "j1")[-1][1])
    assert is_failed(event)
    assert (event["error_kind"], event["code"]) == (event_kind, code)
