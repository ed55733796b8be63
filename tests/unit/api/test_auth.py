"""API keys, per-user isolation and admission control, through the HTTP API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol
from unittest.mock import ANY

import fakeredis
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.unit.api.conftest import bearer

from model_trainer.api import auth, submit
from model_trainer.api.admission import PENDING_GRACE_S, active_key
from model_trainer.api.app import create_app
from model_trainer.api.event_hub import EventHub
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import CreatedKey, create_key, revoke_key
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.owners import Owned, claim
from model_trainer.storage.runs import RunManifest, run_dir
from model_trainer.tokenizers.char import CharTokenizer
from model_trainer.tokenizers.store import read_meta, save_tokenizer, tokenizer_dir
from platform_core.json_types import JSONObject, load_json_object, require_object, require_str


class HasContent(Protocol):
    @property
    def content(self) -> bytes: ...


GENERATE: JSONObject = {"run_id": "r1", "prompt_text": "To"}
TRAIN: JSONObject = {"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "corpus.txt"}


@pytest.fixture
def bob(redis: fakeredis.FakeRedis, api_key: CreatedKey) -> dict[str, str]:
    """Headers of a second, ordinary user (alice, the `client` fixture's user, came first)."""
    return bearer(create_key(redis, "bob"))


@pytest.fixture
def admin(redis: fakeredis.FakeRedis, api_key: CreatedKey) -> dict[str, str]:
    return bearer(create_key(redis, "root", admin=True))


def code_of(response: HasContent) -> str:
    return require_str(require_object(load_json_object(response.content), "error"), "code")


@pytest.fixture
def app(settings: Settings, redis: fakeredis.FakeRedis, hub: EventHub) -> FastAPI:
    return create_app(settings, redis, hub)


def v1_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation OpenAPI lists under /v1, with its path parameters filled in."""
    paths = require_object(load_json_object(TestClient(app).get("/openapi.json").content), "paths")
    return [
        (method.upper(), path.replace("{job_id}", "j").replace("{run_id}", "r1"))
        for path, operations in paths.items()
        if path.startswith("/v1/") and isinstance(operations, dict)
        for method in operations
    ]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer nope", "Basic YTpi", "Bearer mtk_000000000000_" + "x" * 43],
)
def test_every_v1_route_refuses_a_missing_or_bad_key_with_a_coded_401(
    app: FastAPI, assert_no_trace: Callable[[], None], authorization: str | None
) -> None:
    routes = v1_routes(app)
    assert len(routes) >= 10
    headers = {} if authorization is None else {"Authorization": authorization}
    anonymous = TestClient(app, headers=headers)
    for method, path in routes:
        response = anonymous.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        assert code_of(response) == "UNAUTHENTICATED"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert_no_trace()


def test_health_readiness_and_the_schema_need_no_key(app: FastAPI) -> None:
    anonymous = TestClient(app)
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert anonymous.get(path).status_code != 401, path  # /readyz: 503 without workers
    schemes = anonymous.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes == {"HTTPBearer": {"type": "http", "scheme": "bearer", "description": ANY}}


def test_a_revoked_key_fails_its_next_request(
    client: TestClient, redis: fakeredis.FakeRedis, api_key: CreatedKey
) -> None:
    assert client.get("/v1/jobs").status_code == 200
    assert revoke_key(redis, api_key["key_id"])
    assert client.get("/v1/jobs").status_code == 401
    assert not revoke_key(redis, api_key["key_id"])


@pytest.mark.usefixtures("corpus_path")
def test_a_key_revoked_after_a_train_submission_writes_no_more_jobs(
    client: TestClient, redis: fakeredis.FakeRedis, api_key: CreatedKey
) -> None:
    """The train route caches who a key is; the submission script still checks the key."""
    assert client.post("/v1/jobs/train", json=TRAIN).status_code == 202
    assert revoke_key(redis, api_key["key_id"])
    keys_before = sorted(redis.keys("*"))
    for _ in range(2):  # the script's refusal, then (forgotten) the key check's
        refused = client.post("/v1/jobs/train", json=TRAIN)
        assert (refused.status_code, code_of(refused)) == (401, "UNAUTHENTICATED")
        assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert sorted(redis.keys("*")) == keys_before
    assert redis.zcard(active_key(api_key["user_id"], "train")) == 1


@pytest.mark.usefixtures("corpus_path")
def test_the_train_routes_key_cache_starts_over_past_its_limit(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    bob: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(auth, "KNOWN_KEYS_LIMIT", 1)
    for headers in ({}, bob, {}):
        assert client.post("/v1/jobs/train", json=TRAIN, headers=headers).status_code == 202
    assert [redis.zcard(active_key(user, "train")) for user in (1, 2)] == [2, 1]


def test_a_key_with_a_forged_secret_is_refused(client: TestClient, api_key: CreatedKey) -> None:
    forged = api_key["key"][:-4] + "AAAA"
    response = client.get("/v1/jobs", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


@pytest.mark.usefixtures("corpus_path", "trained_run")
def test_another_users_objects_are_404_and_records_carry_the_real_user(
    *,
    client: TestClient,
    settings: Settings,
    redis: fakeredis.FakeRedis,
    api_key: CreatedKey,
    own: Callable[[Owned, str], None],
    bob: dict[str, str],
) -> None:
    job_id = client.post("/v1/jobs/generate", json=GENERATE).json()["job_id"]
    corpus_id = client.post("/v1/corpora", content=b"alice's words").json()["corpus_id"]
    save_tokenizer(CharTokenizer.build("To be", "alice-chars"), settings)
    own("tokenizer", "alice-chars")
    record = JobStore(redis).get(job_id)
    assert record is not None and record["user_id"] == api_key["user_id"] == 1
    refusals = [
        (client.get(f"/v1/jobs/{job_id}", headers=bob), 404, "JOB_NOT_FOUND"),
        (client.delete(f"/v1/jobs/{job_id}", headers=bob), 404, "JOB_NOT_FOUND"),
        (client.get(f"/v1/jobs/{job_id}/events", headers=bob), 404, "JOB_NOT_FOUND"),
        (client.get(f"/v1/jobs/{job_id}/logs", headers=bob), 404, "JOB_NOT_FOUND"),
        (client.get("/v1/runs/r1", headers=bob), 404, "MODEL_NOT_FOUND"),
        (client.post("/v1/jobs/generate", json=GENERATE, headers=bob), 404, "MODEL_NOT_FOUND"),
        (client.post("/v1/jobs/eval", json={"run_id": "r1"}, headers=bob), 404, "MODEL_NOT_FOUND"),
        (
            client.post(
                "/v1/jobs/train", json={**TRAIN, "tokenizer_id": "alice-chars"}, headers=bob
            ),
            404,
            "TOKENIZER_NOT_FOUND",
        ),
        (
            client.post(
                "/v1/jobs/train",
                json={**TRAIN, "corpus_path": None, "corpus_id": corpus_id},
                headers=bob,
            ),
            404,
            "CORPUS_NOT_FOUND",
        ),
        (
            client.post("/v1/jobs/train", json={**TRAIN, "run_id": "r1"}, headers=bob),
            422,
            "INVALID_CONFIG",
        ),
        (
            client.post(
                "/v1/jobs/tokenizer",
                json={"corpus_path": "corpus.txt", "tokenizer_id": "alice-chars"},
                headers=bob,
            ),
            422,
            "INVALID_CONFIG",
        ),
        (client.get(f"/v1/jobs?user_id={api_key['user_id']}", headers=bob), 422, "INVALID_CONFIG"),
    ]
    for response, status, code in refusals:
        assert (response.status_code, code_of(response)) == (status, code), response.text
    taken = client.post("/v1/jobs/train", json={**TRAIN, "run_id": "r1"}, headers=bob)
    assert (
        taken.json()["error"]["message"] == "run_id r1 is taken; choose another"
    )  # not "finished"
    assert client.get("/v1/jobs", headers=bob).json()["jobs"] == []
    assert client.get("/v1/runs", headers=bob).json()["runs"] == []
    mine = client.post("/v1/jobs/train", json=TRAIN, headers=bob).json()["job_id"]
    bobs = JobStore(redis).get(mine)
    assert bobs is not None and bobs["user_id"] == 2
    assert [job["job_id"] for job in client.get("/v1/jobs").json()["jobs"]] == [job_id]


@pytest.mark.usefixtures("corpus_path")
def test_a_refused_upload_of_another_user_is_not_found_whatever_is_wrong_with_it(
    client: TestClient, settings: Settings, bob: dict[str, str]
) -> None:
    corpus_id = client.post("/v1/corpora", content=b"alice's words").json()["corpus_id"]
    settings["max_corpus_bytes"] = 4  # lowered since the upload
    body = {**TRAIN, "corpus_path": None, "corpus_id": corpus_id}
    theirs = client.post("/v1/jobs/train", json=body, headers=bob)
    assert (theirs.status_code, code_of(theirs)) == (404, "CORPUS_NOT_FOUND")
    mine = client.post("/v1/jobs/train", json=body)
    assert (mine.status_code, code_of(mine)) == (413, "CORPUS_TOO_LARGE")


@pytest.mark.usefixtures("corpus_path", "trained_run")
def test_an_admin_sees_and_acts_on_every_users_objects(
    client: TestClient, api_key: CreatedKey, admin: dict[str, str]
) -> None:
    job_id = client.post("/v1/jobs/generate", json=GENERATE).json()["job_id"]
    assert client.get(f"/v1/jobs/{job_id}", headers=admin).status_code == 200
    listed = client.get(f"/v1/jobs?user_id={api_key['user_id']}", headers=admin).json()
    assert [job["job_id"] for job in listed["jobs"]] == [job_id]
    assert client.get("/v1/jobs", headers=admin).json()["jobs"] == []  # the admin's own
    assert [run["run_id"] for run in client.get("/v1/runs", headers=admin).json()["runs"]] == ["r1"]
    assert client.post("/v1/jobs/generate", json=GENERATE, headers=admin).status_code == 202
    assert client.delete(f"/v1/jobs/{job_id}", headers=admin).json()["status"] == "cancelled"


@pytest.mark.usefixtures("corpus_path")
def test_fine_tuning_reads_only_the_callers_own_runs(
    client: TestClient,
    settings: Settings,
    own: Callable[[Owned, str], None],
    save_run: Callable[[str, str], RunManifest],
    bob: dict[str, str],
) -> None:
    save_run("mine", "2026-01-01T00:00:00+00:00")
    save_tokenizer(CharTokenizer.build("To be", "chars"), settings)
    own("tokenizer", "chars")
    vocab = read_meta(tokenizer_dir(settings, "chars"))["vocab_size"]
    artifacts = settings["artifacts_root"]
    for directory in (
        run_dir(settings, "mine"),
        artifacts / "tokenizers" / "chars",
        artifacts / "runs",
    ):
        (directory / "config.json").write_bytes(orjson.dumps({"vocab_size": vocab}))
    body: JSONObject = {**TRAIN, "model_family": "gpt2", "max_seq_len": 32, "tokenizer_id": "chars"}
    ok = client.post("/v1/jobs/train", json={**body, "init_from": str(run_dir(settings, "mine"))})
    assert ok.status_code == 202, ok.text
    for elsewhere in ("tokenizers/chars", "runs"):
        refused = client.post(
            "/v1/jobs/train", json={**body, "init_from": str(artifacts / elsewhere)}
        )
        assert (refused.status_code, code_of(refused)) == (404, "MODEL_NOT_FOUND")
    assert bob  # bob owns no tokenizer, so his fine-tuning of `mine` stops at the tokenizer
    theirs = client.post(
        "/v1/jobs/train",
        json={**body, "tokenizer_id": None, "init_from": str(run_dir(settings, "mine"))},
        headers=bob,
    )
    assert (theirs.status_code, code_of(theirs)) == (422, "INVALID_CONFIG")


@pytest.mark.usefixtures("corpus_path", "trained_run")
def test_a_users_active_jobs_per_queue_are_capped_with_a_429(
    client: TestClient, settings: Settings, redis: fakeredis.FakeRedis, bob: dict[str, str]
) -> None:
    settings["max_active_jobs"] = {"train": 1, "infer": 2}
    first = client.post("/v1/jobs/generate", json=GENERATE).json()["job_id"]
    assert client.post("/v1/jobs/score", json={"run_id": "r1", "text": "x"}).status_code == 202
    refused = client.post("/v1/jobs/generate", json=GENERATE)
    assert (refused.status_code, code_of(refused)) == (429, "QUOTA_EXCEEDED")
    assert refused.headers["Retry-After"] == "10"
    assert refused.json()["error"]["details"] == {"queue": "infer", "active": 2, "limit": 2}
    assert client.post("/v1/jobs/train", json=TRAIN).status_code == 202  # another queue
    assert client.post("/v1/jobs/generate", json=GENERATE, headers=bob).status_code == 404
    assert client.delete(f"/v1/jobs/{first}").status_code == 200  # an ended job frees its place
    assert client.post("/v1/jobs/generate", json=GENERATE).status_code == 202
    assert redis.zcard(active_key(1, "infer")) == 2


def test_a_member_that_never_got_a_record_is_dropped_after_a_grace(
    client: TestClient, settings: Settings, redis: fakeredis.FakeRedis, trained_run: RunManifest
) -> None:
    settings["max_active_jobs"] = {"train": 1, "infer": 1}
    redis.zadd(active_key(1, "infer"), {"in-flight": time.time()})
    refused = client.post("/v1/jobs/generate", json=GENERATE)
    assert (refused.status_code, code_of(refused)) == (429, "QUOTA_EXCEEDED")
    redis.zadd(active_key(1, "infer"), {"in-flight": time.time() - PENDING_GRACE_S - 1})
    assert client.post("/v1/jobs/generate", json=GENERATE).status_code == 202


@pytest.mark.usefixtures("corpus_path")
def test_a_train_submission_at_its_limit_repairs_the_count_before_refusing(
    client: TestClient, settings: Settings, redis: fakeredis.FakeRedis
) -> None:
    settings["max_active_jobs"] = {"train": 1, "infer": 1}
    redis.zadd(active_key(1, "train"), {"in-flight": time.time()})
    refused = client.post("/v1/jobs/train", json=TRAIN)
    assert (refused.status_code, code_of(refused)) == (429, "QUOTA_EXCEEDED")
    assert refused.json()["error"]["details"] == {"queue": "train", "active": 1, "limit": 1}
    redis.zadd(active_key(1, "train"), {"in-flight": time.time() - PENDING_GRACE_S - 1})
    accepted = client.post("/v1/jobs/train", json=TRAIN)
    assert accepted.status_code == 202
    assert redis.zrange(active_key(1, "train"), 0, -1) == [accepted.json()["job_id"].encode()]


@pytest.mark.usefixtures("corpus_path")
def test_a_tokenizer_submission_at_its_limit_repairs_the_count_too(
    client: TestClient, settings: Settings, redis: fakeredis.FakeRedis
) -> None:
    """The synchronous path (tokenizers, schedules, studies) repairs the count the same way."""
    settings["max_active_jobs"] = {"train": 1, "infer": 1}
    redis.zadd(active_key(1, "train"), {"in-flight": time.time()})
    body = {"corpus_path": "corpus.txt"}
    refused = client.post("/v1/jobs/tokenizer", json=body)
    assert (refused.status_code, code_of(refused)) == (429, "QUOTA_EXCEEDED")
    redis.zadd(active_key(1, "train"), {"in-flight": time.time() - PENDING_GRACE_S - 1})
    assert client.post("/v1/jobs/tokenizer", json=body).status_code == 202


@pytest.mark.usefixtures("corpus_path", "trained_run")
def test_a_full_queue_is_a_coded_503_for_everyone(
    *,
    client: TestClient,
    settings: Settings,
    redis: fakeredis.FakeRedis,
    bob: dict[str, str],
    save_run: Callable[[str, str], RunManifest],
    queue_lengths: Callable[[], dict[str, int]],
) -> None:
    save_run("shared", "2026-01-01T00:00:00+00:00")
    redis.hset("trainer:owners:run", "shared", 2)  # bob's run from here on
    settings["max_queue_depth"] = 2
    for _ in range(2):
        assert client.post("/v1/jobs/generate", json=GENERATE).status_code == 202
    for headers, run_id in (({}, "r1"), (bob, "shared")):
        body = {"run_id": run_id, "text": "x"}
        refused = client.post("/v1/jobs/score", json=body, headers=headers)
        assert (refused.status_code, code_of(refused)) == (503, "QUEUE_FULL")
        assert refused.headers["Retry-After"] == "10"
    assert queue_lengths() == {"train": 0, "infer": 2}
    assert client.post("/v1/jobs/train", json=TRAIN, headers=bob).status_code == 202


def test_stored_corpus_bytes_are_capped_per_user_and_reuploads_are_free(
    client: TestClient, settings: Settings, bob: dict[str, str]
) -> None:
    settings["max_user_corpus_bytes"] = 10
    assert client.post("/v1/corpora", content=b"six b.").status_code == 201
    assert client.post("/v1/corpora", content=b"six b.").status_code == 201  # already counted
    over = client.post("/v1/corpora", content=b"five!")
    assert (over.status_code, code_of(over)) == (429, "QUOTA_EXCEEDED")
    assert over.json()["error"]["details"] == {"used": 6, "adding": 5, "limit": 10}
    early = client.post("/v1/corpora", content=b"x" * 11)  # refused on its Content-Length
    assert (early.status_code, code_of(early)) == (429, "QUOTA_EXCEEDED")
    assert client.post("/v1/corpora", content=b"five!", headers=bob).status_code == 201
    stored = list((settings["artifacts_root"] / "corpora").iterdir())
    assert len(stored) == 2
    assert all(path.stat().st_mode & 0o777 == 0o644 for path in stored)


@pytest.mark.usefixtures("corpus_path")
def test_an_id_claimed_by_another_user_in_a_race_is_refused_without_a_trace(
    client: TestClient,
    redis: fakeredis.FakeRedis,
    monkeypatch: pytest.MonkeyPatch,
    assert_no_trace: Callable[[], None],
) -> None:
    """Bob claims the id between alice's check and her claim: her submission loses cleanly."""
    assert claim(redis, "tokenizer", "contested", 2)
    monkeypatch.setattr(submit, "owner_of", lambda *_: None)  # the check ran before bob's claim
    body = {"corpus_path": "corpus.txt", "tokenizer_id": "contested"}
    refused = client.post("/v1/jobs/tokenizer", json=body)
    assert (refused.status_code, code_of(refused)) == (422, "INVALID_CONFIG")
    assert redis.zcard(active_key(1, "train")) == 0
    assert_no_trace()
