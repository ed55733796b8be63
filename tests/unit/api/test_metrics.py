"""`GET /metrics`, parsed with prometheus-client's own parser: requests by route template and
status, queue depths, ended jobs and run times, and each running training's last figures."""

from __future__ import annotations

from pathlib import Path

import fakeredis
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue
from rq.executions import Execution
from rq.job import Job
from rq.serializers import JSONSerializer
from starlette.types import Message, Receive, Scope, Send
from tests.support.records import queued_record

from model_trainer.api.app import create_app
from model_trainer.api.event_hub import EventHub
from model_trainer.api.http_metrics import RequestMetrics
from model_trainer.api.metrics import ServiceCollector, last_progress
from model_trainer.contracts.jobs import DOMAIN, JobType
from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from platform_core.trainer_metrics_events import make_alert_event, make_progress_metrics_event
from platform_workers.job_context import JobContext
from platform_workers.redis_conn import RedisClient

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
T0 = "2026-01-01T00:00:00+00:00"


def scrape(client: TestClient) -> Samples:
    """Every sample /metrics shows, by name and labels."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def started(redis: RedisClient, job_id: str, job_type: JobType, progress: float) -> None:
    """A job a worker is running: its record, and RQ's started registry of its queue."""
    store = JobStore(redis)
    store.create(queued_record(job_id, job_type, f"run-{job_id}"))
    store.mark_running(job_id, now=T0)
    store.set_progress(job_id, progress, "training")
    job = Job.create(
        "model_trainer.worker.train_job.process_train_job",
        connection=redis,
        serializer=JSONSerializer,
        id=job_id,
        origin="train",
    )
    job.save()
    pipe = redis.pipeline()
    Execution.create(job, ttl=60, pipeline=pipe)
    pipe.execute()


def progress_event(ctx: JobContext, step: int, loss: float, speed: float | None) -> None:
    event = make_progress_metrics_event(
        job_id=ctx.job_id,
        user_id=1,
        epoch=0,
        total_epochs=1,
        step=step,
        loss=loss,
        tokens_per_second=speed,
    )
    ctx.publish_metrics(event)


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    before = scrape(client)
    for job_id in ("a", "b", "c"):
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    assert client.get("/healthz").status_code == 200
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    counts = "model_trainer_http_requests_total"
    job = {"method": "GET", "route": "/v1/jobs/{job_id}", "status": "404"}
    assert delta(counts, **job) == 3
    assert delta(counts, method="GET", route="unmatched", status="404") == 1
    assert delta(counts, method="GET", route="/healthz", status="200") == 1
    assert delta(counts, method="GET", route="/metrics", status="200") == 1
    assert delta("model_trainer_http_request_duration_seconds_count", **job) == 3
    assert delta("model_trainer_http_request_duration_seconds_bucket", le="+Inf", **job) == 3
    assert not any("/v1/jobs/a" in str(labels) for _, labels in after)


def test_queues_ended_jobs_and_running_trainings_come_from_redis(
    client: TestClient, redis: RedisClient
) -> None:
    queued = Queue("infer-high", connection=redis, serializer=JSONSerializer)
    queued.enqueue_call("model_trainer.worker.score_job.process_score_job", job_id="waiting")
    store = JobStore(redis)
    store.create(queued_record("g1", "generate", "r"))
    store.mark_running("g1", now=T0)
    store.complete("g1", result={}, now="2026-01-01T00:00:00.2+00:00")
    store.create(queued_record("t9", "train", "r9"))
    store.fail(
        "t9",
        error={"code": "TRAINING_CANCELLED", "kind": "user", "message": "stopped"},
        status="cancelled",
        now=T0,
    )
    started(redis, "t1", "train", 0.25)
    ctx = JobContext(redis, domain=DOMAIN, job_id="t1", user_id=1, queue="train")
    progress_event(ctx, 10, 2.5, 900.0)
    progress_event(ctx, 20, 2.0, 1000.0)
    ctx.publish_progress(0.5, "step 20", force=True)
    ctx.publish_metrics(
        make_alert_event(
            job_id="t1",
            user_id=1,
            kind="val_loss_spike",
            step=20,
            value=3,
            threshold=2,
            message="!",
        )
    )
    started(redis, "t2", "train", 0.1)  # no metrics yet
    started(redis, "t3", "train", 0.9)
    progress_event(
        JobContext(redis, domain=DOMAIN, job_id="t3", user_id=1, queue="train"), 1, 4.0, None
    )
    started(redis, "tok", "tokenizer", 0.5)  # not a training

    samples = scrape(client)
    assert sample(samples, "model_trainer_redis_up") == 1
    depths = {
        queue: sample(samples, "model_trainer_queue_depth", queue=queue)
        for queue in ("train-high", "train", "train-low", "infer-high", "infer", "infer-low")
    }
    assert depths == {
        "train-high": 0,
        "train": 0,  # started jobs left the queue
        "train-low": 0,
        "infer-high": 1,
        "infer": 0,
        "infer-low": 0,
    }
    ended = "model_trainer_jobs_ended_total"
    assert sample(samples, ended, type="generate", status="completed", code="") == 1
    cancelled = {"type": "train", "status": "cancelled", "code": "TRAINING_CANCELLED"}
    assert sample(samples, ended, **cancelled) == 1
    run_time = "model_trainer_job_duration_seconds"
    generated = {"type": "generate", "status": "completed"}
    assert sample(samples, f"{run_time}_bucket", le="0.1", **generated) == 0
    assert sample(samples, f"{run_time}_bucket", le="0.25", **generated) == 1
    assert sample(samples, f"{run_time}_bucket", le="+Inf", **generated) == 1
    assert sample(samples, f"{run_time}_count", **generated) == 1
    assert sample(samples, f"{run_time}_sum", **generated) == pytest.approx(0.2)
    # A job cancelled before it started has no run time.
    assert (
        f"{run_time}_count",
        frozenset({"type": "train", "status": "cancelled"}.items()),
    ) not in samples

    assert sample(samples, "model_trainer_training_loss", job_id="t1") == 2.0
    assert sample(samples, "model_trainer_training_tokens_per_second", job_id="t1") == 1000.0
    assert sample(samples, "model_trainer_training_progress", job_id="t1") == 0.25
    assert sample(samples, "model_trainer_training_progress", job_id="t2") == 0.1
    trainings = {
        dict(labels)["job_id"]
        for name, labels in samples
        if name.startswith("model_trainer_training_")
    }
    assert trainings == {"t1", "t2", "t3"}
    assert ("model_trainer_training_loss", frozenset({("job_id", "t2")})) not in samples
    assert sample(samples, "model_trainer_training_loss", job_id="t3") == 4.0
    speed = ("model_trainer_training_tokens_per_second", frozenset({("job_id", "t3")}))
    assert speed not in samples


def test_a_training_s_figures_are_its_newest_progress_event_s(redis: RedisClient) -> None:
    ctx = JobContext(redis, domain=DOMAIN, job_id="t1", user_id=1, queue="train")
    assert last_progress(redis, "t1") is None
    progress_event(ctx, 5, 3.0, None)
    for _ in range(30):
        ctx.publish_progress(0.5, "step 5", force=True)
    assert last_progress(redis, "t1") is None  # further back than a scrape reads
    progress_event(ctx, 6, 2.9, None)
    last = last_progress(redis, "t1")
    assert last is not None and (last["step"], last["loss"]) == (6, 2.9)
    assert "tokens_per_second" not in last


def test_redis_out_of_reach_is_a_gauge_not_a_failed_scrape(
    settings: Settings, hub: EventHub
) -> None:
    server = fakeredis.FakeServer()
    server.connected = False  # fakeredis answers as a server that went away
    gone = fakeredis.FakeRedis(server=server)
    with pytest.raises(RedisConnectionError):
        gone.ping()
    client = TestClient(create_app(settings, gone, hub))
    samples = scrape(client)
    assert sample(samples, "model_trainer_redis_up") == 0
    assert not any(name.startswith("model_trainer_queue") for name, _ in samples)
    families = [family.name for family in ServiceCollector(gone).collect()]
    assert families == ["model_trainer_redis_up"]


def test_a_metrics_token_is_asked_for_when_set(
    settings: Settings, redis: RedisClient, hub: EventHub
) -> None:
    client = TestClient(create_app({**settings, "metrics_token": "s3cret"}, redis, hub))
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_metrics_are_not_in_the_openapi_document(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


@pytest.fixture
def multiprocess_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    return tmp_path


def test_with_a_multiprocess_directory_requests_come_from_its_files(
    client: TestClient, multiprocess_dir: Path
) -> None:
    """In multiprocess mode every process writes its counts to files in the directory, and a
    scrape sums the files; this process was not started in that mode, so it wrote none."""
    samples = scrape(client)
    assert not any(name.startswith("model_trainer_http_") for name, _ in samples)
    assert sample(samples, "model_trainer_redis_up") == 1


@pytest.mark.anyio
async def test_other_asgi_traffic_passes_untouched_and_a_crash_counts_as_500() -> None:
    def crashes() -> float:
        labels = {"method": "GET", "route": "unmatched", "status": "500"}
        return REGISTRY.get_sample_value("model_trainer_http_requests_total", labels) or 0.0

    before = crashes()
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])
        if scope["type"] == "http":
            raise RuntimeError("boom")

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        return None

    middleware = RequestMetrics(app)
    await middleware({"type": "lifespan"}, receive, send)
    with pytest.raises(RuntimeError):
        await middleware({"type": "http", "method": "GET"}, receive, send)
    assert seen == ["lifespan", "http"]
    assert crashes() == before + 1
