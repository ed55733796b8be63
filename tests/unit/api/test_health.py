"""Liveness always answers; readiness needs Redis and a worker on each queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from fastapi.testclient import TestClient
from rq.utils import utcformat
from tests.support.workers import register_worker

from model_trainer.api.app import create_app
from model_trainer.contracts.jobs import WORKER_LIVENESS_S
from model_trainer.settings import Settings


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_not_ready_without_workers(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "redis": True,
        "workers": {"train": 0, "infer": 0},
        "cuda_workers": {"train": 0, "infer": 0},
    }


def test_ready_when_every_queue_has_a_worker(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    register_worker(redis, "train", "infer")
    register_worker(redis, "infer")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["workers"] == {"train": 1, "infer": 2}


def test_not_ready_while_a_queue_has_no_worker(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    register_worker(redis, "train")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["workers"] == {"train": 1, "infer": 0}


def test_a_dead_worker_does_not_count(client: TestClient, redis: fakeredis.FakeRedis) -> None:
    register_worker(redis, "train")
    gone = register_worker(redis, "infer")
    redis.delete(gone.key)  # its registration expired without a clean shutdown
    assert client.get("/readyz").json()["workers"] == {"train": 1, "infer": 0}


def test_not_ready_when_redis_is_down(settings: Settings) -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    client = TestClient(create_app(settings, fakeredis.FakeRedis(server=server)))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "redis": False,
        "workers": {"train": 0, "infer": 0},
        "cuda_workers": {"train": 0, "infer": 0},
    }
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_routes_are_documented(client: TestClient, path: str) -> None:
    assert path in client.get("/openapi.json").json()["paths"]


def test_a_registered_worker_that_stopped_heartbeating_does_not_count(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    """RQ keeps a worker that died mid-job registered for minutes; its silence gives it away."""
    register_worker(redis, "train")
    silent = register_worker(redis, "infer")
    stale = datetime.now(UTC) - timedelta(seconds=WORKER_LIVENESS_S + 1)
    redis.hset(silent.key, "last_heartbeat", utcformat(stale))
    assert redis.exists(silent.key)
    assert client.get("/readyz").json()["workers"] == {"train": 1, "infer": 0}
    fresh = datetime.now(UTC) - timedelta(seconds=WORKER_LIVENESS_S - 5)
    redis.hset(silent.key, "last_heartbeat", utcformat(fresh))
    assert client.get("/readyz").json()["workers"] == {"train": 1, "infer": 1}
