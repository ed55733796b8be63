"""Cancelling a running generate over HTTP: it stops within a step, and the infer worker is free
for the next request at once (before, DELETE answered 202 and the generate ran to its end)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.backends import train_cfg, train_run
from tests.support.processes import cli_process, start_api, stop

from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM_BACKEND
from model_trainer.client import TrainerClient
from model_trainer.contracts.limits import MAX_NEW_TOKENS, MAX_RETURN_SEQUENCES
from model_trainer.settings import Settings
from platform_core.job_events import JobEventV1, decode_job_event, is_failed
from platform_core.json_types import JSONValue

# The most tokens and sequences a request may ask for, from a medium LSTM: seconds of decoding
# on one CPU thread (no import of transformers first), so the cancel lands mid-decoding.
ENDLESS: dict[str, JSONValue] = {
    "prompt_text": "To",
    "max_new_tokens": MAX_NEW_TOKENS,
    "num_return_sequences": MAX_RETURN_SEQUENCES,
    "stop_on_eos": False,
    "timeout_s": 60,
}


@pytest.fixture
def api(service_env: dict[str, str]) -> Iterator[TrainerClient]:
    process, base_url = start_api(service_env)
    client = TrainerClient(base_url)
    yield client
    client.close()
    stop(process)


@pytest.fixture
def run_id(settings: Settings, corpus_path: Path) -> str:
    """A trained run in the service's artifacts root, made here so no train job is needed."""
    medium = train_cfg("char_lstm", corpus_path, max_steps=5, size="medium")
    train_run(CHAR_LSTM_BACKEND, settings, medium, "r1")
    return "r1"


def _wait_started(api: TrainerClient, job_id: str) -> Iterator[JobEventV1]:
    """The job's remaining events, once it has started on the worker."""
    events = api.events(job_id)
    for event in events:
        if event["event"] == "trainer.job.started.v1":
            return (decode_job_event(e["data"]) for e in events)
    raise AssertionError(f"job {job_id} ended before it started")


def test_a_running_generate_stops_on_delete_and_the_next_one_runs(
    api: TrainerClient, service_env: dict[str, str], run_id: str
) -> None:
    worker = cli_process(["worker", "--queues", "train,infer"], service_env)
    try:
        job_id = str(api.submit("generate", {"run_id": run_id, **ENDLESS})["job_id"])
        rest = _wait_started(api, job_id)
        time.sleep(1.0)  # well into decoding
        asked = time.monotonic()
        assert api.cancel(job_id)["status"] == "running"
        last = list(rest)[-1]
        took = time.monotonic() - asked
        following = str(api.submit("generate", {"run_id": run_id, "prompt_text": "To"})["job_id"])
        for _ in api.events(following):
            pass
    finally:
        stop(worker)
    assert took < 5.0
    assert is_failed(last)
    assert last["code"] == "TRAINING_CANCELLED"
    assert last["error_kind"] == "user"
    record = api.job(job_id)
    assert record["status"] == "cancelled"
    error = record["error"]
    assert isinstance(error, dict)
    assert error["code"] == "TRAINING_CANCELLED"
    message = error["message"]
    assert isinstance(message, str)
    assert message.startswith("generation cancelled after ")
    assert message.endswith(f" of {MAX_NEW_TOKENS} tokens")
    assert api.job(following)["status"] == "completed"
