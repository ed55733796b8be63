"""The API while Redis is away: a coded 503 with Retry-After, then recovery without a restart."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from tests.support.processes import start_redis, stop

from model_trainer.api.app import create_app
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import create_key
from platform_workers.redis_conn import redis_from_url


def test_the_api_answers_a_coded_503_while_redis_is_away_and_recovers(
    tmp_path: Path, settings: Settings, corpus_path: Path
) -> None:
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    process, url = start_redis(tmp_path / "first")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    train = {"model_family": "char_lstm", "model_size": "tiny", "corpus_path": corpus_path.name}
    app = create_app({**settings, "redis_url": url})
    key = create_key(redis_from_url(url), "tester", admin=True)["key"]
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app, raise_server_exceptions=False, headers=headers) as client:
        assert client.post("/v1/jobs/train", json=train).status_code == 202
        stop(process)
        for response in (
            client.get("/v1/jobs"),
            client.get("/v1/jobs/abc"),
            client.post("/v1/jobs/train", json=train),
            client.delete("/v1/jobs/abc"),
        ):
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "5"
            error = response.json()["error"]
            assert error["code"] == "REDIS_UNAVAILABLE"
            assert set(error) == {"code", "message", "details"}
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["redis"] is False
        restarted, _ = start_redis(tmp_path / "second", port=port)
        try:
            # A fresh Redis without persistence: the key went with the old one.
            assert client.get("/v1/jobs").status_code == 401
            key = create_key(redis_from_url(url), "tester", admin=True)["key"]
            client.headers["Authorization"] = f"Bearer {key}"
            assert client.get("/v1/jobs").status_code == 200
            assert client.post("/v1/jobs/train", json=train).status_code == 202
        finally:
            stop(restarted)
