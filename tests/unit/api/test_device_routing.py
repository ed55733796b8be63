"""GPU routing at submit, on fakeredis: a train job asking for CUDA goes to the CUDA queues and
only while a live CUDA worker listens there (else 503 NO_CUDA_WORKER, nothing stored); every
other job goes to the ordinary queues; depth limits, /readyz and /metrics see both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest
from fastapi.testclient import TestClient
from rq import Queue
from rq.utils import utcformat
from tests.support.workers import register_worker

from model_trainer.api import SubmitContext
from model_trainer.api.app import create_app
from model_trainer.api.event_hub import EventHub
from model_trainer.contracts.jobs import (
    WORKER_LIVENESS_S,
    every_rq_queue,
    rq_queue,
    rq_queues,
    worker_rq_queues,
)
from model_trainer.scheduler.firing import fire
from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.schedules import ScheduleStore
from platform_core.json_types import JSONObject

TRAIN: JSONObject = {"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "corpus.txt"}
CUDA_TRAIN: JSONObject = {**TRAIN, "device": "cuda"}


@pytest.fixture(autouse=True)
def _corpus(corpus_path: Path) -> None:
    assert corpus_path.is_file()


def lengths(redis: fakeredis.FakeRedis) -> dict[str, int]:
    """Every non-empty RQ queue of both classes, by name."""
    names = [*every_rq_queue("train"), *every_rq_queue("infer")]
    counts = {name: Queue(name, connection=redis).count for name in names}
    return {name: count for name, count in counts.items() if count}


def cuda_worker(redis: fakeredis.FakeRedis, queue: str = "train") -> None:
    register_worker(redis, *worker_rq_queues("train" if queue == "train" else "infer", "cuda"))


def test_queue_names_per_priority_and_device() -> None:
    assert rq_queues("train", "cuda") == ["train-cuda-high", "train-cuda", "train-cuda-low"]
    assert rq_queue("infer", "low") == "infer-low"
    assert every_rq_queue("infer") == [
        "infer-high",
        "infer",
        "infer-low",
        "infer-cuda-high",
        "infer-cuda",
        "infer-cuda-low",
    ]
    # A CUDA worker takes what only it can run first; a CPU worker never sees a CUDA queue.
    assert worker_rq_queues("train", "cuda") == [
        "train-cuda-high",
        "train-cuda",
        "train-cuda-low",
        "train-high",
        "train",
        "train-low",
    ]
    assert worker_rq_queues("train", "cpu") == ["train-high", "train", "train-low"]


def test_a_cuda_job_without_a_cuda_worker_is_refused_and_leaves_no_trace(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    register_worker(redis, *worker_rq_queues("train", "cpu"))  # a CPU worker does not count
    response = client.post("/v1/jobs/train", json=CUDA_TRAIN)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    error = response.json()["error"]
    assert error["code"] == "NO_CUDA_WORKER"
    assert error["details"] == {"queue": "train", "rq_queue": "train-cuda"}
    assert "WORKER_DEVICE=cuda" in error["message"]
    assert lengths(redis) == {}
    assert JobStore(redis).list_for_user(1, limit=10) == ([], None)


def test_a_cuda_job_is_queued_on_the_cuda_queue_of_its_priority(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    cuda_worker(redis)
    normal = client.post("/v1/jobs/train", json=CUDA_TRAIN)
    high = client.post("/v1/jobs/train", json={**CUDA_TRAIN, "priority": "high"})
    assert (normal.status_code, high.status_code) == (202, 202)
    assert normal.json()["queue"] == "train"  # the class; the RQ queue says the device
    assert lengths(redis) == {"train-cuda": 1, "train-cuda-high": 1}
    assert Queue("train-cuda", connection=redis).job_ids == [normal.json()["job_id"]]


@pytest.mark.parametrize("device", ["auto", "cpu", "mps"])
def test_other_devices_go_to_the_ordinary_queue_without_any_cuda_worker(
    client: TestClient, redis: fakeredis.FakeRedis, device: str
) -> None:
    response = client.post("/v1/jobs/train", json={**TRAIN, "device": device})
    assert response.status_code == 202, response.text
    assert lengths(redis) == {"train": 1}


def test_a_silent_cuda_worker_does_not_count(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    """RQ keeps a registration for minutes after its worker died; the heartbeat tells."""
    silent = register_worker(redis, *worker_rq_queues("train", "cuda"))
    stale = datetime.now(UTC) - timedelta(seconds=WORKER_LIVENESS_S + 1)
    redis.hset(silent.key, "last_heartbeat", utcformat(stale))
    assert client.post("/v1/jobs/train", json=CUDA_TRAIN).json()["error"]["code"] == (
        "NO_CUDA_WORKER"
    )


def test_the_queue_depth_limit_counts_cuda_queues(
    settings: Settings, redis: fakeredis.FakeRedis, hub: EventHub, client: TestClient
) -> None:
    cuda_worker(redis)
    headers = dict(client.headers)
    limited = TestClient(create_app({**settings, "max_queue_depth": 1}, redis, hub))
    assert limited.post("/v1/jobs/train", json=CUDA_TRAIN, headers=headers).status_code == 202
    refused = limited.post("/v1/jobs/train", json=TRAIN, headers=headers)
    assert (refused.status_code, refused.json()["error"]["details"]["depth"]) == (503, 1)


def test_readyz_counts_cuda_workers_apart(client: TestClient, redis: fakeredis.FakeRedis) -> None:
    register_worker(redis, *worker_rq_queues("train", "cpu"))
    register_worker(redis, *worker_rq_queues("infer", "cpu"))
    cuda_worker(redis)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "redis": True,
        "workers": {"train": 2, "infer": 1},
        "cuda_workers": {"train": 1, "infer": 0},
    }


def test_metrics_show_the_depth_of_cuda_queues(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    cuda_worker(redis)
    assert client.post("/v1/jobs/train", json=CUDA_TRAIN).status_code == 202
    text = client.get("/metrics").text
    assert 'model_trainer_queue_depth{queue="train-cuda"} 1.0' in text
    assert 'model_trainer_queue_depth{queue="infer-cuda-low"} 0.0' in text


def test_the_refusal_is_documented_where_it_can_happen(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    train = paths["/v1/jobs/train"]["post"]["responses"]["503"]["description"]
    study = paths["/v1/studies"]["post"]["responses"]["503"]["description"]
    generate = paths["/v1/jobs/generate"]["post"]["responses"]["503"]["description"]
    assert "NO_CUDA_WORKER" in train and "NO_CUDA_WORKER" in study
    assert "NO_CUDA_WORKER" not in generate


def test_a_study_on_cuda_needs_a_cuda_worker_when_it_is_created(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    body = {
        "base": {**CUDA_TRAIN, "val_fraction": 0.2, "max_steps": 20},
        "search_space": [{"name": "learning_rate", "type": "float", "low": 1e-4, "high": 1e-2}],
        "n_trials": 2,
    }
    refused = client.post("/v1/studies", json=body)
    assert (refused.status_code, refused.json()["error"]["code"]) == (503, "NO_CUDA_WORKER")
    cuda_worker(redis)
    assert client.post("/v1/studies", json=body).status_code == 201


def test_a_cuda_schedule_is_kept_and_a_firing_without_a_cuda_worker_records_the_refusal(
    client: TestClient, redis: fakeredis.FakeRedis, settings: Settings
) -> None:
    """A schedule fires later, when a CUDA worker may be there: only its firings are refused."""
    created = client.post(
        "/v1/schedules", json={"job_type": "train", "request": CUDA_TRAIN, "interval_s": 3600}
    )
    assert created.status_code == 201, created.text
    store = ScheduleStore(redis)
    record = store.get(created.json()["schedule_id"])
    assert record is not None
    ctx: SubmitContext = {"settings": settings, "redis": redis, "jobs": JobStore(redis)}
    now = datetime.now(UTC)
    firing = fire(ctx, store, record, slot=now, now=now)
    assert firing is not None and firing["job_id"] is None
    assert firing["error"] is not None and firing["error"]["code"] == "NO_CUDA_WORKER"
    assert lengths(redis) == {}
