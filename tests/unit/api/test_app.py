"""The app factory: what uvicorn calls, what it documents, and what it never imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fakeredis
import pytest
from fastapi.testclient import TestClient
from tests.unit.api.conftest import bearer

from model_trainer.api.app import create_app
from model_trainer.api.event_hub import EventHub
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import CreatedKey, create_key
from platform_workers.redis_conn import redis_from_url


def test_factory_reads_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MAX_CORPUS_BYTES", "10")
    key = create_key(redis_from_url(redis_url), f"factory-{tmp_path.name}")
    # One event loop for the app's life (its async Redis client's connections belong to it).
    with TestClient(create_app(), headers={"Authorization": f"Bearer {key['key']}"}) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        too_big = client.post("/v1/corpora", content=b"eleven byte")
        assert too_big.status_code == 413
        stored = client.post("/v1/corpora", content=b"ten bytes!")
        assert stored.status_code == 201
    assert (tmp_path / "artifacts" / "corpora" / f"{stored.json()['sha256']}.txt").is_file()


def test_readiness_says_when_redis_is_out_of_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    client = TestClient(create_app())
    assert client.get("/readyz").json()["redis"] is False


def test_the_api_process_never_imports_torch_tokenizers_or_a_backend(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from model_trainer.api.app import create_app\n"
        "from fastapi.testclient import TestClient\n"
        "client = TestClient(create_app())\n"
        "assert client.get('/openapi.json').status_code == 200\n"
        "heavy = [m for m in sys.modules"
        " if m.split('.')[0] in ('torch', 'transformers', 'numpy', 'tokenizers', 'onnx',"
        " 'onnxruntime', 'onnxscript', 'optuna')"
        " or m.startswith(('model_trainer.backends.char_lstm', 'model_trainer.export'))]\n"
        "print(heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"ARTIFACTS_ROOT": str(tmp_path), "DATA_ROOT": str(tmp_path), "PATH": ""},
    )
    assert done.stdout.strip() == "[]"


def test_openapi_documents_every_route_and_the_error_shape(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert set(document["paths"]) == {
        "/v1/studies",
        "/v1/studies/{study_id}",
        "/v1/studies/{study_id}/trials",
        "/v1/jobs/train",
        "/v1/jobs/eval",
        "/v1/jobs/score",
        "/v1/jobs/generate",
        "/v1/jobs/tokenizer",
        "/v1/jobs/export",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/logs",
        "/v1/jobs/{job_id}/bundle",
        "/v1/corpora",
        "/v1/runs",
        "/v1/runs/{run_id}",
        "/v1/runs/{run_id}/metrics",
        "/v1/runs/{run_id}/checkpoints",
        "/v1/runs/compare",
        "/v1/models",
        "/v1/models/{name}",
        "/v1/models/{name}/versions",
        "/v1/models/{name}/versions/{version}",
        "/v1/models/{name}/compare",
        "/v1/models/{name}/aliases/{alias}",
        "/v1/models/{name}/aliases/{alias}/rollback",
        "/v1/schedules",
        "/v1/schedules/{schedule_id}",
        "/v1/schedules/{schedule_id}/pause",
        "/v1/schedules/{schedule_id}/resume",
        "/healthz",
        "/readyz",
    }
    train = document["paths"]["/v1/jobs/train"]["post"]
    assert "202" in train["responses"]
    assert {"202", "400", "401", "404", "413", "422", "429", "500", "503"} == set(
        train["responses"]
    )
    assert "text/plain" in document["paths"]["/v1/corpora"]["post"]["requestBody"]["content"]
    bundle = document["paths"]["/v1/jobs/{job_id}/bundle"]["get"]["responses"]["200"]
    assert "application/gzip" in bundle["content"]
    assert client.get("/docs").status_code == 200


def test_unknown_routes_and_methods_are_coded_too(client: TestClient) -> None:
    missing = client.get("/v2/nothing")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "ROUTE_NOT_FOUND")
    wrong = client.put("/v1/jobs/train")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (405, "METHOD_NOT_ALLOWED")
    assert wrong.headers["Allow"]


def test_an_unexpected_failure_is_a_coded_500_not_a_bare_one(
    settings: Settings, redis: fakeredis.FakeRedis, hub: EventHub, api_key: CreatedKey
) -> None:
    redis.set("trainer:job:broken", b"not a hash")  # HGETALL answers WRONGTYPE
    app = create_app(settings, redis, hub)
    with TestClient(app, raise_server_exceptions=False, headers=bearer(api_key)) as client:
        response = client.get("/v1/jobs/broken")
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "INTERNAL_ERROR",
            "message": "internal error (ResponseError)",
            "details": {},
        }
    }
