"""`make run`: Redis, the API and a worker as processes; train over HTTP, follow, sample, score."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from model_trainer.client import API_KEY_ENV, TrainerClient
from model_trainer.follow import render
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import create_key
from model_trainer.storage.corpora import build_default_corpus
from platform_core.json_types import JSONObject, JSONValue
from platform_workers.redis_conn import redis_from_url
from platform_workers.redis_server import redis_server_command, wait_for_redis

STARTUP_TIMEOUT_S = 60.0
REDIS_STARTUP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running(
    command: list[str], env: dict[str, str], log: Path, *, stop_timeout: float = 15.0
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, its output in `log`, stopped (SIGTERM, then SIGKILL) however we leave."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until(check: str, deadline: float, probe: httpx.Client) -> None:
    while time.monotonic() < deadline:
        try:
            if probe.get(check).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{check} did not answer 200 within {STARTUP_TIMEOUT_S} s")


# make run's own user: the demo creates a key for it on the Redis it uses.
DEMO_USER = "demo"


def _redis_url(stack: ExitStack, env: dict[str, str], logs: Path) -> str:
    """REDIS_URL when set; otherwise a private redis-server on a free port, keeping nothing.
    Either answers before the API and worker start, so a missing Redis is one clear error, not
    a worker that dies and an API that never gets ready."""
    if "REDIS_URL" in os.environ:
        url = os.environ["REDIS_URL"]
        wait_for_redis(url, timeout_s=0)
        return url
    port = free_port()
    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mt-redis-"))
    command = redis_server_command(port, Path(workdir))
    print(f"redis: {command[0]} on 127.0.0.1:{port} (private, keeps nothing)")
    stack.enter_context(running(command, env, logs / "redis.log"))
    url = f"redis://127.0.0.1:{port}/0"
    wait_for_redis(url, timeout_s=REDIS_STARTUP_TIMEOUT_S)
    return url


def _finished(client: TrainerClient, job_id: str) -> JSONObject:
    """Follow the job's events to their end, then read its record."""
    for _ in client.events(job_id):
        pass
    return client.job(job_id)


def run_demo(settings: Settings, *, size: str, max_steps: int) -> int:
    env = dict(os.environ)
    logs = settings["artifacts_root"].parent / "logs"
    print(f"redis, api and worker logs: {logs}")
    with ExitStack() as stack:
        env["REDIS_URL"] = _redis_url(stack, env, logs)
        env["ARTIFACTS_ROOT"] = str(settings["artifacts_root"])
        env["DATA_ROOT"] = str(settings["data_root"])
        port = free_port()
        cli = [sys.executable, "-m", "model_trainer.cli"]
        stack.enter_context(running([*cli, "api", "--port", str(port)], env, logs / "api.log"))
        worker = [*cli, "worker", "--queues", "train,infer"]
        stack.enter_context(running(worker, env, logs / "worker.log"))
        base_url = f"http://127.0.0.1:{port}"
        probe = stack.enter_context(httpx.Client(base_url=base_url, timeout=5.0))
        _wait_until("/readyz", time.monotonic() + STARTUP_TIMEOUT_S, probe)
        key = create_key(redis_from_url(env["REDIS_URL"]), DEMO_USER)
        print(f"API key for user {DEMO_USER} (export {API_KEY_ENV}=...): {key['key']}")
        print(f"web page, while the demo runs: {base_url}/ui (it asks for that key)")
        client = TrainerClient(base_url, api_key=key["key"])
        stack.callback(client.close)
        return _train_sample_score(client, settings, size=size, max_steps=max_steps)


def _train_sample_score(
    client: TrainerClient, settings: Settings, *, size: str, max_steps: int
) -> int:
    corpus = build_default_corpus(settings["data_root"] / "stdlib.txt")
    uploaded = client.upload_corpus(corpus.read_bytes())
    print(f"uploaded corpus {uploaded['corpus_id']} ({uploaded['bytes']:,} bytes)")
    train_body: dict[str, JSONValue] = {
        "model_family": "char_lstm",
        "model_size": size,
        "corpus_id": uploaded["corpus_id"],
        "max_steps": max_steps,
        "batch_size": 32,
        "learning_rate": 4e-3,
        "warmup_steps": min(50, max_steps // 10),
        "log_every_steps": 10,
    }
    accepted = client.submit("train", train_body)
    job_id, run_id = str(accepted["job_id"]), accepted["run_id"]
    print(f"train job {job_id} -> run {run_id}")
    if not render(client.events(job_id)):
        return 1
    generated = client.submit(
        "generate",
        {
            "run_id": run_id,
            "prompt_text": "def ",
            "max_new_tokens": 200,
            "temperature": 0.8,
            "top_p": 0.95,
            "seed": 0,
            "num_return_sequences": 2,
        },
    )
    samples = _finished(client, str(generated["job_id"]))["result"]
    outputs = samples.get("outputs") if isinstance(samples, dict) else None
    for index, text in enumerate(outputs if isinstance(outputs, list) else []):
        print(f"--- sample {index + 1} ---\n{text}")
    text = "def main():\n    return 0\n"
    scored = client.submit("score", {"run_id": run_id, "text": text})
    score = _finished(client, str(scored["job_id"]))["result"]
    print(f"--- score of {text!r} ---\n{score}")
    return 0
