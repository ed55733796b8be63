"""The API and a worker on both queues over `rediss://` with a password, against a redis-server
that speaks only TLS and whose certificate is checked against a throwaway CA: a training is
followed to `completed` over the API's event stream and then served by a generate."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from tests.conftest import SAMPLE_TEXT
from tests.support.jobs import finished
from tests.support.processes import cli_process, start_api, stop
from tests.support.redis_ha import start_tls_redis

from model_trainer.client import API_KEY_ENV, TrainerClient
from model_trainer.storage.api_keys import create_key
from platform_workers.redis_conn import redis_from_url


def test_the_service_runs_over_tls_with_a_password(
    tmp_path: Path, service_env: dict[str, str]
) -> None:
    server, url = start_tls_redis(tmp_path / "redis")
    redis = redis_from_url(url)
    key = create_key(redis, "tester", admin=True)["key"]
    env = {**service_env, "REDIS_URL": url, API_KEY_ENV: key}
    worker = cli_process(["worker", "--queues", "train,infer"], env)
    api, base_url = start_api(env)
    client = TrainerClient(base_url, api_key=key)
    try:
        corpus = client.upload_corpus(SAMPLE_TEXT.encode())
        accepted = client.submit(
            "train",
            {
                "model_family": "char_lstm",
                "model_size": "tiny",
                "corpus_id": corpus["corpus_id"],
                "max_seq_len": 32,
                "batch_size": 8,
                "max_steps": 20,
                "device": "cpu",
            },
        )
        events = [event["event"] for event in client.events(str(accepted["job_id"]))]
        assert events[0] == "trainer.job.started.v1"
        assert events[-1] == "trainer.job.completed.v1"
        assert client.job(str(accepted["job_id"]))["status"] == "completed"
        generated = client.submit(
            "generate", {"run_id": accepted["run_id"], "prompt_text": "To", "max_new_tokens": 5}
        )
        outputs = finished(client, str(generated["job_id"]))["outputs"]
        assert isinstance(outputs, list) and str(outputs[0]).startswith("To")
        # The certificate is really checked: without the CA the same server is refused.
        unverified = redis_from_url(url.split("?")[0])
        with pytest.raises(RedisConnectionError, match="certificate verify failed"):
            unverified.ping()
        unverified.close()
    finally:
        client.close()
        stop(api)
        stop(worker)
        redis.close()
        stop(server)
