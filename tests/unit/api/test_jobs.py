"""Reading, listing and cancelling jobs: each user sees only their own jobs."""

from __future__ import annotations

from collections.abc import Callable

import fakeredis
import pytest
from fastapi.testclient import TestClient
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry
from rq.serializers import JSONSerializer
from tests.support.event_times import unstamped

from model_trainer.api.routes.jobs import CANCELLED_MESSAGE
from model_trainer.contracts.jobs import DOMAIN, JobRecord, JobType
from model_trainer.storage.job_store import JobStore
from platform_core.job_events import decode_job_event
from platform_workers.event_stream import read_events

GENERATE = {"run_id": "r1", "prompt_text": "To"}


def submit(client: TestClient, job_type: str = "generate") -> str:
    bodies = {"generate": GENERATE, "score": {"run_id": "r1", "text": "To be"}}
    response = client.post(f"/v1/jobs/{job_type}", json=bodies[job_type])
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def stored_record(job_id: str, *, user_id: int, created_at: str, job_type: JobType) -> JobRecord:
    return {
        "job_id": job_id,
        "user_id": user_id,
        "type": job_type,
        "queue": "infer",
        "status": "queued",
        "progress": 0.0,
        "message": "queued",
        "attempts": 0,
        "created_at": created_at,
        "started_at": None,
        "finished_at": None,
        "heartbeat_at": None,
        "run_id": "r1",
        "result": None,
        "error": None,
        "priority": "normal",
        "origin": None,
    }


@pytest.fixture
def store(redis: fakeredis.FakeRedis) -> JobStore:
    return JobStore(redis)


@pytest.mark.usefixtures("trained_run")
def test_get_returns_the_record(client: TestClient, store: JobStore) -> None:
    job_id = submit(client)
    store.mark_running(job_id, now="2026-01-01T00:00:01+00:00")
    store.set_progress(job_id, 0.25, "sampling")
    response = client.get(f"/v1/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json() == store.get(job_id)
    assert response.json()["status"] == "running"
    assert response.json()["progress"] == 0.25


@pytest.mark.usefixtures("trained_run")
def test_get_shows_result_and_error(client: TestClient, store: JobStore) -> None:
    done, failed = submit(client), submit(client)
    store.complete(done, result={"outputs": ["To be"], "nested": {"n": [1, 2]}}, now="t")
    store.fail(
        failed,
        error={"code": "MODEL_LOAD_FAILED", "kind": "system", "message": "m"},
        status="failed",
        now="t",
    )
    assert client.get(f"/v1/jobs/{done}").json()["result"] == {
        "outputs": ["To be"],
        "nested": {"n": [1, 2]},
    }
    assert client.get(f"/v1/jobs/{failed}").json()["error"] == {
        "code": "MODEL_LOAD_FAILED",
        "kind": "system",
        "message": "m",
    }


def test_unknown_job_is_not_found(client: TestClient) -> None:
    for response in (
        client.get("/v1/jobs/nope"),
        client.delete("/v1/jobs/nope"),
        client.get("/v1/jobs/nope/events"),
    ):
        assert response.status_code == 404
        assert response.json() == {
            "error": {
                "code": "JOB_NOT_FOUND",
                "message": "job 'nope' does not exist",
                "details": {"job_id": "nope"},
            }
        }


def test_another_users_job_is_invisible(client: TestClient, store: JobStore) -> None:
    store.create(
        stored_record("theirs", user_id=2, created_at="2026-01-01T00:00:00+00:00", job_type="score")
    )
    assert client.get("/v1/jobs/theirs").status_code == 404
    assert client.delete("/v1/jobs/theirs").status_code == 404
    assert client.get("/v1/jobs/theirs/events").status_code == 404
    assert client.get("/v1/jobs").json() == {"jobs": [], "next_cursor": None}
    record = store.get("theirs")
    assert record is not None
    assert record["status"] == "queued"


def _seed_jobs(store: JobStore) -> list[str]:
    """Five jobs of user 1 (alternating types, one a minute apart) and one of user 2."""
    ids = []
    for minute in range(5):
        job_type: JobType = "generate" if minute % 2 == 0 else "score"
        job_id = f"job{minute}"
        store.create(
            stored_record(
                job_id, user_id=1, created_at=f"2026-01-01T00:0{minute}:00+00:00", job_type=job_type
            )
        )
        ids.append(job_id)
    store.create(
        stored_record("other", user_id=2, created_at="2026-01-01T00:09:00+00:00", job_type="score")
    )
    return ids


def test_list_is_newest_first_and_paginates(client: TestClient, store: JobStore) -> None:
    ids = _seed_jobs(store)
    first = client.get("/v1/jobs", params={"limit": 2}).json()
    assert [job["job_id"] for job in first["jobs"]] == ["job4", "job3"]
    assert first["jobs"][0] == store.get("job4")
    second = client.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [job["job_id"] for job in second["jobs"]] == ["job2", "job1"]
    third = client.get("/v1/jobs", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    assert [job["job_id"] for job in third["jobs"]] == ["job0"]
    assert third["next_cursor"] is None
    everything = client.get("/v1/jobs").json()
    assert [job["job_id"] for job in everything["jobs"]] == ids[::-1]
    assert everything["next_cursor"] is None


def test_list_filters_by_status_and_type(client: TestClient, store: JobStore) -> None:
    _seed_jobs(store)
    store.mark_running("job2", now="2026-01-01T01:00:00+00:00")
    scores = client.get("/v1/jobs", params={"type": "score"}).json()
    assert [job["job_id"] for job in scores["jobs"]] == ["job3", "job1"]
    running = client.get("/v1/jobs", params={"status": "running"}).json()
    assert [job["job_id"] for job in running["jobs"]] == ["job2"]
    both = client.get("/v1/jobs", params={"status": "queued", "type": "generate"}).json()
    assert [job["job_id"] for job in both["jobs"]] == ["job4", "job0"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"type": "tokenize"}, "type"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_list_parameters_are_invalid_config(
    client: TestClient, store: JobStore, params: dict[str, str | int], field: str
) -> None:
    _seed_jobs(store)
    response = client.get("/v1/jobs", params=params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["details"]["field"]) == ("INVALID_CONFIG", field)


def test_limit_200_is_allowed(client: TestClient, store: JobStore) -> None:
    _seed_jobs(store)
    assert len(client.get("/v1/jobs", params={"limit": 200}).json()["jobs"]) == 5


@pytest.mark.usefixtures("trained_run")
def test_cancel_a_queued_job(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    store: JobStore,
    queue_lengths: Callable[[], dict[str, int]],
) -> None:
    job_id = submit(client)
    response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 200
    body = response.json()
    assert body == store.get(job_id)
    assert body["status"] == "cancelled"
    assert body["finished_at"] is not None
    assert body["error"] == {
        "code": "TRAINING_CANCELLED",
        "kind": "user",
        "message": CANCELLED_MESSAGE,
    }
    assert queue_lengths() == {"train": 0, "infer": 0}
    rq_job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert rq_job.get_status() == JobStatus.CANCELED
    assert CanceledJobRegistry(rq_job.origin, connection=redis).get_job_ids() == [job_id]
    assert redis.exists(f"trainer:cancel:{job_id}") == 1
    events = [decode_job_event(data) for _, data in read_events(redis, DOMAIN, job_id)]
    assert [unstamped(event) for event in events] == [
        {
            "type": "trainer.job.failed.v1",
            "job_id": job_id,
            "user_id": 1,
            "error_kind": "user",
            "code": "TRAINING_CANCELLED",
            "message": CANCELLED_MESSAGE,
        }
    ]


@pytest.mark.usefixtures("trained_run")
def test_cancel_a_queued_job_whose_rq_job_is_gone(
    client: TestClient, redis: fakeredis.FakeRedis, store: JobStore
) -> None:
    job_id = submit(client)
    Job.fetch(job_id, connection=redis, serializer=JSONSerializer).delete()
    response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.usefixtures("trained_run")
def test_cancel_a_running_job_raises_the_flag(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    store: JobStore,
    queue_lengths: Callable[[], dict[str, int]],
) -> None:
    job_id = submit(client)
    store.mark_running(job_id, now="2026-01-01T00:00:01+00:00")
    response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 202
    assert response.json()["status"] == "running"
    assert response.json() == store.get(job_id)
    assert redis.exists(f"trainer:cancel:{job_id}") == 1
    assert read_events(redis, DOMAIN, job_id) == []
    assert queue_lengths() == {"train": 0, "infer": 1}


@pytest.mark.usefixtures("trained_run")
@pytest.mark.parametrize("end", ["completed", "failed", "cancelled"])
def test_cancel_a_finished_job_conflicts(
    client: TestClient, redis: fakeredis.FakeRedis, store: JobStore, end: str
) -> None:
    job_id = submit(client)
    if end == "completed":
        store.complete(job_id, result={"outputs": []}, now="t")
    elif end == "failed":
        store.fail(
            job_id, error={"code": "X", "kind": "system", "message": "m"}, status="failed", now="t"
        )
    else:
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
    response = client.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "JOB_ALREADY_FINISHED"
    assert error["details"] == {"job_id": job_id, "status": end}
