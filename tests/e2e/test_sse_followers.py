"""SSE followers against the real API process and redis-server: many followers leave the API
responsive, SIGTERM ends their streams and the process quickly, the CLI follower resumes after
an API restart, and the API's event hub survives losing its pub/sub connection.

The timing bounds here are generous (two shared cores); `bench/sse_followers.py` measures them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import TypedDict

import httpx
import pytest
from tests.conftest import SAMPLE_TEXT
from tests.support.processes import cli_process, free_port, start_api, stop, wait_for

from model_trainer import cli
from model_trainer.api.event_hub import FOLLOW_TIMING
from model_trainer.client import API_KEY_ENV, TrainerClient
from model_trainer.contracts.jobs import DOMAIN
from platform_core.json_types import JSONValue
from platform_core.trainer_metrics_events import (
    TrainerMetricsEventV1,
    make_config_event,
    make_progress_metrics_event,
)
from platform_workers.job_context import JobContext
from platform_workers.keys import events_channel
from platform_workers.redis_conn import RedisClient

TINY_TRAINING: dict[str, JSONValue] = {
    "model_family": "char_lstm",
    "model_size": "tiny",
    "max_seq_len": 32,
    "batch_size": 8,
    "max_steps": 10,
}
STOP_WITHIN_S = 5.0


class Outcome(TypedDict):
    """What one follower saw: the event names, and the error if its stream broke."""

    events: list[str]
    error: str | None


def key_header() -> dict[str, str]:
    """The key `service_env` made for this test (TrainerClient reads the same variable)."""
    return {"Authorization": f"Bearer {os.environ[API_KEY_ENV]}"}


class Followers:
    """Many SSE followers on one event loop, as one browser tab each would be."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            timeout=30.0,
            limits=httpx.Limits(max_connections=None),
            headers=key_header(),
        )
        self.attached = 0
        self.arrivals: list[float] = []  # when each event reached any follower
        self.tasks: list[asyncio.Task[Outcome]] = []

    def start(self, job_ids: list[str], per_job: int) -> None:
        for job_id in job_ids:
            self.tasks += [asyncio.create_task(self._follow(job_id)) for _ in range(per_job)]

    async def _follow(self, job_id: str) -> Outcome:
        events: list[str] = []
        try:
            async with self.http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
                assert response.status_code == 200
                self.attached += 1
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        self.arrivals.append(time.monotonic())
                        events.append(line.removeprefix("event: "))
        except httpx.HTTPError as error:
            return {"events": events, "error": repr(error)}
        return {"events": events, "error": None}

    async def all_attached(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.attached < len(self.tasks):
            assert time.monotonic() < deadline, f"{self.attached}/{len(self.tasks)} attached"
            await asyncio.sleep(0.05)

    async def outcomes(self, timeout: float = 15.0) -> list[Outcome]:
        async with asyncio.timeout(timeout):
            outcomes = await asyncio.gather(*self.tasks)
        await self.http.aclose()
        return outcomes


@pytest.fixture
def api(service_env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    # Each test queues up to 20 jobs for one user: above the per-user cap of 8 on `train`.
    process, base_url = start_api({**service_env, "MAX_ACTIVE_JOBS_TRAIN": "100"})
    yield process, base_url
    stop(process)


def queued_jobs(base_url: str, count: int) -> list[str]:
    """Train jobs that stay queued (no worker runs here)."""
    client = TrainerClient(base_url)
    corpus_id = client.upload_corpus(SAMPLE_TEXT.encode())["corpus_id"]
    body: dict[str, JSONValue] = {**TINY_TRAINING, "corpus_id": corpus_id}
    job_ids = [str(client.submit("train", body)["job_id"]) for _ in range(count)]
    client.close()
    return job_ids


def job_context(redis: RedisClient, job_id: str) -> JobContext:
    """Publishes a job's events as its worker would."""
    return JobContext(redis, domain=DOMAIN, job_id=job_id, user_id=1, queue="train")


def terminate(process: subprocess.Popen[bytes]) -> float:
    """SIGTERM, then the seconds until the process exited (it must exit cleanly)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    return time.monotonic() - started


@pytest.mark.anyio
async def test_200_followers_leave_job_reads_fast_and_all_see_their_end(
    api: tuple[subprocess.Popen[bytes], str], redis: RedisClient
) -> None:
    base_url = api[1]
    job_ids = queued_jobs(base_url, 20)
    followers = Followers(base_url)
    followers.start(job_ids, per_job=10)
    await followers.all_attached()
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, headers=key_header()) as http:
        for job_id in job_ids:
            started = time.monotonic()
            response = await http.get(f"/v1/jobs/{job_id}")
            assert time.monotonic() - started < 1.0
            assert response.json()["status"] == "queued"
    for job_id in job_ids:
        job_context(redis, job_id).publish_failed("user", "TRAINING_CANCELLED", "stopped")
    outcomes = await followers.outcomes()
    assert len(outcomes) == 200
    assert all(o == {"events": ["trainer.job.failed.v1"], "error": None} for o in outcomes)


@pytest.mark.anyio
async def test_sigterm_ends_the_followers_streams_and_the_api_within_5_s(
    api: tuple[subprocess.Popen[bytes], str],
) -> None:
    process, base_url = api
    followers = Followers(base_url)
    followers.start(queued_jobs(base_url, 5), per_job=10)
    await followers.all_attached()
    assert await asyncio.to_thread(terminate, process) < STOP_WITHIN_S
    outcomes = await followers.outcomes()
    assert outcomes == [{"events": [], "error": None}] * 50


@pytest.mark.anyio
async def test_a_follower_silent_past_its_poll_interval_still_gets_the_next_event(
    api: tuple[subprocess.Popen[bytes], str], redis: RedisClient
) -> None:
    """A follower nothing wakes polls on a timer (at most 1.5 poll intervals); the timer must
    leave its stream open. (A cancellation-based timeout ended the stream under coverage on
    Python 3.11 while the connection stayed open, and the client waited forever.)"""
    base_url = api[1]
    (job_id,) = queued_jobs(base_url, 1)
    followers = Followers(base_url)
    followers.start([job_id], per_job=1)
    await followers.all_attached()
    await asyncio.sleep(FOLLOW_TIMING["poll_s"] * 1.5 + 1)
    job_context(redis, job_id).publish_failed("user", "TRAINING_CANCELLED", "stopped")
    outcomes = await followers.outcomes()
    assert outcomes == [{"events": ["trainer.job.failed.v1"], "error": None}]


def serve_api(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """`model-trainer api` on a given port, once it answers."""
    process = cli_process(["api", "--port", str(port)], env)

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout=30, what="the API")
    return process


def report(
    job_id: str, *, step: int, loss: float, val_loss: float | None = None
) -> TrainerMetricsEventV1:
    """A training's progress report at `step` of 10."""
    return make_progress_metrics_event(
        job_id=job_id,
        user_id=1,
        epoch=0,
        total_epochs=1,
        step=step,
        total_steps=10,
        loss=loss,
        val_loss=val_loss,
        tokens_per_second=12345.6,
    )


def test_the_cli_follower_resumes_after_an_api_restart(
    service_env: dict[str, str], redis: RedisClient, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = serve_api(service_env, port)
    job_id = queued_jobs(url, 1)[0]
    worker = job_context(redis, job_id)
    worker.publish_started()
    codes: list[int] = []
    follower = threading.Thread(
        target=lambda: codes.append(cli.main(["--url", url, "follow", job_id]))
    )
    follower.start()
    printed = ""

    def printed_has(text: str) -> bool:
        nonlocal printed
        printed += capsys.readouterr().out
        return text in printed

    worker.publish_metrics(
        make_config_event(
            job_id=job_id,
            user_id=1,
            model_family="char_lstm",
            model_size="tiny",
            total_epochs=1,
            queue="train",
            num_params=1234,
        )
    )
    wait_for(lambda: printed_has("(1,234 parameters)\n"), timeout=10, what="the follower")
    try:
        assert terminate(first) < STOP_WITHIN_S
    finally:
        stop(first)
    # Published while no API runs: read after the restart, from where the follower was.
    worker.publish_metrics(report(job_id, step=5, loss=2.0))
    second = serve_api(service_env, port)
    try:
        worker.publish_metrics(report(job_id, step=10, loss=1.25, val_loss=1.5))
        worker.publish_completed(job_id, 2)
        follower.join(timeout=30)
    finally:
        stop(second)
    assert codes == [0]
    printed_has("")
    lines = printed.splitlines()
    assert "\r" not in printed
    assert lines[:2] == ["started", "training char_lstm/tiny (1,234 parameters)"]
    assert lines[2].startswith(" 50.0%  step 5/10  elapsed 0:00:")
    assert lines[2].endswith("  12,346 tok/s  loss 2.0000")
    assert lines[3].startswith("100.0%  step 10/10  elapsed 0:00:")
    assert lines[3].endswith("  12,346 tok/s  loss 1.2500  val 1.5000")
    assert "  ETA 0:00:00  " in lines[3]
    assert lines[4].startswith("completed in 0:00:")
    assert len(lines) == 5


@pytest.mark.anyio
async def test_the_event_hub_resubscribes_after_its_connection_is_killed(
    api: tuple[subprocess.Popen[bytes], str], redis: RedisClient
) -> None:
    base_url = api[1]
    job_id = queued_jobs(base_url, 1)[0]
    followers = Followers(base_url)
    followers.start([job_id], per_job=1)
    await followers.all_attached()
    channel = events_channel(DOMAIN)

    def subscribers() -> int:
        return int(redis.pubsub_numsub(channel)[0][1])

    assert subscribers() == 1
    assert redis.client_kill_filter(_type="pubsub") == 1
    await asyncio.to_thread(wait_for, lambda: subscribers() == 1, timeout=10, what="resubscribe")
    worker = job_context(redis, job_id)
    for step in range(3):
        published = time.monotonic()
        worker.publish_progress(step / 4, f"step {step}", force=True)
        while len(followers.arrivals) == step:
            await asyncio.sleep(0.01)
        # Woken by pub/sub: a follower left to its poll timer waits half a poll or more.
        assert followers.arrivals[step] - published < min(0.8, FOLLOW_TIMING["poll_s"] / 2)
    worker.publish_completed(job_id, 2)
    outcomes = await followers.outcomes()
    assert outcomes == [
        {"events": ["trainer.job.progress.v1"] * 3 + ["trainer.job.completed.v1"], "error": None}
    ]
