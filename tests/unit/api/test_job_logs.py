"""GET /v1/jobs/{job_id}/logs: the caller's own job's newest lines, oldest first, tail bounded."""

from __future__ import annotations

import fakeredis
import pytest
from fastapi.testclient import TestClient
from tests.support.records import queued_record
from tests.unit.api.conftest import bearer

from model_trainer.contracts.jobs import DOMAIN
from model_trainer.contracts.limits import MAX_LOG_TAIL
from model_trainer.storage.api_keys import create_key
from model_trainer.storage.job_store import JobStore
from platform_core.job_logs import encode_log_line, log_lines_from_object, make_log_line
from platform_core.json_types import load_json_object, require_object
from platform_workers.job_logs import LOG_LINES_KEPT
from platform_workers.keys import logs_key


def write_lines(redis: fakeredis.FakeRedis, job_id: str, count: int) -> None:
    for index in range(count):
        line = make_log_line(
            ts=f"2026-11-01T10:00:{index % 60:02d}+00:00",
            level="INFO",
            logger="model_trainer.worker.job_utils",
            message=f"line {index}",
            job_id=job_id,
            attempt=1,
            fields={"index": index},
        )
        redis.rpush(logs_key(DOMAIN, job_id), encode_log_line(line))


@pytest.fixture
def alices_job(redis: fakeredis.FakeRedis) -> str:
    """Job j1 of user 1 (the `client` fixture's user) with 150 log lines."""
    JobStore(redis).create(queued_record("j1", "train", "run-1"))
    write_lines(redis, "j1", 150)
    return "j1"


def error_code(body: bytes) -> str:
    return str(require_object(load_json_object(body), "error")["code"])


def test_the_newest_100_lines_come_oldest_first_by_default(
    client: TestClient, alices_job: str
) -> None:
    response = client.get(f"/v1/jobs/{alices_job}/logs")
    assert response.status_code == 200, response.text
    body = load_json_object(response.content)
    assert (body["job_id"], body["total_lines"]) == ("j1", 150)
    lines = log_lines_from_object(body)
    assert [line["message"] for line in lines] == [f"line {i}" for i in range(50, 150)]
    assert lines[0] == {
        "ts": "2026-11-01T10:00:50+00:00",
        "level": "INFO",
        "logger": "model_trainer.worker.job_utils",
        "message": "line 50",
        "job_id": "j1",
        "attempt": 1,
        "fields": {"index": 50},
    }


def test_tail_picks_the_newest_lines(client: TestClient, alices_job: str) -> None:
    body = load_json_object(client.get(f"/v1/jobs/{alices_job}/logs?tail=3").content)
    assert [line["message"] for line in log_lines_from_object(body)] == [
        "line 147",
        "line 148",
        "line 149",
    ]
    everything = load_json_object(
        client.get(f"/v1/jobs/{alices_job}/logs", params={"tail": MAX_LOG_TAIL}).content
    )
    assert len(log_lines_from_object(everything)) == 150


def test_a_job_without_lines_yet_answers_an_empty_list(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    JobStore(redis).create(queued_record("fresh", "generate", "run-1"))
    response = client.get("/v1/jobs/fresh/logs")
    assert response.status_code == 200
    assert load_json_object(response.content) == {
        "job_id": "fresh",
        "lines": [],
        "total_lines": 0,
    }


@pytest.mark.parametrize("tail", ["0", "-1", str(MAX_LOG_TAIL + 1), "10**9", "many", "1.5"])
def test_a_tail_out_of_bounds_is_refused(client: TestClient, alices_job: str, tail: str) -> None:
    response = client.get(f"/v1/jobs/{alices_job}/logs", params={"tail": tail})
    assert response.status_code == 422
    assert error_code(response.content) == "INVALID_CONFIG"


def test_another_users_job_is_as_invisible_as_a_missing_one(
    client: TestClient, redis: fakeredis.FakeRedis, alices_job: str
) -> None:
    bob = bearer(create_key(redis, "bob"))
    theirs = client.get(f"/v1/jobs/{alices_job}/logs", headers=bob)
    missing = client.get("/v1/jobs/nope/logs", headers=bob)
    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert error_code(theirs.content) == error_code(missing.content) == "JOB_NOT_FOUND"
    assert b"line" not in theirs.content


def test_an_admin_reads_any_users_job(
    client: TestClient, redis: fakeredis.FakeRedis, alices_job: str
) -> None:
    root = bearer(create_key(redis, "root", admin=True))
    response = client.get(f"/v1/jobs/{alices_job}/logs?tail=1", headers=root)
    assert response.status_code == 200
    assert [
        line["message"] for line in log_lines_from_object(load_json_object(response.content))
    ] == ["line 149"]


def test_a_request_without_a_key_is_refused(client: TestClient, alices_job: str) -> None:
    response = client.get(f"/v1/jobs/{alices_job}/logs", headers={"Authorization": ""})
    assert response.status_code == 401
    assert error_code(response.content) == "UNAUTHENTICATED"


def test_the_tail_limit_is_every_line_a_worker_keeps() -> None:
    assert MAX_LOG_TAIL == LOG_LINES_KEPT
