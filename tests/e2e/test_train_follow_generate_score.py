"""The main story over HTTP: API and worker as separate processes, a real redis-server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.client import PubSub
from tests.conftest import SAMPLE_TEXT
from tests.support.processes import cli_process, start_api, stop

from model_trainer.client import TrainerClient
from platform_core.job_events import JOB_EVENT_TYPES, decode_job_event
from platform_core.json_types import JSONObject
from platform_core.trainer_metrics_events import decode_trainer_metrics_event
from platform_workers.redis_conn import RedisClient


def decode(event_type: str, data: str) -> str:
    """Decode with platform_core's decoders (which validate every field); return the type."""
    if event_type in JOB_EVENT_TYPES:
        return decode_job_event(data)["type"]
    return decode_trainer_metrics_event(data)["type"]


def subscriber(redis: RedisClient, seen: list[str], ready: threading.Event) -> None:
    pubsub = PubSub(redis.connection_pool)
    pubsub.subscribe("trainer:events")
    ready.set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.5)
        if message is None or message["type"] != "message":
            continue
        data = message["data"]
        assert isinstance(data, bytes)
        text = data.decode()
        seen.append(text)
        if '"trainer.job.completed.v1"' in text or '"trainer.job.failed.v1"' in text:
            break
    pubsub.close()


@pytest.fixture
def client(service_env: dict[str, str]) -> Iterator[TrainerClient]:
    api, base_url = start_api(service_env)
    worker = cli_process(["worker", "--queues", "train,infer"], service_env)
    trainer_client = TrainerClient(base_url)
    yield trainer_client
    trainer_client.close()
    stop(worker)
    stop(api)


def wait_done(client: TrainerClient, job_id: str) -> JSONObject:
    for _ in client.events(job_id):
        pass
    return client.job(job_id)


def test_upload_train_follow_then_generate_and_score(
    client: TrainerClient, redis: RedisClient, tmp_path: Path
) -> None:
    uploaded = client.upload_corpus(SAMPLE_TEXT.encode())
    seen_on_pubsub: list[str] = []
    ready = threading.Event()
    listener = threading.Thread(target=subscriber, args=(redis, seen_on_pubsub, ready))
    listener.start()
    ready.wait(5)

    accepted = client.submit(
        "train",
        {
            "model_family": "char_lstm",
            "model_size": "tiny",
            "corpus_id": uploaded["corpus_id"],
            "max_seq_len": 32,
            "batch_size": 8,
            "max_steps": 40,
            "log_every_steps": 5,
            "device": "cpu",
        },
    )
    assert accepted["status"] == "queued"
    assert accepted["queue"] == "train"
    job_id, run_id = str(accepted["job_id"]), str(accepted["run_id"])

    streamed = list(client.events(job_id))
    types = [decode(event["event"], event["data"]) for event in streamed]
    lifecycle = [t for t in types if t != "trainer.job.progress.v1"]
    assert lifecycle[0] == "trainer.job.started.v1"
    assert lifecycle[1] == "trainer.metrics.config.v1"
    assert lifecycle[-2:] == ["trainer.metrics.completed.v1", "trainer.job.completed.v1"]
    middle = lifecycle[2:-2]
    assert middle and set(middle) == {"trainer.metrics.progress.v1"}
    assert [event["event"] for event in streamed] == types

    listener.join(30)
    assert seen_on_pubsub == [event["data"] for event in streamed]

    record = client.job(job_id)
    assert record["status"] == "completed"
    assert record["attempts"] == 1
    assert record["progress"] == 1.0
    result = record["result"]
    assert isinstance(result, dict)
    assert result["run_id"] == run_id and result["steps"] == 40

    generated = client.submit(
        "generate",
        {"run_id": run_id, "prompt_text": "To be", "max_new_tokens": 30, "seed": 3},
    )
    assert generated["queue"] == "infer"
    gen_record = wait_done(client, str(generated["job_id"]))
    assert gen_record["status"] == "completed"
    gen_result = gen_record["result"]
    assert isinstance(gen_result, dict)
    outputs = gen_result["outputs"]
    assert isinstance(outputs, list) and len(outputs) == 1
    assert isinstance(outputs[0], str) and outputs[0].startswith("To be")

    scored = client.submit(
        "score", {"run_id": run_id, "text": "To be, or not", "detail_level": "per_char"}
    )
    score_record = wait_done(client, str(scored["job_id"]))
    assert score_record["status"] == "completed"
    score_result = score_record["result"]
    assert isinstance(score_result, dict)
    per_token = score_result["per_token"]
    assert isinstance(per_token, list) and len(per_token) == len("To be, or not")
    loss = score_result["loss"]
    assert isinstance(loss, float) and 0.0 < loss < 5.0
