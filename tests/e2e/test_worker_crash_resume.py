"""A worker killed mid-training: RQ retries the job on a new worker, which resumes exactly."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from rq.job import Job
from rq.serializers import JSONSerializer
from safetensors.torch import load_file
from tests.conftest import SAMPLE_TEXT
from tests.support.processes import cli_process, kill_tree, start_api, stop, wait_for

from model_trainer.client import TrainerClient
from model_trainer.contracts.jobs import DOMAIN
from model_trainer.settings import Settings
from platform_core.json_types import JSONValue, load_json_object
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient

# After a SIGKILL, the job must run again on a live worker within this long.
RUNNING_AGAIN_WITHIN_S = 30


@pytest.fixture
def api(service_env: dict[str, str]) -> Iterator[TrainerClient]:
    process, base_url = start_api(service_env)
    client = TrainerClient(base_url)
    yield client
    client.close()
    stop(process)


def _train(api: TrainerClient, corpus_id: str, run_id: str, max_steps: int = 300) -> str:
    body: dict[str, JSONValue] = {
        "model_family": "char_lstm",
        "model_size": "small",
        "corpus_id": corpus_id,
        "run_id": run_id,
        "max_seq_len": 32,
        "batch_size": 8,
        "max_steps": max_steps,
        "log_every_steps": 10,
        "checkpoint_every_steps": 50,
        "seed": 11,
        "device": "cpu",
    }
    return str(api.submit("train", body)["job_id"])


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_sigkilled_worker_job_resumes_on_a_new_worker(
    api: TrainerClient, service_env: dict[str, str], settings: Settings
) -> None:
    runs = settings["artifacts_root"] / "runs"
    corpus_id = str(api.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"])

    worker = cli_process(["worker", "--queues", "train"], service_env)
    reference_job = _train(api, corpus_id, "reference")
    for _ in api.events(reference_job):
        pass
    assert api.job(reference_job)["status"] == "completed"

    job_id = _train(api, corpus_id, "crashed")
    first_checkpoint = runs / "crashed" / "checkpoints" / "step_000000050"
    wait_for(first_checkpoint.is_dir, timeout=60, what="the first checkpoint")
    kill_tree(worker)
    killed = time.monotonic()
    assert not (runs / "crashed" / "model.safetensors").exists()
    assert api.job(job_id)["status"] == "running"

    # What a supervisor does: a new worker at once. It sees the job abandoned once its dead
    # worker missed MISSED_HEARTBEATS heartbeats, and runs it again.
    replacement = cli_process(["worker", "--queues", "train"], service_env)
    try:
        wait_for(
            lambda: api.job(job_id)["attempts"] == 2,
            timeout=RUNNING_AGAIN_WITHIN_S,
            what="the job to run again",
        )
        running_again_after = time.monotonic() - killed
        assert running_again_after < RUNNING_AGAIN_WITHIN_S
        for _ in api.events(job_id, last_event_id=None):
            pass
        wait_for(lambda: api.job(job_id)["status"] == "completed", timeout=120, what="resume")
    finally:
        stop(replacement)

    record = api.job(job_id)
    assert record["attempts"] == 2
    result = record["result"]
    assert isinstance(result, dict)
    resumed_from = result["resumed_from_step"]
    assert isinstance(resumed_from, int) and resumed_from >= 50
    expected, got = _weights(runs / "reference"), _weights(runs / "crashed")
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, got[name]), name


def test_sigterm_preempts_a_training_back_to_the_queue_and_another_worker_resumes_it(
    api: TrainerClient, service_env: dict[str, str], settings: Settings, redis: RedisClient
) -> None:
    """A deploy or scale-down: the training stops at its next step, checkpoints, and is queued
    again within 10 s (not failed); another worker ends it with the uninterrupted weights."""
    runs = settings["artifacts_root"] / "runs"
    corpus_id = str(api.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"])
    worker = cli_process(["worker", "--queues", "train,infer"], service_env)
    reference_job = _train(api, corpus_id, "reference", max_steps=1_000)
    for _ in api.events(reference_job):
        pass
    assert api.job(reference_job)["status"] == "completed"

    job_id = _train(api, corpus_id, "preempted", max_steps=1_000)
    wait_for(
        (runs / "preempted" / "checkpoints" / "step_000000050").is_dir,
        timeout=60,
        what="a checkpoint",
    )
    asked = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: api.job(job_id)["status"] == "queued", timeout=10, what="the requeue")
    worker.wait(timeout=10)
    took = time.monotonic() - asked
    assert took < 10
    assert Job.fetch(job_id, connection=redis, serializer=JSONSerializer).get_status() == "queued"
    assert not (runs / "preempted" / "model.safetensors").exists()
    messages = [
        load_json_object(data).get("message") for _, data in read_events(redis, DOMAIN, job_id)
    ]
    assert any(isinstance(m, str) and "back in the queue" in m for m in messages)

    replacement = cli_process(["worker", "--queues", "train"], service_env)
    try:
        wait_for(lambda: api.job(job_id)["status"] == "completed", timeout=120, what="resume")
    finally:
        stop(replacement)
    record = api.job(job_id)
    assert record["attempts"] == 2
    result = record["result"]
    assert isinstance(result, dict)
    resumed_from = result["resumed_from_step"]
    assert isinstance(resumed_from, int) and 50 <= resumed_from < 1_000
    expected, got = _weights(runs / "reference"), _weights(runs / "preempted")
    assert expected.keys() == got.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, got[name]), name
