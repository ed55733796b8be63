"""The SSE endpoint replays a job's stream, follows it live and ends at the terminal event."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable

import fakeredis
import orjson
import pytest
from fastapi.testclient import TestClient
from tests.support.event_times import unstamped

from model_trainer.api.event_hub import EventHub, FollowTiming
from model_trainer.api.routes.events import KEEPALIVE, READ_COUNT, follow_events, sse_frame
from model_trainer.contracts.jobs import DOMAIN, JobError
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import RunManifest
from platform_core.trainer_metrics_events import make_progress_metrics_event
from platform_workers.job_context import JobContext
from platform_workers.redis_conn import as_text

Frame = dict[str, str]


def parse_frames(text: str) -> list[Frame]:
    """Splits an SSE body into frames of field → value (comments kept under ':')."""
    frames = []
    for block in text.split("\n\n"):
        if not block:
            continue
        frame: Frame = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ") if not line.startswith(":") else (":", "", line)
            frame[name] = value
        frames.append(frame)
    return frames


@pytest.fixture
def job_id(client: TestClient, trained_run: RunManifest) -> str:
    response = client.post("/v1/jobs/generate", json={"run_id": "r1", "prompt_text": "To"})
    job: str = response.json()["job_id"]
    return job


@pytest.fixture
def context(redis: fakeredis.FakeRedis, job_id: str) -> JobContext:
    return JobContext(redis, domain=DOMAIN, job_id=job_id, user_id=1, queue="infer")


def test_replays_every_event_and_ends_after_the_terminal_one(
    client: TestClient, context: JobContext, job_id: str
) -> None:
    started = context.publish_started()
    metrics = context.publish_metrics(
        make_progress_metrics_event(
            job_id=job_id, user_id=1, epoch=1, total_epochs=1, step=5, loss=2.5
        )
    )
    completed = context.publish_completed("result-1", 42)
    context.publish_progress(1.0, "after the end", force=True)
    response = client.get(f"/v1/jobs/{job_id}/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    frames = parse_frames(response.text)
    assert [(f["id"], f["event"]) for f in frames] == [
        (started, "trainer.job.started.v1"),
        (metrics, "trainer.metrics.progress.v1"),
        (completed, "trainer.job.completed.v1"),
    ]
    assert unstamped(orjson.loads(frames[2]["data"])) == {
        "type": "trainer.job.completed.v1",
        "job_id": job_id,
        "user_id": 1,
        "result_id": "result-1",
        "result_bytes": 42,
    }


def test_last_event_id_resumes_after_that_entry(
    client: TestClient, redis: fakeredis.FakeRedis, context: JobContext, job_id: str
) -> None:
    first = context.publish_started()
    second = context.publish_progress(0.5, "half", force=True)
    failed = context.publish_failed("system", "MODEL_LOAD_FAILED", "boom")
    assert second
    response = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": first})
    frames = parse_frames(response.text)
    assert [f["event"] for f in frames] == ["trainer.job.progress.v1", "trainer.job.failed.v1"]
    assert frames[-1]["id"] == failed
    error: JobError = {"code": "MODEL_LOAD_FAILED", "kind": "system", "message": "boom"}
    JobStore(redis).fail(job_id, error=error, status="failed", now="2026-01-01T00:00:00+00:00")
    after_end = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": failed})
    assert (after_end.status_code, after_end.text) == (200, "")


@pytest.mark.parametrize("bad", ["abc", "1-2-3", "-1", "1-"])
def test_a_malformed_last_event_id_is_invalid_config(
    client: TestClient, job_id: str, bad: str
) -> None:
    response = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": bad})
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["details"]) == ("INVALID_CONFIG", {"field": "Last-Event-ID"})


def test_follows_live_events_until_the_job_ends(
    client: TestClient, context: JobContext, job_id: str
) -> None:
    context.publish_started()

    def worker() -> None:
        time.sleep(0.3)
        context.publish_progress(0.5, "half", force=True)
        time.sleep(0.2)
        context.publish_failed("user", "TRAINING_CANCELLED", "stopped")

    publisher = threading.Thread(target=worker)
    publisher.start()
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        text = "".join(response.iter_text())
    publisher.join()
    assert [f["event"] for f in parse_frames(text)] == [
        "trainer.job.started.v1",
        "trainer.job.progress.v1",
        "trainer.job.failed.v1",
    ]


def test_an_unknown_job_is_404_before_anything_streams(client: TestClient) -> None:
    response = client.get("/v1/jobs/no-such-job/events")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "JOB_NOT_FOUND"


async def collect(frames: AsyncIterator[str]) -> list[str]:
    return [frame async for frame in frames]


def events_of(frames: list[str]) -> list[str]:
    return [parse_frames(frame)[0]["event"] for frame in frames]


@pytest.mark.anyio
async def test_an_ended_job_whose_stream_expired_ends_the_response(
    redis: fakeredis.FakeRedis, hub: EventHub, context: JobContext, job_id: str
) -> None:
    context.publish_started()
    JobStore(redis).complete(job_id, result={}, now="2026-01-01T00:00:00+00:00")
    frames = await collect(follow_events(hub, job_id, "0-0"))
    assert events_of(frames) == ["trainer.job.started.v1"]


@pytest.mark.anyio
async def test_a_terminal_event_published_just_after_the_record_still_arrives(
    make_hub: Callable[[FollowTiming], EventHub],
    redis: fakeredis.FakeRedis,
    context: JobContext,
    job_id: str,
) -> None:
    """The worker marks the record first and publishes a moment later: the grace covers it."""
    hub = make_hub({"poll_s": 0.02, "keepalive_s": 30.0, "ended_grace_s": 0.5})
    JobStore(redis).complete(job_id, result={}, now="2026-01-01T00:00:00+00:00")

    async def publish_late() -> None:
        await asyncio.sleep(0.1)
        context.publish_completed("r", 1)

    publisher = asyncio.create_task(publish_late())
    frames = await collect(follow_events(hub, job_id, "0-0"))
    await publisher
    assert events_of(frames) == ["trainer.job.completed.v1"]


@pytest.mark.anyio
async def test_a_vanished_record_ends_the_response(hub: EventHub) -> None:
    assert await collect(follow_events(hub, "gone", "0-0")) == []


@pytest.mark.anyio
async def test_keepalive_comments_fill_the_silence(
    make_hub: Callable[[FollowTiming], EventHub], context: JobContext, job_id: str
) -> None:
    hub = make_hub({"poll_s": 10.0, "keepalive_s": 0.05, "ended_grace_s": 0.05})
    frames = follow_events(hub, job_id, "0-0")
    started = time.monotonic()
    assert await anext(frames) == KEEPALIVE
    assert time.monotonic() - started >= 0.05
    context.publish_failed("user", "TRAINING_CANCELLED", "stopped")
    assert parse_frames(await anext(frames))[0]["event"] == "trainer.job.failed.v1"
    assert await collect(frames) == []


@pytest.mark.anyio
async def test_an_undecodable_entry_is_sent_as_a_plain_message(
    redis: fakeredis.FakeRedis, hub: EventHub, context: JobContext, job_id: str
) -> None:
    entry = redis.xadd(f"trainer:events:{job_id}", {b"event": b"not json"})
    context.publish_completed("r", 1)
    frames = await collect(follow_events(hub, job_id, "0-0"))
    assert frames[0] == f"id: {as_text(entry)}\nevent: message\ndata: not json\n\n"
    assert len(frames) == 2


@pytest.mark.anyio
async def test_a_long_backlog_is_sent_without_pausing_between_reads(
    make_hub: Callable[[FollowTiming], EventHub], context: JobContext, job_id: str
) -> None:
    hub = make_hub({"poll_s": 30.0, "keepalive_s": 30.0, "ended_grace_s": 30.0})
    for step in range(READ_COUNT + 20):
        context.publish_progress(step / 1000, f"step {step}", force=True)
    context.publish_completed("r", 1)
    started = time.monotonic()
    frames = await collect(follow_events(hub, job_id, "0-0"))
    assert time.monotonic() - started < 5.0
    assert len(frames) == READ_COUNT + 21
    assert events_of(frames)[-1] == "trainer.job.completed.v1"


@pytest.mark.anyio
async def test_a_redis_error_ends_the_stream_instead_of_failing_the_response(
    fake_server: fakeredis.FakeServer,
    hub: EventHub,
    context: JobContext,
    job_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    context.publish_started()
    frames = follow_events(hub, job_id, "0-0")
    assert events_of([await anext(frames)]) == ["trainer.job.started.v1"]
    fake_server.connected = False
    assert await collect(frames) == []
    assert f"events of job {job_id}" in caplog.text


@pytest.mark.anyio
async def test_closing_the_hub_ends_every_follower_at_once(
    make_hub: Callable[[FollowTiming], EventHub], job_id: str
) -> None:
    hub = make_hub({"poll_s": 30.0, "keepalive_s": 30.0, "ended_grace_s": 30.0})
    followers = [asyncio.create_task(collect(follow_events(hub, job_id, "0-0"))) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert hub.followers() == 3
    started = time.monotonic()
    hub.close()
    assert await asyncio.gather(*followers) == [[], [], []]
    assert time.monotonic() - started < 1.0
    assert hub.followers() == 0
    assert await collect(follow_events(hub, job_id, "0-0")) == []


def test_multi_line_data_is_split_into_data_lines() -> None:
    assert (
        sse_frame("1-0", "x", '{\n"a": 1\n}')
        == 'id: 1-0\nevent: x\ndata: {\ndata: "a": 1\ndata: }\n\n'
    )
