"""An infer worker killed in the middle of a generate: /readyz stops counting it within
WORKER_LIVENESS_S, and once a worker serves the queue again the generate's record ends
`failed WORKER_LOST` instead of staying `running` for good."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rq import Queue, Worker
from tests.support.backends import train_cfg, train_run
from tests.support.processes import cli_process, start_api, stop, wait_for

from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.client import TrainerClient
from model_trainer.contracts.jobs import WORKER_LIVENESS_S
from model_trainer.contracts.limits import MAX_NEW_TOKENS, MAX_RETURN_SEQUENCES
from model_trainer.settings import Settings
from platform_core.json_types import JSONValue
from platform_workers.redis_conn import RedisClient


@pytest.fixture
def api(service_env: dict[str, str]) -> Iterator[tuple[TrainerClient, str]]:
    process, base_url = start_api(service_env)
    client = TrainerClient(base_url)
    yield client, base_url
    client.close()
    stop(process)


def _ready_infer(base_url: str) -> int:
    workers = httpx.get(f"{base_url}/readyz", timeout=5).json()["workers"]
    count = workers["infer"]
    assert isinstance(count, int)
    return count


def _status(client: TrainerClient, job_id: str) -> object:
    return client.job(job_id)["status"]


def test_a_killed_infer_worker_is_not_ready_and_its_job_ends_as_worker_lost(
    api: tuple[TrainerClient, str],
    service_env: dict[str, str],
    settings: Settings,
    corpus_path: Path,
    redis: RedisClient,
) -> None:
    client, base_url = api
    medium = train_cfg("char_lstm", corpus_path, max_steps=5, size="medium")
    train_run(CHAR_LSTM_BACKEND, settings, medium, "r1")
    first = cli_process(["worker", "--queues", "infer"], service_env)
    second = None
    try:
        wait_for(lambda: _ready_infer(base_url) == 1, timeout=60, what="an infer worker")
        endless: dict[str, JSONValue] = {
            "run_id": "r1",
            "prompt_text": "To",
            "max_new_tokens": MAX_NEW_TOKENS,  # 16 sequences: past its 5 s limit
            "num_return_sequences": MAX_RETURN_SEQUENCES,
            "stop_on_eos": False,
            "timeout_s": 5,
        }
        job_id = str(client.submit("generate", endless)["job_id"])
        wait_for(lambda: _status(client, job_id) == "running", timeout=60, what="the generate")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        assert len(Worker.all(queue=Queue("infer", connection=redis))) == 1  # still registered
        wait_for(
            lambda: _ready_infer(base_url) == 0,
            timeout=WORKER_LIVENESS_S + 15,
            what="/readyz to drop the dead worker",
        )
        second = cli_process(["worker", "--queues", "infer"], service_env)
        wait_for(lambda: _status(client, job_id) == "failed", timeout=90, what="WORKER_LOST")
        error = client.job(job_id)["error"]
        assert isinstance(error, dict) and error["code"] == "WORKER_LOST"
        assert _ready_infer(base_url) == 1
    finally:
        stop(first)
        if second is not None:
            stop(second)
