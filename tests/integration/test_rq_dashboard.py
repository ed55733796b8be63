"""RQ dashboard, started as README says (`rq-dashboard --json`), reads our jobs: a finished
training with its progress in RQ's meta, a cancelled one as canceled, our workers and queues."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer
from tests.support.backends import train_cfg
from tests.support.processes import cli_process, free_port, stop, wait_for
from tests.support.records import queued_record

from model_trainer.contracts.jobs import TrainJobPayload
from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from model_trainer.worker.worker_entry import make_worker
from platform_core.json_types import JSONObject, JSONValue, load_json_object
from platform_workers.redis_conn import RedisClient

TRAIN = "model_trainer.worker.train_job.process_train_job"


@pytest.fixture
def dashboard(redis_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """The `rq-dashboard` console script beside this interpreter, on this test's Redis."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("rq-dashboard")), "--json"]
    command += ["--redis-url", redis_url, "--bind", "127.0.0.1", "--port", str(port)]
    with (tmp_path / "dashboard.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def answers() -> bool:
        try:
            return client.get("/0/data/queues.json").status_code == 200
        except httpx.TransportError:
            return False

    wait_for(answers, timeout=30, what="rq-dashboard")
    yield client
    client.close()
    stop(process)


@pytest.fixture
def worker_env(redis_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """What RQ's job functions read when the worker calls them with only a payload."""
    for name, value in (
        ("REDIS_URL", redis_url),
        ("ARTIFACTS_ROOT", str(settings["artifacts_root"])),
        ("DATA_ROOT", str(settings["data_root"])),
    ):
        monkeypatch.setenv(name, value)


def _enqueue_training(redis: RedisClient, job_id: str, corpus: Path, max_steps: int) -> None:
    """As the API submits one: the record first, then the RQ job by dotted path."""
    JobStore(redis).create(queued_record(job_id, "train", job_id))
    payload: TrainJobPayload = {
        "job_id": job_id,
        "user_id": 1,
        "run_id": job_id,
        "config": train_cfg("char_lstm", corpus, max_steps=max_steps),
        "tokenizer_id": None,
    }
    Queue("train", connection=redis, serializer=JSONSerializer).enqueue(
        TRAIN, payload, job_id=job_id
    )


def _json(dashboard: httpx.Client, path: str) -> JSONObject:
    response = dashboard.get(path)
    assert response.status_code == 200, response.text[:500]
    return load_json_object(response.content)


def _train_queue(dashboard: httpx.Client) -> JSONObject:
    queues = _json(dashboard, "/0/data/queues.json")["queues"]
    assert isinstance(queues, list)
    found = [queue for queue in queues if isinstance(queue, dict) and queue["name"] == "train"]
    assert len(found) == 1
    return found[0]


def _meta(job: JSONObject) -> JSONObject:
    """The dashboard shows a job's meta as a JSON string."""
    metadata = job["metadata"]
    assert isinstance(metadata, str)
    return load_json_object(metadata)


@pytest.mark.usefixtures("worker_env")
def test_a_finished_training_shows_its_progress(
    dashboard: httpx.Client, redis: RedisClient, corpus_path: Path
) -> None:
    _enqueue_training(redis, "done", corpus_path, max_steps=20)
    make_worker("train", redis).work(burst=True)

    job = _json(dashboard, "/0/data/job/done.json")
    assert (job["status"], job["origin"], job["exc_info"]) == ("finished", "train", None)
    record = JobStore(redis).get("done")
    assert record is not None
    assert job["result"] == record["result"]
    meta = _meta(job)
    assert (meta["progress"], meta["message"]) == (record["progress"], record["message"])
    assert (meta["progress"], meta["message"]) == (1.0, "completed")
    assert (meta["step"], meta["total_steps"]) == (20, 20)
    loss, tokens_per_second = meta["loss"], meta["tokens_per_second"]
    assert isinstance(loss, float) and 0 < loss < 10
    assert isinstance(tokens_per_second, float) and tokens_per_second > 0
    train = _train_queue(dashboard)
    assert (train["finished_job_registry_count"], train["failed_job_registry_count"]) == (1, 0)


@pytest.mark.usefixtures("worker_env")
def test_a_training_cancelled_while_running_is_canceled_in_rq(
    dashboard: httpx.Client, redis: RedisClient, corpus_path: Path
) -> None:
    """The cancel flag is up as the worker starts it: it runs, stops at step 0, and ends in
    RQ's canceled registry (not the failed one), as our record ends cancelled."""
    _enqueue_training(redis, "stopped", corpus_path, max_steps=1_000_000)
    store = JobStore(redis)
    store.request_cancel("stopped")
    make_worker("train", redis).work(burst=True)

    record = store.get("stopped")
    assert record is not None
    assert (record["status"], record["attempts"]) == ("cancelled", 1)
    assert record["error"] is not None and record["error"]["code"] == "TRAINING_CANCELLED"
    rq_job = Job.fetch("stopped", connection=redis, serializer=JSONSerializer)
    assert rq_job.get_status() == JobStatus.CANCELED
    assert "stopped" in CanceledJobRegistry("train", connection=redis).get_job_ids()
    assert "stopped" not in FailedJobRegistry("train", connection=redis).get_job_ids()
    assert "stopped" not in StartedJobRegistry("train", connection=redis).get_job_ids()

    job = _json(dashboard, "/0/data/job/stopped.json")
    assert job["status"] == "canceled"
    assert job["started_at"] is not None and job["ended_at"] is not None
    assert _meta(job)["message"] == record["message"] == record["error"]["message"]
    train = _train_queue(dashboard)
    assert (train["canceled_job_registry_count"], train["failed_job_registry_count"]) == (1, 0)
    assert train["started_job_registry_count"] == 0


def test_our_workers_are_listed_with_their_queues(
    dashboard: httpx.Client, service_env: dict[str, str]
) -> None:
    worker = cli_process(["worker", "--queues", "infer"], service_env)
    workers: JSONValue = []

    def waiting_for_work() -> bool:
        nonlocal workers
        workers = _json(dashboard, "/0/data/workers.json")["workers"]
        return isinstance(workers, list) and any(
            isinstance(entry, dict) and entry["state"] == "idle" for entry in workers
        )

    try:
        wait_for(waiting_for_work, timeout=60, what="an idle worker in workers.json")
    finally:
        stop(worker)
    assert isinstance(workers, list) and len(workers) == 1
    listed = workers[0]
    assert isinstance(listed, dict)
    assert listed["queues"] == ["infer-high", "infer", "infer-low"]
    assert listed["current_job"] == "idle"
    assert dashboard.get("/").status_code == 200
