"""The API's own log, as JSON lines: one per submission and one per refusal, saying who asked
for what and, when refused, the code."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import fakeredis
import pytest
from fastapi.testclient import TestClient

from model_trainer.api.app import create_app
from model_trainer.api.event_hub import EventHub
from model_trainer.contracts.jobs import DOMAIN
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import CreatedKey
from model_trainer.storage.runs import RunManifest
from platform_core.json_types import JSONObject, load_json_object
from platform_core.structured_logs import configure_logging
from platform_workers.keys import events_channel

Lines = Callable[[], list[JSONObject]]


@pytest.fixture
def lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Lines]:
    """The JSON lines of the named events logged since the last call (the API process's own
    log, configured as `model-trainer api` does by the first call: capsys's stream is the test
    call's own)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def read() -> list[JSONObject]:
        if root.handlers == handlers:
            configure_logging("INFO")
        parsed = [load_json_object(line) for line in capsys.readouterr().err.splitlines()]
        return [line for line in parsed if "event" in line]

    yield read
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_submission_is_one_line_naming_the_job_its_user_and_queue(
    client: TestClient, trained_run: RunManifest, api_key: CreatedKey, lines: Lines
) -> None:
    lines()
    accepted = client.post(
        "/v1/jobs/generate", json={"run_id": "r1", "prompt_text": "To", "priority": "high"}
    )
    assert accepted.status_code == 202
    (line,) = lines()
    assert line["message"] == f"job submitted: generate {accepted.json()['job_id']}"
    assert {key: line[key] for key in ("level", "logger", "event", "job_id", "user_id")} == {
        "level": "INFO",
        "logger": "model_trainer.api.submit",
        "event": "job.submitted",
        "job_id": accepted.json()["job_id"],
        "user_id": api_key["user_id"],
    }
    assert (line["type"], line["queue"], line["run_id"], line["origin"]) == (
        "generate",
        "infer-high",
        "r1",
        None,
    )


def test_each_refusal_is_one_line_with_its_code_route_and_caller(
    client: TestClient, api_key: CreatedKey, lines: Lines
) -> None:
    lines()
    assert client.post("/v1/jobs/generate", json={"run_id": ["r1"]}).status_code == 422
    assert client.get("/v1/jobs/nope").status_code == 404
    assert client.get("/v1/jobs", headers={"Authorization": "Bearer bad"}).status_code == 401
    assert client.put("/healthz").status_code == 405
    refusals = lines()
    assert [
        (line["code"], line["status"], line["method"], line["route"], line["user_id"])
        for line in refusals
    ] == [
        ("INVALID_CONFIG", 422, "POST", "/v1/jobs/generate", api_key["user_id"]),
        ("JOB_NOT_FOUND", 404, "GET", "/v1/jobs/{job_id}", api_key["user_id"]),
        ("UNAUTHENTICATED", 401, "GET", "/v1/jobs", None),
        ("METHOD_NOT_ALLOWED", 405, "PUT", "/healthz", None),
    ]
    assert {(line["level"], line["event"]) for line in refusals} == {("INFO", "request.refused")}
    assert refusals[1]["message"] == "refused: JOB_NOT_FOUND: job 'nope' does not exist"
    assert not any("exc" in line for line in refusals)


def test_redis_out_of_reach_is_a_warning(settings: Settings, lines: Lines) -> None:
    lines()
    server = fakeredis.FakeServer()
    server.connected = False
    hub = EventHub(fakeredis.FakeAsyncRedis(server=server), events_channel(DOMAIN))
    client = TestClient(create_app(settings, fakeredis.FakeRedis(server=server), hub))
    key = "mtk_" + "0" * 12 + "_" + "k" * 43  # well formed: checking it needs Redis
    answer = client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    (line,) = lines()
    assert (line["level"], line["code"], line["status"]) == ("WARNING", "REDIS_UNAVAILABLE", 503)
