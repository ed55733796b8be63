"""`/v1/schedules` on fakeredis: a schedule is checked like a submission of its request at
creation (refused without a trace), listed, shown with its firings, paused, resumed and deleted,
by its owner alone (and admins)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
from fastapi.testclient import TestClient
from tests.unit.api.conftest import bearer

from model_trainer.api import SubmitContext
from model_trainer.api.app import create_app
from model_trainer.api.event_hub import EventHub
from model_trainer.api.routes.schedules import in_request
from model_trainer.errors import ModelTrainerError
from model_trainer.scheduler.service import ScheduleScheduler
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import CreatedKey, create_key
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.schedules import ScheduleStore
from platform_core.json_types import JSONObject, JSONValue
from platform_workers.keys import schedules_key

TRAIN: JSONObject = {"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "corpus.txt"}
pytestmark = pytest.mark.usefixtures("corpus_path")


def schedule(request: JSONValue = TRAIN, **fields: JSONValue) -> JSONObject:
    """A create body: a train request every 300 s unless fields say otherwise."""
    return {"job_type": "train", "request": request, "interval_s": 300, **fields}


def created(client: TestClient, body: JSONObject) -> JSONObject:
    response = client.post("/v1/schedules", json=body)
    assert response.status_code == 201, response.text
    created: JSONObject = response.json()
    return created


@pytest.fixture
def bob(redis: fakeredis.FakeRedis, api_key: CreatedKey) -> dict[str, str]:
    return bearer(create_key(redis, "bob"))


@pytest.fixture
def admin(redis: fakeredis.FakeRedis, api_key: CreatedKey) -> dict[str, str]:
    return bearer(create_key(redis, "root", admin=True))


def test_a_new_schedule_is_stored_listed_and_shown(client: TestClient, api_key: CreatedKey) -> None:
    before = datetime.now(UTC)
    body = created(client, schedule(name="nightly"))
    assert body == {
        "schedule_id": body["schedule_id"],
        "user_id": api_key["user_id"],
        "key_id": api_key["key_id"],
        "name": "nightly",
        "job_type": "train",
        "request": TRAIN,
        "cron": None,
        "interval_s": 300,
        "paused": False,
        "created_at": body["created_at"],
        "last_fired_at": None,
        "fired": 0,
        "refused": 0,
        "next_fire_at": body["next_fire_at"],
    }
    created_at = datetime.fromisoformat(str(body["created_at"]))
    assert before <= created_at <= datetime.now(UTC)
    assert datetime.fromisoformat(str(body["next_fire_at"])) == created_at + timedelta(seconds=300)
    cron = created(client, schedule(interval_s=None, cron=" 0  3 * * * "))
    assert (cron["cron"], cron["interval_s"]) == ("0 3 * * *", None)
    assert client.get("/v1/schedules").json() == {"schedules": [body, cron]}
    assert client.get(f"/v1/schedules/{body['schedule_id']}").json() == {**body, "firings": []}


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (schedule(interval_s=None), 422, "INVALID_CONFIG", "cron"),
        (schedule(cron="0 3 * * *"), 422, "INVALID_CONFIG", "cron"),
        (schedule(interval_s=None, cron="0 3 * *"), 422, "INVALID_CONFIG", "cron"),
        (schedule(interval_s=None, cron="0 25 * * *"), 422, "INVALID_CONFIG", "cron"),
        (schedule(interval_s=59), 422, "INVALID_CONFIG", "interval_s"),
        (schedule(interval_s=0), 422, "INVALID_CONFIG", "interval_s"),
        (schedule(interval_s=10**9), 422, "INVALID_CONFIG", "interval_s"),
        (schedule(job_type="bake"), 422, "INVALID_CONFIG", "job_type"),
        (schedule(name="x" * 129), 422, "INVALID_CONFIG", "name"),
        (schedule(request=[]), 422, "INVALID_CONFIG", "request"),
        (schedule({**TRAIN, "batch_size": "8"}), 422, "INVALID_CONFIG", "request.batch_size"),
        (schedule({**TRAIN, "colour": "red"}), 422, "INVALID_CONFIG", "request.colour"),
        (schedule({"model_family": "char_lstm"}), 422, "INVALID_CONFIG", "request.model_size"),
        (schedule({**TRAIN, "run_id": "mine"}), 422, "INVALID_CONFIG", "request.run_id"),
        (schedule({**TRAIN, "corpus_path": "x" * 70_000}), 413, "REQUEST_TOO_LARGE", "request"),
        (
            schedule({**TRAIN, "model_size": "huge"}),
            400,
            "INVALID_MODEL_SIZE",
            "request.model_size",
        ),
        (schedule({**TRAIN, "timeout_s": 10**9}), 422, "INVALID_CONFIG", "request.timeout_s"),
        (
            schedule({**TRAIN, "corpus_path": "nope.txt"}),
            404,
            "CORPUS_NOT_FOUND",
            "request.corpus_path",
        ),
        (
            schedule({"run_id": "nope", "prompt_text": "To"}, job_type="generate"),
            404,
            "MODEL_NOT_FOUND",
            "request.run_id",
        ),
        (
            schedule({"corpus_path": "corpus.txt", "tokenizer_id": "t"}, job_type="tokenizer"),
            422,
            "INVALID_CONFIG",
            "request.tokenizer_id",
        ),
    ],
)
def test_a_schedule_that_could_never_fire_is_refused_without_a_trace(
    *,
    client: TestClient,
    redis: fakeredis.FakeRedis,
    body: JSONObject,
    status: int,
    code: str,
    field: str,
) -> None:
    response = client.post("/v1/schedules", json=body)
    error = response.json()["error"]
    assert (response.status_code, error["code"]) == (status, code), response.text
    assert error["details"]["field"] == field
    assert not redis.exists(schedules_key("trainer"))
    assert not list(redis.scan_iter("trainer:job:*"))


def test_the_minimum_interval_applies_to_cron_too(
    settings: Settings, redis: fakeredis.FakeRedis, hub: EventHub, api_key: CreatedKey
) -> None:
    slow: Settings = {**settings, "min_schedule_interval_s": 3600}
    with TestClient(create_app(slow, redis, hub), headers=bearer(api_key)) as client:
        every_minute = client.post(
            "/v1/schedules", json=schedule(interval_s=None, cron="* * * * *")
        )
        hourly = client.post("/v1/schedules", json=schedule(interval_s=None, cron="0 * * * *"))
    assert every_minute.status_code == 422
    assert "MIN_SCHEDULE_INTERVAL_S" in every_minute.json()["error"]["message"]
    assert hourly.status_code == 201


def test_a_user_keeps_at_most_the_configured_number_of_schedules(
    settings: Settings,
    redis: fakeredis.FakeRedis,
    hub: EventHub,
    api_key: CreatedKey,
    bob: dict[str, str],
) -> None:
    capped: Settings = {**settings, "max_schedules_per_user": 2}
    with TestClient(create_app(capped, redis, hub), headers=bearer(api_key)) as client:
        first = created(client, schedule())
        created(client, schedule())
        refused = client.post("/v1/schedules", json=schedule())
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "QUOTA_EXCEEDED"
        assert refused.headers["Retry-After"]
        assert client.post("/v1/schedules", json=schedule(), headers=bob).status_code == 201
        client.delete(f"/v1/schedules/{first['schedule_id']}")
        created(client, schedule())


def test_pause_resume_and_delete(client: TestClient, redis: fakeredis.FakeRedis) -> None:
    body = created(client, schedule())
    path = f"/v1/schedules/{body['schedule_id']}"
    paused = client.post(f"{path}/pause").json()
    assert paused == {**body, "paused": True, "next_fire_at": None}
    assert client.post(f"{path}/pause").json() == paused  # pausing twice is the same state
    assert client.get(path).json()["paused"] is True
    assert client.post(f"{path}/resume").json() == body
    deleted = client.delete(path)
    assert (deleted.status_code, deleted.json()) == (200, {**body, "next_fire_at": None})
    for response in (client.get(path), client.post(f"{path}/pause"), client.delete(path)):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "SCHEDULE_NOT_FOUND"
    assert client.get("/v1/schedules").json() == {"schedules": []}
    assert ScheduleStore(redis).every() == []


def test_a_schedule_deleted_while_it_is_paused_is_not_found(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = created(client, schedule())
    monkeypatch.setattr(ScheduleStore, "set_paused", lambda self, schedule_id, paused: None)
    monkeypatch.setattr(ScheduleStore, "get", lambda self, schedule_id: None)
    response = client.post(f"/v1/schedules/{body['schedule_id']}/pause")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "SCHEDULE_NOT_FOUND")


def test_only_the_owner_and_admins_see_and_act_on_a_schedule(
    client: TestClient, api_key: CreatedKey, bob: dict[str, str], admin: dict[str, str]
) -> None:
    body = created(client, schedule())
    path = f"/v1/schedules/{body['schedule_id']}"
    for response in (
        client.get(path, headers=bob),
        client.post(f"{path}/pause", headers=bob),
        client.post(f"{path}/resume", headers=bob),
        client.delete(path, headers=bob),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == (
            404,
            "SCHEDULE_NOT_FOUND",
        )
    assert client.get("/v1/schedules", headers=bob).json() == {"schedules": []}
    mine = client.get(f"/v1/schedules?user_id={api_key['user_id']}", headers=bob)
    assert mine.status_code == 422
    listed = client.get(f"/v1/schedules?user_id={api_key['user_id']}", headers=admin).json()
    assert listed == {"schedules": [body]}
    assert client.post(f"{path}/pause", headers=admin).json()["paused"] is True
    assert client.delete(path, headers=admin).status_code == 200
    assert client.get("/v1/schedules").json() == {"schedules": []}


def test_a_malformed_schedule_id_is_refused(client: TestClient) -> None:
    for path in ("/v1/schedules/nope", "/v1/schedules/" + "a" * 33, "/v1/schedules/%2E%2E"):
        response = client.get(path)
        assert response.status_code in {404, 422}
        assert response.json()["error"]["code"] in {"INVALID_CONFIG", "ROUTE_NOT_FOUND"}


def test_a_schedule_shows_its_firings_newest_first(
    client: TestClient, settings: Settings, redis: fakeredis.FakeRedis
) -> None:
    """Two firings by a scheduler pass: a job, then a quota refusal."""
    body = created(client, schedule())
    created_at = datetime.fromisoformat(str(body["created_at"]))
    limits = {**settings["max_active_jobs"], "train": 1}
    ctx: SubmitContext = {
        "settings": {**settings, "max_active_jobs": limits},
        "redis": redis,
        "jobs": JobStore(redis),
    }
    moments = iter([created_at + timedelta(seconds=300), created_at + timedelta(seconds=600)])
    scheduler = ScheduleScheduler(ctx, clock=lambda: next(moments))
    scheduler.enqueue_jobs()
    scheduler.enqueue_jobs()
    shown = client.get(f"/v1/schedules/{body['schedule_id']}").json()
    refused, fired = shown["firings"]
    assert (refused["job_id"], refused["error"]["code"]) == (None, "QUOTA_EXCEEDED")
    assert fired["error"] is None
    assert client.get(f"/v1/jobs/{fired['job_id']}").json()["origin"] == {
        "kind": "schedule",
        "id": body["schedule_id"],
        "trial": None,
    }
    assert (shown["fired"], shown["refused"]) == (1, 1)
    assert shown["last_fired_at"] == refused["fired_at"]


def test_a_refusal_without_a_field_keeps_its_details() -> None:
    error = ModelTrainerError("QUEUE_FULL", "busy", details={"depth": 3})
    assert in_request(error) is error
