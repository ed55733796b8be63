"""Cancelling over HTTP: a running training stops at its next step; a queued job never runs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry
from rq.serializers import JSONSerializer
from tests.conftest import SAMPLE_TEXT
from tests.support.processes import cli_process, start_api, stop

from model_trainer.client import TrainerClient
from model_trainer.contracts.jobs import DOMAIN
from model_trainer.settings import Settings
from platform_core.job_events import decode_job_event, is_failed
from platform_core.json_types import JSONValue
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient

LONG_TRAINING: dict[str, JSONValue] = {
    "model_family": "char_lstm",
    "model_size": "tiny",
    "max_seq_len": 32,
    "batch_size": 8,
    "max_steps": 1_000_000,
    "log_every_steps": 5,
    "checkpoint_every_steps": 1_000,
    "device": "cpu",
}


@pytest.fixture
def api(service_env: dict[str, str]) -> Iterator[TrainerClient]:
    process, base_url = start_api(service_env)
    client = TrainerClient(base_url)
    yield client
    client.close()
    stop(process)


def test_cancel_a_running_training(
    api: TrainerClient, service_env: dict[str, str], settings: Settings, redis: RedisClient
) -> None:
    worker = cli_process(["worker", "--queues", "train"], service_env)
    try:
        corpus_id = api.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
        accepted = api.submit("train", {**LONG_TRAINING, "corpus_id": corpus_id})
        job_id, run_id = str(accepted["job_id"]), str(accepted["run_id"])
        events = api.events(job_id)
        for event in events:
            if event["event"] == "trainer.metrics.progress.v1":
                break
        answer = api.cancel(job_id)
        assert answer["status"] == "running"
        rest = list(events)
    finally:
        stop(worker)
    last = decode_job_event(rest[-1]["data"])
    assert is_failed(last)
    assert last["code"] == "TRAINING_CANCELLED"
    assert last["error_kind"] == "user"
    record = api.job(job_id)
    assert record["status"] == "cancelled"
    assert record["error"] == {
        "code": "TRAINING_CANCELLED",
        "kind": "user",
        "message": record["error"]["message"] if isinstance(record["error"], dict) else "",
    }
    # RQ agrees: canceled, not failed (what RQ dashboard shows).
    rq_job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    assert rq_job.get_status() == JobStatus.CANCELED
    assert job_id in CanceledJobRegistry("train", connection=redis).get_job_ids()
    assert job_id not in FailedJobRegistry("train", connection=redis).get_job_ids()
    checkpoints = settings["artifacts_root"] / "runs" / run_id / "checkpoints"
    saved = sorted(p.name for p in checkpoints.iterdir() if p.name.startswith("step_"))
    assert len(saved) == 1
    assert (checkpoints / saved[0] / "model.safetensors").is_file()


def test_cancel_a_queued_job_and_it_never_runs(
    api: TrainerClient, service_env: dict[str, str], redis: RedisClient
) -> None:
    corpus_id = api.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    accepted = api.submit("train", {**LONG_TRAINING, "corpus_id": corpus_id})
    job_id = str(accepted["job_id"])
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    assert queue.count == 1

    answer = api.cancel(job_id)
    assert answer["status"] == "cancelled"
    assert queue.count == 0
    assert CanceledJobRegistry("train", connection=redis).get_job_ids() == [job_id]

    worker = cli_process(["worker", "--queues", "train"], service_env)
    try:
        time.sleep(3)  # a worker that would pick the job up has had its chance
    finally:
        stop(worker)
    record = api.job(job_id)
    assert record["status"] == "cancelled"
    assert record["attempts"] == 0
    assert record["started_at"] is None
    events = [decode_job_event(data) for _, data in read_events(redis, DOMAIN, job_id)]
    assert [event["type"] for event in events] == ["trainer.job.failed.v1"]
