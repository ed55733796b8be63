"""`GET /metrics`: Prometheus exposition of this API process's requests and of the service's
jobs and queues, which are read from Redis at each scrape.

Where the truth lives in Redis, it is read from there, so every API process answers the same
and workers, on any machine, need no port of their own:

- queue depth: RQ's length of each RQ queue (three priorities per queue class)
- jobs ended by type, status and code, and their run times: counted in Redis by whichever
  process ends a job (`storage.job_metrics`)
- each running training (RQ's started jobs of the train queues) with its progress (its record)
  and its last loss and tokens/s (its newest `trainer.metrics.progress.v1` event)

Redis out of reach makes `model_trainer_redis_up 0`, not a failed scrape. Request metrics are
per process (`api.http_metrics`), summed over processes in prometheus-client's multiprocess
mode when PROMETHEUS_MULTIPROC_DIR is set. The endpoint shows no user data (no names, run ids
or texts; running trainings are labelled by job id), so it is open unless METRICS_TOKEN asks
scrapers for `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import itertools
import os
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Queue

from model_trainer.api import ApiContext
from model_trainer.contracts.jobs import DOMAIN, QUEUE_NAMES, every_rq_queue
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.job_metrics import DURATION_BUCKETS, read_job_metrics
from model_trainer.storage.job_store import JobStore
from platform_core.json_types import load_json_object
from platform_core.trainer_metrics_events import (
    TRAINER_METRICS_EVENT_TYPES,
    TrainerProgressMetricsV1,
    decode_trainer_metrics_event,
    is_progress_metrics,
)
from platform_workers.event_stream import read_latest_events
from platform_workers.redis_conn import RedisClient

# A training publishes a job progress event and a metrics progress event together; alerts are
# rare: its newest metrics progress event is among its last few.
RECENT_EVENTS = 20
_LE = [*(repr(float(bound)) for bound in DURATION_BUCKETS), "+Inf"]


class ServiceCollector:
    """The service's figures, read from Redis when a scrape asks (prometheus-client's custom
    collector pattern)."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("model_trainer_redis_up", "Whether this scrape could read Redis")
        try:
            families = [*self._queues(), *self._jobs(), *self._trainings()]
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _queues(self) -> list[Metric]:
        depth = GaugeMetricFamily(
            "model_trainer_queue_depth", "Jobs waiting in each RQ queue", labels=["queue"]
        )
        for name in (name for queue in QUEUE_NAMES for name in every_rq_queue(queue)):
            depth.add_metric([name], Queue(name, connection=self._redis).count)
        return [depth]

    def _jobs(self) -> list[Metric]:
        counted = read_job_metrics(self._redis)
        ended = CounterMetricFamily(
            "model_trainer_jobs_ended",
            "Jobs that ended, by type, status and error code (empty when completed)",
            labels=["type", "status", "code"],
        )
        for labels, count in sorted(counted["ended"].items()):
            ended.add_metric(labels, count)
        durations = HistogramMetricFamily(
            "model_trainer_job_duration_seconds",
            "Run time of ended jobs, from their first start to their end",
            labels=["type", "status"],
        )
        for (job_type, status), histogram in sorted(counted["durations"].items()):
            cumulative = itertools.accumulate(histogram["buckets"])
            durations.add_metric(
                [job_type, status],
                buckets=list(zip(_LE, cumulative, strict=True)),
                sum_value=histogram["sum_s"],
            )
        return [ended, durations]

    def _trainings(self) -> list[Metric]:
        labels = ["job_id"]
        loss = GaugeMetricFamily(
            "model_trainer_training_loss", "A running training's last logged loss", labels=labels
        )
        speed = GaugeMetricFamily(
            "model_trainer_training_tokens_per_second",
            "A running training's last measured throughput",
            labels=labels,
        )
        progress = GaugeMetricFamily(
            "model_trainer_training_progress",
            "A running training's progress, 0 to 1",
            labels=labels,
        )
        started = [
            job_id
            for name in every_rq_queue("train")
            for job_id in Queue(name, connection=self._redis).started_job_registry.get_job_ids(
                cleanup=False
            )
        ]
        for record in JobStore(self._redis).get_many(started):
            if record is None or record["type"] != "train" or record["status"] != "running":
                continue
            job_id = record["job_id"]
            progress.add_metric([job_id], record["progress"])
            last = last_progress(self._redis, job_id)
            if last is None:
                continue
            loss.add_metric([job_id], last["loss"])
            if "tokens_per_second" in last:
                speed.add_metric([job_id], last["tokens_per_second"])
        return [loss, speed, progress]


def last_progress(redis: RedisClient, job_id: str) -> TrainerProgressMetricsV1 | None:
    """The training's newest progress metrics event, if it published one lately."""
    for _, payload in read_latest_events(redis, DOMAIN, job_id, count=RECENT_EVENTS):
        # Lifecycle events share the stream; metrics events are decoded and checked.
        if load_json_object(payload).get("type") not in TRAINER_METRICS_EVENT_TYPES:
            continue
        event = decode_trainer_metrics_event(payload)
        if is_progress_metrics(event):
            return event
    return None


class Scrape:
    """What one scrape shows: several collectors, in order."""

    def __init__(self, *sources: Collector) -> None:
        self._sources = sources

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            yield from source.collect()


def process_metrics() -> Collector:
    """This process's own metrics, or with PROMETHEUS_MULTIPROC_DIR set, every process's that
    shares the directory (prometheus-client's multiprocess mode: a fresh registry per scrape)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def check_token(expected: str | None, authorization: str | None) -> None:
    """With METRICS_TOKEN set, a scrape must send it as a bearer token."""
    if expected is None:
        return
    if not hmac.compare_digest((authorization or "").encode(), f"Bearer {expected}".encode()):
        raise ModelTrainerError(
            "UNAUTHENTICATED", "/metrics needs `Authorization: Bearer <METRICS_TOKEN>`"
        )


def build_metrics_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter()
    service = ServiceCollector(ctx["redis"])

    # Prometheus's text format, not JSON: left out of the OpenAPI document.
    @router.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        check_token(ctx["settings"]["metrics_token"], request.headers.get("authorization"))
        body = generate_latest(Scrape(process_metrics(), service))
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)

    return router
