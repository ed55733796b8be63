"""GET /v1/jobs/{job_id}?wait_s=: the record is held back until the job ends (long polling)."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest
from fastapi.testclient import TestClient
from tests.unit.api.conftest import bearer

from model_trainer.api.event_hub import EventHub
from model_trainer.contracts.jobs import DOMAIN
from model_trainer.storage.api_keys import create_key
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import RunManifest
from platform_workers.job_context import JobContext

NOW = "2026-12-05T08:00:00+00:00"


@pytest.fixture
def job_id(client: TestClient, trained_run: RunManifest) -> str:
    response = client.post("/v1/jobs/generate", json={"run_id": "r1", "prompt_text": "To"})
    job: str = response.json()["job_id"]
    return job


def finish_later(redis: fakeredis.FakeRedis, job_id: str, delay_s: float) -> threading.Thread:
    """What a worker does when the job ends: the record, then the event."""

    def finish() -> None:
        context = JobContext(redis, domain=DOMAIN, job_id=job_id, user_id=1, queue="infer")
        context.publish_started()  # an event that does not end the job wakes the wait too
        time.sleep(delay_s)
        JobStore(redis).complete(job_id, result={"texts": ["To be"]}, now=NOW)
        context.publish_completed("r1", 1)

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def test_the_record_comes_the_moment_the_job_ends(
    client: TestClient, redis: fakeredis.FakeRedis, job_id: str
) -> None:
    worker = finish_later(redis, job_id, 0.3)
    began = time.perf_counter()
    record = client.get(f"/v1/jobs/{job_id}", params={"wait_s": 20}).json()
    waited = time.perf_counter() - began
    worker.join()
    assert (record["status"], record["result"]) == ("completed", {"texts": ["To be"]})
    assert 0.25 < waited < 10


def test_an_unfinished_job_is_answered_as_it_stands_after_the_wait(
    client: TestClient, job_id: str
) -> None:
    began = time.perf_counter()
    record = client.get(f"/v1/jobs/{job_id}", params={"wait_s": 0.3}).json()
    assert record["status"] == "queued"
    assert time.perf_counter() - began >= 0.3
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"  # no wait: at once


def test_an_ended_job_is_answered_at_once(
    client: TestClient, redis: fakeredis.FakeRedis, job_id: str
) -> None:
    JobStore(redis).complete(job_id, result={"texts": []}, now=NOW)
    began = time.perf_counter()
    assert client.get(f"/v1/jobs/{job_id}", params={"wait_s": 30}).json()["status"] == "completed"
    assert time.perf_counter() - began < 5


@pytest.mark.parametrize("wait_s", ["-1", "60.5", "nan", "inf", "soon"])
def test_a_wait_out_of_range_is_invalid_config(
    client: TestClient, job_id: str, wait_s: str
) -> None:
    response = client.get(f"/v1/jobs/{job_id}", params={"wait_s": wait_s})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INVALID_CONFIG"


def test_another_users_job_is_not_found_without_waiting(
    client: TestClient, redis: fakeredis.FakeRedis, job_id: str
) -> None:
    bob = create_key(redis, "bob")
    began = time.perf_counter()
    response = client.get(f"/v1/jobs/{job_id}", params={"wait_s": 30}, headers=bearer(bob))
    assert (response.status_code, response.json()["error"]["code"]) == (404, "JOB_NOT_FOUND")
    assert time.perf_counter() - began < 5


def test_a_wait_ends_when_the_api_begins_shutting_down(
    client: TestClient, hub: EventHub, job_id: str
) -> None:
    closer = threading.Timer(0.3, hub.close_soon)
    closer.start()
    began = time.perf_counter()
    record = client.get(f"/v1/jobs/{job_id}", params={"wait_s": 30}).json()
    closer.join()
    assert record["status"] == "queued"
    assert time.perf_counter() - began < 10
