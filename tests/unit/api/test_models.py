"""`/v1/models`: a user's registry over HTTP (versions with provenance copied from runs and
checkpoints, aliases with the val-loss gate, compare), other users' models invisible, and
inference jobs submitted by `model` reference."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import fakeredis
import orjson
import pytest
from fastapi.testclient import TestClient
from rq.job import Job
from rq.serializers import JSONSerializer
from tests.unit.api.conftest import bearer

from model_trainer.settings import Settings
from model_trainer.storage.api_keys import create_key
from model_trainer.storage.provenance import checkpoint_dir
from model_trainer.storage.runs import RunManifest, run_dir, write_manifest
from platform_core.json_types import (
    JSONObject,
    JSONValue,
    load_json_object,
    require_object,
    require_str,
)

NOW = "2026-01-01T00:00:00+00:00"
CHECKPOINT_METRICS: JSONObject = {
    "step": 20,
    "epoch": 0,
    "train_loss": 1.9,
    "val_loss": 2.5,
    "created_at": NOW,
}


class Reply(Protocol):
    """What the helpers read of a TestClient response."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...


def error_of(response: Reply) -> tuple[int, str, JSONValue]:
    """Status, code and details.field of a refusal."""
    error = require_object(load_json_object(response.content), "error")
    field = require_object(error, "details").get("field")
    return response.status_code, require_str(error, "code"), field


def ok(response: Reply, status: int = 200) -> JSONObject:
    assert response.status_code == status, response.content[:500]
    return load_json_object(response.content)


@pytest.fixture
def runs(save_run: Callable[[str, str], RunManifest], settings: Settings) -> dict[str, RunManifest]:
    """Two finished runs of the client's user: r1 (val loss 1.75) and r2 (a higher learning
    rate, val loss 1.5), r1 with a checkpoint at step 20."""
    first = save_run("r1", NOW)
    base = save_run("r2", NOW)
    second: RunManifest = {
        **base,
        "config": {**base["config"], "learning_rate": 0.01},
        "metrics": {**base["metrics"], "val_loss": 1.5},
    }
    write_manifest(run_dir(settings, "r2"), second)
    checkpoint = checkpoint_dir(settings, "r1", 20)
    checkpoint.mkdir(parents=True)
    (checkpoint / "metrics.json").write_bytes(orjson.dumps(CHECKPOINT_METRICS))
    return {"r1": first, "r2": second}


@pytest.fixture
def registered(client: TestClient, runs: dict[str, RunManifest]) -> str:
    """Model `m`: v1 = r1's final model, v2 = r2's, v3 = r1's checkpoint at step 20."""
    ok(client.post("/v1/models", json={"name": "m", "description": "tiny"}), 201)
    for body in ({"run_id": "r1"}, {"run_id": "r2"}, {"run_id": "r1", "step": 20}):
        ok(client.post("/v1/models/m/versions", json=body), 201)
    return "m"


def test_create_get_and_list(client: TestClient) -> None:
    created = ok(client.post("/v1/models", json={"name": "m", "description": "tiny"}), 201)
    assert created == {
        "name": "m",
        "user_id": 1,
        "description": "tiny",
        "created_at": created["created_at"],
        "created_by": "alice",
        "latest_version": None,
        "aliases": {},
    }
    assert ok(client.get("/v1/models/m")) == created
    assert ok(client.get("/v1/models")) == {"models": [created]}
    again = client.post("/v1/models", json={"name": "m"})
    assert error_of(again) == (409, "MODEL_EXISTS", "name")


def test_a_version_copies_its_runs_provenance(
    client: TestClient, registered: str, runs: dict[str, RunManifest]
) -> None:
    manifest = runs["r1"]
    version = ok(client.get("/v1/models/m/versions/1"))
    assert version == {
        "name": "m",
        "version": 1,
        "user_id": 1,
        "registered_by": "alice",
        "created_at": version["created_at"],
        "run_id": "r1",
        "step": None,
        "corpus_sha256": manifest["corpus_sha256"],
        "tokenizer_id": manifest["tokenizer_id"],
        "model_family": "char_lstm",
        "model_size": "tiny",
        "config": orjson.loads(orjson.dumps(manifest["config"])),
        "metrics": orjson.loads(orjson.dumps(manifest["metrics"])),
        "git_commit": None,
        "library_versions": {"python": "3.11"},
    }
    checkpoint = ok(client.get("/v1/models/m/versions/3"))
    assert (checkpoint["step"], checkpoint["metrics"]) == (20, CHECKPOINT_METRICS)
    model = ok(client.get("/v1/models/m"))
    assert (model["latest_version"], model["aliases"]) == (3, {})


def test_versions_list_in_pages(client: TestClient, registered: str) -> None:
    first = client.get("/v1/models/m/versions?limit=2").json()
    assert [v["version"] for v in first["versions"]] == [1, 2]
    assert first["next_after"] == 2
    rest = client.get("/v1/models/m/versions?limit=2&after=2").json()
    assert ([v["version"] for v in rest["versions"]], rest["next_after"]) == ([3], None)


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        ({"run_id": "nope"}, (404, "MODEL_NOT_FOUND", "run_id")),
        ({"run_id": "r1", "step": 30}, (404, "MODEL_NOT_FOUND", "step")),
        ({"run_id": "r1", "step": -1}, (422, "INVALID_CONFIG", "step")),
        ({"run_id": "../x"}, (422, "INVALID_CONFIG", "run_id")),
    ],
)
@pytest.mark.usefixtures("registered")
def test_registering_what_is_not_a_finished_run_is_refused(
    client: TestClient, body: JSONObject, refusal: tuple[int, str, str]
) -> None:
    response = client.post("/v1/models/m/versions", json=body)
    assert error_of(response) == refusal
    assert ok(client.get("/v1/models/m"))["latest_version"] == 3


def test_a_checkpoint_without_readable_metrics_or_a_damaged_run_fails_to_load(
    client: TestClient, registered: str, settings: Settings
) -> None:
    checkpoint_dir(settings, "r1", 30).mkdir()
    response = client.post("/v1/models/m/versions", json={"run_id": "r1", "step": 30})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "MODEL_LOAD_FAILED"
    (run_dir(settings, "r2") / "manifest.json").write_bytes(b'{"run_id": "r2"}')
    response = client.post("/v1/models/m/versions", json={"run_id": "r2"})
    assert response.json()["error"]["code"] == "MODEL_LOAD_FAILED"


def test_compare_shows_config_differences_and_metrics_side_by_side(
    client: TestClient, registered: str, runs: dict[str, RunManifest]
) -> None:
    response = client.get("/v1/models/m/compare?versions=1,2,3,2")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["versions"] == [1, 2, 3]
    assert body["config_diff"] == {"learning_rate": [0.003, 0.01, 0.003]}
    rows = body["metrics"]
    assert [(row["version"], row["run_id"], row["step"]) for row in rows] == [
        (1, "r1", None),
        (2, "r2", None),
        (3, "r1", 20),
    ]
    assert [row["metrics"]["val_loss"] for row in rows] == [1.75, 1.5, 2.5]
    assert error_of(client.get("/v1/models/m/compare?versions=1,9")) == (
        404,
        "MODEL_NOT_FOUND",
        "version",
    )


@pytest.mark.parametrize("versions", ["1", "1,2,3,4,5,6,7,8,9,10,11", "1,,2", "a,b", ""])
def test_compare_takes_two_to_ten_version_numbers(
    client: TestClient, registered: str, versions: str
) -> None:
    response = client.get(f"/v1/models/m/compare?versions={versions}")
    assert error_of(response) == (422, "INVALID_CONFIG", "versions")


def test_promote_gate_force_rollback_and_delete(client: TestClient, registered: str) -> None:
    promoted = ok(client.put("/v1/models/m/aliases/production", json={"version": 2}))
    assert promoted == {"alias": "production", "version": 2, "history": []}
    refused = client.put("/v1/models/m/aliases/production", json={"version": 1})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "PROMOTION_REFUSED"
    assert refused.json()["error"]["details"] == {
        "alias": "production",
        "version": 1,
        "val_loss": 1.75,
        "holder_version": 2,
        "holder_val_loss": 1.5,
    }
    forced = ok(client.put("/v1/models/m/aliases/production", json={"version": 1, "force": True}))
    assert forced == {"alias": "production", "version": 1, "history": [2]}
    assert ok(client.get("/v1/models/m"))["aliases"] == {"production": 1}
    rolled = ok(client.post("/v1/models/m/aliases/production/rollback"))
    assert rolled == {"alias": "production", "version": 2, "history": []}
    assert ok(client.get("/v1/models/m/aliases/production")) == rolled
    no_history = client.post("/v1/models/m/aliases/production/rollback")
    assert error_of(no_history) == (409, "ALIAS_NO_HISTORY", "alias")
    assert ok(client.delete("/v1/models/m/aliases/production")) == rolled
    gone = client.get("/v1/models/m/aliases/production")
    assert error_of(gone) == (404, "MODEL_NOT_FOUND", "alias")


def test_another_users_registry_is_invisible_and_separate(
    client: TestClient, redis: fakeredis.FakeRedis, registered: str
) -> None:
    bob = bearer(create_key(redis, "bob"))
    for path in (
        "/v1/models/m",
        "/v1/models/m/versions",
        "/v1/models/m/versions/1",
        "/v1/models/m/compare?versions=1,2",
        "/v1/models/m/aliases/production",
    ):
        assert error_of(client.get(path, headers=bob))[:2] == (404, "MODEL_NOT_FOUND"), path
    put = client.put("/v1/models/m/aliases/production", json={"version": 1}, headers=bob)
    assert error_of(put)[:2] == (404, "MODEL_NOT_FOUND")
    assert ok(client.get("/v1/models", headers=bob)) == {"models": []}
    # Bob's own `m` is another model; alice's runs are not his to register.
    ok(client.post("/v1/models", json={"name": "m"}, headers=bob), 201)
    theirs = client.post("/v1/models/m/versions", json={"run_id": "r1"}, headers=bob)
    assert error_of(theirs) == (404, "MODEL_NOT_FOUND", "run_id")
    assert ok(client.get("/v1/models/m"))["latest_version"] == 3
    generate = client.post("/v1/jobs/generate", json={"model": "m/1"}, headers=bob)
    assert error_of(generate) == (404, "MODEL_NOT_FOUND", "model")
    snooping = client.get("/v1/models?user_id=1", headers=bob)
    assert error_of(snooping) == (422, "INVALID_CONFIG", "user_id")


def test_an_admin_reads_any_users_registry(
    client: TestClient, redis: fakeredis.FakeRedis, registered: str
) -> None:
    admin = bearer(create_key(redis, "root", admin=True))
    listed = client.get("/v1/models?user_id=1", headers=admin).json()
    assert [model["name"] for model in listed["models"]] == ["m"]
    assert ok(client.get("/v1/models", headers=admin)) == {"models": []}
    version = ok(client.get("/v1/models/m/versions/2?user_id=1", headers=admin))
    assert version["run_id"] == "r2"


def enqueued(redis: fakeredis.FakeRedis, response: Reply) -> JSONObject:
    body = ok(response, 202)
    job = Job.fetch(str(body["job_id"]), connection=redis, serializer=JSONSerializer)
    (payload,) = job.args
    assert isinstance(payload, dict)
    assert payload["run_id"] == body["run_id"]
    return payload


@pytest.mark.parametrize(
    ("job_type", "fields"),
    [("eval", {}), ("score", {"text": "To be"}), ("generate", {"prompt_text": "To"})],
)
def test_inference_jobs_take_a_model_reference(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    registered: str,
    job_type: str,
    fields: JSONObject,
) -> None:
    ok(client.put("/v1/models/m/aliases/production", json={"version": 2}))
    path = f"/v1/jobs/{job_type}"
    by_alias = enqueued(redis, client.post(path, json={**fields, "model": "m@production"}))
    assert (by_alias["run_id"], by_alias["step"]) == ("r2", None)
    by_number = enqueued(redis, client.post(path, json={**fields, "model": "m/3"}))
    assert (by_number["run_id"], by_number["step"]) == ("r1", 20)
    by_run = enqueued(redis, client.post(path, json={**fields, "run_id": "r1"}))
    assert (by_run["run_id"], by_run["step"]) == ("r1", None)


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"run_id": "r1", "model": "m/1"}, (422, "INVALID_CONFIG", "model")),
        ({}, (422, "INVALID_CONFIG", "run_id")),
        ({"model": "m@staging"}, (404, "MODEL_NOT_FOUND", "model")),
        ({"model": "m/4"}, (404, "MODEL_NOT_FOUND", "model")),
        ({"model": "other/1"}, (404, "MODEL_NOT_FOUND", "model")),
        ({"model": "m"}, (422, "INVALID_CONFIG", "model")),
        ({"model": "m@" + "x" * 200}, (422, "INVALID_CONFIG", "model")),
    ],
)
@pytest.mark.usefixtures("registered")
def test_inference_jobs_need_exactly_one_target_that_exists(
    client: TestClient,
    assert_no_trace: Callable[[], None],
    fields: JSONObject,
    refusal: tuple[int, str, str],
) -> None:
    response = client.post("/v1/jobs/generate", json={"prompt_text": "To", **fields})
    assert error_of(response) == refusal
    assert_no_trace()


def test_a_version_whose_checkpoint_was_pruned_is_not_found(
    client: TestClient, registered: str, settings: Settings, assert_no_trace: Callable[[], None]
) -> None:
    (checkpoint_dir(settings, "r1", 20) / "metrics.json").unlink()
    checkpoint_dir(settings, "r1", 20).rmdir()
    response = client.post("/v1/jobs/score", json={"model": "m/3", "text": "To"})
    assert error_of(response) == (404, "MODEL_NOT_FOUND", "model")
    assert ok(client.get("/v1/models/m/versions/3"))["metrics"] == CHECKPOINT_METRICS
    assert_no_trace()


def test_a_run_trained_before_stop_reasons_registers_as_completed(
    client: TestClient, save_run: Callable[[str, str], RunManifest], settings: Settings
) -> None:
    manifest = save_run("old", NOW)
    path = run_dir(settings, "old") / "manifest.json"
    raw = orjson.loads(path.read_bytes())
    for field in ("stop_reason", "best_val_loss", "best_step"):
        del raw["metrics"][field]
    path.write_bytes(orjson.dumps(raw))
    ok(client.post("/v1/models", json={"name": "m"}), 201)
    version = ok(client.post("/v1/models/m/versions", json={"run_id": "old"}), 201)
    metrics = version["metrics"]
    assert isinstance(metrics, dict)
    assert (metrics["stop_reason"], metrics["best_val_loss"], metrics["best_step"]) == (
        "completed",
        None,
        None,
    )
    assert metrics["loss"] == manifest["metrics"]["loss"]
