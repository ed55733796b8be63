"""Metrics and logs end to end: real redis-server, API and worker processes (a spawned work
horse trains). `/metrics` is scraped and parsed with prometheus-client's parser while a training
runs and after jobs ended; every line the processes print is parsed as JSON."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import SAMPLE_TEXT
from tests.support.jobs import finished
from tests.support.processes import free_port, stop, wait_for
from typing_extensions import TypedDict

from model_trainer.client import TrainerClient
from model_trainer.settings import Settings
from model_trainer.storage.runs import run_dir
from platform_core.json_types import JSONObject, JSONValue, load_json_object

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TRAIN: dict[str, JSONValue] = {
    "model_family": "char_lstm",
    "model_size": "tiny",
    "max_seq_len": 32,
    "batch_size": 8,
    "log_every_steps": 5,
    "device": "cpu",
}


def logged_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`model-trainer ARGS` with its stderr (where its log lines go) in `log`."""
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "model_trainer.cli", *args], env=env, stderr=sink
        )


@pytest.fixture
def service(service_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An API and a worker on both queues, logging to tmp_path/{api,worker}.log."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = logged_process(["api", "--port", str(port)], service_env, tmp_path / "api.log")

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout=60, what="the API")
    worker = logged_process(
        ["worker", "--queues", "train,infer"], service_env, tmp_path / "worker.log"
    )
    yield url, tmp_path
    stop(worker)
    stop(api)


def scrape(url: str) -> Samples:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def json_lines(path: Path) -> list[JSONObject]:
    """Every line the process printed, each parsed as JSON (a plain line fails the test)."""
    return [load_json_object(line) for line in path.read_text().splitlines()]


def events(lines: list[JSONObject], event: str) -> dict[object, JSONObject]:
    return {line["job_id"]: line for line in lines if line.get("event") == event}


class Ran(TypedDict):
    """The jobs the test ran: a cancelled long training, a short one, a generate from it and one
    that failed in the worker (with its code)."""

    long: str
    short: str
    generate: str
    doomed: str
    code: str


def test_metrics_and_json_logs_of_real_jobs(service: tuple[str, Path], settings: Settings) -> None:
    url, logs = service
    client = TrainerClient(url)
    ran = run_jobs(client, url, settings)
    client.close()
    check_scrape(scrape(url), ran)
    check_worker_log(json_lines(logs / "worker.log"), ran)
    check_api_log(json_lines(logs / "api.log"), ran)


def run_jobs(client: TrainerClient, url: str, settings: Settings) -> Ran:
    corpus_id = client.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    # A long training: its loss, throughput and progress show while it runs; then a cancel.
    endless = {**TRAIN, "corpus_id": corpus_id, "max_steps": 10**6}
    long_id = str(client.submit("train", endless)["job_id"])
    running: Samples = {}

    def training_shows() -> bool:
        running.update(scrape(url))
        return sample(running, "model_trainer_training_loss", job_id=long_id) is not None

    wait_for(training_shows, timeout=180, what="the running training's loss in /metrics")
    loss = sample(running, "model_trainer_training_loss", job_id=long_id)
    speed = sample(running, "model_trainer_training_tokens_per_second", job_id=long_id)
    progress = sample(running, "model_trainer_training_progress", job_id=long_id)
    assert loss is not None and 0 < loss < 10
    assert speed is not None and speed > 0
    assert progress is not None and 0 <= progress < 0.01
    client.cancel(long_id)
    for _ in client.events(long_id):
        pass
    assert client.job(long_id)["status"] == "cancelled"

    # A short training, a generate from it, and a generate that fails in the worker.
    short = client.submit("train", {**TRAIN, "corpus_id": corpus_id, "max_steps": 20})
    short_id, run_id = str(short["job_id"]), str(short["run_id"])
    finished(client, short_id)
    prompt: dict[str, JSONValue] = {"run_id": run_id, "prompt_text": "To"}
    generate_id = str(client.submit("generate", prompt)["job_id"])
    finished(client, generate_id)
    (run_dir(settings, run_id) / "model.safetensors").unlink()
    doomed_id = str(client.submit("generate", prompt)["job_id"])
    for _ in client.events(doomed_id):
        pass
    error = client.job(doomed_id)["error"]
    assert isinstance(error, dict)
    return {
        "long": long_id,
        "short": short_id,
        "generate": generate_id,
        "doomed": doomed_id,
        "code": str(error["code"]),
    }


def check_scrape(samples: Samples, ran: Ran) -> None:
    ended = "model_trainer_jobs_ended_total"
    assert sample(samples, ended, type="train", status="cancelled", code="TRAINING_CANCELLED") == 1
    assert sample(samples, ended, type="train", status="completed", code="") == 1
    assert sample(samples, ended, type="generate", status="completed", code="") == 1
    assert sample(samples, ended, type="generate", status="failed", code=ran["code"]) == 1
    run_time = "model_trainer_job_duration_seconds"
    for job_type, status in (
        ("train", "completed"),
        ("train", "cancelled"),
        ("generate", "failed"),
    ):
        assert sample(samples, f"{run_time}_count", type=job_type, status=status) == 1
    assert (sample(samples, f"{run_time}_sum", type="train", status="cancelled") or 0) > 0
    requests = "model_trainer_http_requests_total"
    assert sample(samples, requests, method="POST", route="/v1/jobs/train", status="202") == 2
    assert sample(samples, requests, method="POST", route="/v1/jobs/generate", status="202") == 2
    assert sample(samples, requests, method="DELETE", route="/v1/jobs/{job_id}", status="202") == 1
    for queue in ("train-high", "train", "train-low", "infer-high", "infer", "infer-low"):
        assert sample(samples, "model_trainer_queue_depth", queue=queue) == 0
    assert sample(samples, "model_trainer_redis_up") == 1
    assert not any(name.startswith("model_trainer_training_") for name, _ in samples)


def check_worker_log(lines: list[JSONObject], ran: Ran) -> None:
    """One line per start and end, naming the job, its user and type; coded endings are one
    line each: no traceback anywhere (nothing failed as a bug)."""
    completed = events(lines, "job.completed")
    assert set(completed) == {ran["short"], ran["generate"]}
    for job_id, job_type in ((ran["short"], "train"), (ran["generate"], "generate")):
        line = completed[job_id]
        assert (line["type"], line["user_id"], line["level"]) == (job_type, 1, "INFO")
        assert isinstance(line["duration_s"], float)
    assert completed[ran["short"]]["steps"] == 20
    cancelled = events(lines, "job.cancelled")[ran["long"]]
    assert (cancelled["level"], cancelled["code"], cancelled["type"]) == (
        "WARNING",
        "TRAINING_CANCELLED",
        "train",
    )
    failed = events(lines, "job.failed")[ran["doomed"]]
    assert (failed["level"], failed["code"]) == ("ERROR", ran["code"])
    started = set(events(lines, "job.started"))
    assert started == {ran["long"], ran["short"], ran["generate"], ran["doomed"]}
    assert not any("Traceback" in str(line) for line in lines)
    assert any(line["logger"] == "rq.worker" for line in lines)


def check_api_log(lines: list[JSONObject], ran: Ran) -> None:
    """A line per submission, and uvicorn's access lines, all JSON."""
    submitted = events(lines, "job.submitted")
    assert set(submitted) == {ran["long"], ran["short"], ran["generate"], ran["doomed"]}
    assert submitted[ran["short"]]["queue"] == "train" and submitted[ran["short"]]["user_id"] == 1
    assert any(line["logger"] == "uvicorn.access" for line in lines)
