"""A worker killed mid-training: RQ retries the job on a new worker, which resumes exactly."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.conftest import SAMPLE_TEXT
from tests.support.processes import cli_process, kill_tree, start_api, stop, wait_for

from model_trainer.client import TrainerClient
from model_trainer.settings import Settings
from model_trainer.worker.worker_entry import JOB_MONITORING_INTERVAL, MISSED_HEARTBEATS
from platform_core.json_types import JSONValue

# RQ keeps a started job for monitoring interval + 60 s after each heartbeat; our maintenance
# declares it abandoned once MISSED_HEARTBEATS heartbeats are missed (see worker_entry).
ABANDONED_AFTER_S = (MISSED_HEARTBEATS + 1) * JOB_MONITORING_INTERVAL + 1


@pytest.fixture
def api(service_env: dict[str, str]) -> Iterator[TrainerClient]:
    process, base_url = start_api(service_env)
    client = TrainerClient(base_url)
    yield client
    client.close()
    stop(process)


def _train(api: TrainerClient, corpus_id: str, run_id: str) -> str:
    body: dict[str, JSONValue] = {
        "model_family": "char_lstm",
        "model_size": "small",
        "corpus_id": corpus_id,
        "run_id": run_id,
        "max_seq_len": 32,
        "batch_size": 8,
        "max_steps": 300,
        "num_epochs": 1_000,
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
    assert not (runs / "crashed" / "model.safetensors").exists()
    assert api.job(job_id)["status"] == "running"

    time.sleep(ABANDONED_AFTER_S)
    replacement = cli_process(["worker", "--queues", "train"], service_env)
    try:
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
