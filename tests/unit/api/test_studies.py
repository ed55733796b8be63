"""`/v1/studies` on fakeredis: what a study request must satisfy (refused with a coded error
and nothing stored), what the API stores and shows, and cancelling a study with its trials."""

from __future__ import annotations

from pathlib import Path

import fakeredis
import pytest
from fastapi.testclient import TestClient
from tests.unit.api.conftest import bearer

from model_trainer.api import SubmitContext
from model_trainer.api.routes.studies import best_trial
from model_trainer.api.schemas import TrainJobRequest
from model_trainer.api.submit import submit_train
from model_trainer.contracts.studies import TrialRecord, TrialState
from model_trainer.contracts.train_config import FAMILY_TRAIN_DEFAULTS
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import CreatedKey, create_key
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import utc_now
from model_trainer.storage.studies import StudyStore
from platform_core.json_types import JSONObject, JSONValue

BASE: dict[str, JSONValue] = {
    "model_family": "char_lstm",
    "model_size": "tiny",
    "corpus_path": "corpus.txt",
    "max_seq_len": 32,
    "batch_size": 8,
    "max_steps": 20,
    "eval_every_steps": 10,
    "val_fraction": 0.2,
}
LR: dict[str, JSONValue] = {"name": "learning_rate", "type": "float", "low": 1e-4, "high": 1e-2}


def study_body(**fields: JSONValue) -> dict[str, JSONValue]:
    return {"base": BASE, "search_space": [LR], "n_trials": 4, **fields}


@pytest.fixture(autouse=True)
def _corpus(corpus_path: Path) -> None:
    assert corpus_path.is_file()


def _refusal(client: TestClient, body: dict[str, JSONValue]) -> JSONObject:
    response = client.post("/v1/studies", json=body)
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert isinstance(error, dict)
    return error


def test_a_study_is_stored_running_with_its_spec(
    client: TestClient, redis: fakeredis.FakeRedis
) -> None:
    response = client.post("/v1/studies", json=study_body(name="lr", parallelism=2))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "running"
    assert body["name"] == "lr"
    assert body["counts"] == dict.fromkeys(
        ("waiting", "running", "complete", "pruned", "failed", "cancelled"), 0
    )
    assert body["best_trial"] is None
    assert body["spec"]["search_space"] == [
        {
            "name": "learning_rate",
            "type": "float",
            "low": 1e-4,
            "high": 1e-2,
            "step": None,
            "log": False,
            "choices": None,
        }
    ]
    assert body["spec"]["base"]["max_steps"] == 20
    # Defaults filled in, the family's too.
    recipe = FAMILY_TRAIN_DEFAULTS["char_lstm"]
    assert body["spec"]["base"]["learning_rate"] == recipe["learning_rate"]
    assert body["spec"]["base"]["warmup_steps"] == recipe["warmup_steps"]
    assert StudyStore(redis).running() == [body["study_id"]]
    assert client.get(f"/v1/studies/{body['study_id']}").json() == body
    assert client.get("/v1/studies").json() == {"studies": [body]}
    assert client.get(f"/v1/studies/{body['study_id']}/trials").json() == {"trials": []}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"base": {**BASE, "run_id": "mine"}}, "base.run_id"),
        ({"base": {**BASE, "val_fraction": 0.0}}, "base.val_fraction"),
        ({"base": {**BASE, "eval_every_steps": None}, "pruner": "median"}, "base.eval_every_steps"),
        ({"parallelism": 64}, "parallelism"),
        ({"search_space": [{**LR, "name": "model_family"}]}, "search_space.0.name"),
        ({"search_space": [{**LR, "type": "int"}]}, "search_space.0.name"),
        ({"search_space": [LR, LR]}, "search_space"),
        ({"search_space": [{**LR, "choices": [1]}]}, "search_space.0"),
        ({"search_space": [{"name": "learning_rate", "type": "float"}]}, "search_space.0"),
        ({"search_space": [{**LR, "low": 1.0, "high": 0.5}]}, "search_space.0"),
        (
            {"search_space": [{"name": "batch_size", "type": "int", "low": 1.5, "high": 4}]},
            "search_space.0",
        ),
        ({"search_space": [{**LR, "low": 0.0, "log": True}]}, "search_space.0"),
        ({"search_space": [{**LR, "log": True, "step": 0.001}]}, "search_space.0"),
        (
            {
                "search_space": [
                    {"name": "seed", "type": "int", "low": 1, "high": 9, "step": 2, "log": True}
                ]
            },
            "search_space.0",
        ),
        (
            {"search_space": [{"name": "model_size", "type": "categorical", "low": 1}]},
            "search_space.0",
        ),
        ({"sampler": "grid"}, "search_space.0"),
        (
            {
                "sampler": "grid",
                "search_space": [{"name": "batch_size", "type": "int", "low": 1, "high": 2}],
            },
            "n_trials",
        ),
        (
            {
                "sampler": "grid",
                "n_trials": 1,
                "search_space": [
                    {"name": "seed", "type": "int", "low": 0, "high": 999},
                    {"name": "batch_size", "type": "int", "low": 1, "high": 99},
                ],
            },
            "search_space",
        ),
        ({"search_space": [{**LR, "high": 11.0}]}, "base.learning_rate"),
    ],
)
def test_what_no_trial_could_honour_is_refused(
    client: TestClient, redis: fakeredis.FakeRedis, fields: dict[str, JSONValue], field: str
) -> None:
    error = _refusal(client, study_body(**fields))
    assert error["code"] == "INVALID_CONFIG"
    details = error["details"]
    assert isinstance(details, dict)
    assert details["field"] == field, error
    assert StudyStore(redis).running() == []


def test_a_trial_the_submission_checks_would_refuse_is_refused_up_front(
    client: TestClient, settings: Settings
) -> None:
    tokens = settings["max_tokens_per_step"]
    space: list[JSONValue] = [
        {"name": "batch_size", "type": "categorical", "choices": [8, tokens]},
        {"name": "model_size", "type": "categorical", "choices": ["tiny"]},
    ]
    error = _refusal(client, study_body(search_space=space))
    assert error["code"] == "INVALID_CONFIG"
    assert "a trial with" in str(error["message"])
    missing = _refusal(client, study_body(base={**BASE, "corpus_path": "nope.txt"}))
    assert missing["code"] == "CORPUS_NOT_FOUND"
    sizes: list[JSONValue] = [
        {"name": "model_size", "type": "categorical", "choices": ["tiny", "huge"]}
    ]
    assert _refusal(client, study_body(search_space=sizes))["code"] == "INVALID_MODEL_SIZE"


def test_another_users_study_is_invisible(
    client: TestClient, redis: fakeredis.FakeRedis, settings: Settings
) -> None:
    study_id = client.post("/v1/studies", json=study_body()).json()["study_id"]
    bob = bearer(create_key(redis, "bob"))
    for response in (
        client.get(f"/v1/studies/{study_id}", headers=bob),
        client.get(f"/v1/studies/{study_id}/trials", headers=bob),
        client.delete(f"/v1/studies/{study_id}", headers=bob),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "STUDY_NOT_FOUND"
    assert client.get("/v1/studies", headers=bob).json() == {"studies": []}
    admin = bearer(create_key(redis, "root", admin=True))
    assert client.get(f"/v1/studies/{study_id}", headers=admin).status_code == 200
    assert client.get("/v1/studies/nope").status_code == 422
    del settings


def _trial(number: int, job_id: str, state: TrialState, value: float | None) -> TrialRecord:
    return {
        "number": number,
        "job_id": job_id,
        "run_id": job_id,
        "params": {"learning_rate": 0.001 * (number + 1)},
        "state": state,
        "value": value,
        "error": None,
        "created_at": utc_now(),
        "finished_at": None,
    }


def test_cancelling_a_study_cancels_its_unfinished_trials(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    settings: Settings,
    api_key: CreatedKey,
) -> None:
    study_id = client.post("/v1/studies", json=study_body()).json()["study_id"]
    ctx: SubmitContext = {"settings": settings, "redis": redis, "jobs": JobStore(redis)}
    request = TrainJobRequest(model_family="char_lstm", model_size="tiny", corpus_path="corpus.txt")
    queued = submit_train(ctx, api_key, request)
    running = submit_train(ctx, api_key, request)
    JobStore(redis).mark_running(running["job_id"], now=utc_now())
    store = StudyStore(redis)
    store.put_trial(study_id, _trial(0, "done", "complete", 1.5))
    store.put_trial(study_id, _trial(1, queued["job_id"], "running", None))
    store.put_trial(study_id, _trial(2, running["job_id"], "running", None))
    store.put_trial(study_id, _trial(3, "never-submitted", "waiting", None))

    response = client.delete(f"/v1/studies/{study_id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["ended_by"]) == ("cancelled", "cancelled")
    assert body["counts"]["cancelled"] == 3
    assert body["best_trial"]["number"] == 0
    cancelled = JobStore(redis).get(queued["job_id"])
    assert cancelled is not None and cancelled["status"] == "cancelled"
    assert redis.exists(f"trainer:cancel:{running['job_id']}") == 1
    assert store.running() == []
    again = client.delete(f"/v1/studies/{study_id}")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "STUDY_ENDED"


def test_the_best_trial_is_the_lowest_complete_value_earliest_first() -> None:
    trials = [
        _trial(0, "a", "complete", 2.0),
        _trial(1, "b", "pruned", 0.5),
        _trial(2, "c", "complete", 1.0),
        _trial(3, "d", "complete", 1.0),
        _trial(4, "e", "running", None),
    ]
    best = best_trial(trials)
    assert best is not None
    assert (best["number"], best["value"], best["job_id"]) == (2, 1.0, "c")
    assert best_trial(trials[1:2]) is None
