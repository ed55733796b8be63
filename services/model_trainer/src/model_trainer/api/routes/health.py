"""`GET /healthz` (the process answers) and `GET /readyz` (Redis answers, workers listen)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from rq import Queue, Worker
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.openapi import refusals
from model_trainer.contracts.jobs import WORKER_LIVENESS_S, QueueName
from platform_workers.redis_conn import RedisClient


class HealthBody(TypedDict):
    """The process answers (`status` is always "ok")."""

    status: str


class QueueWorkersBody(TypedDict):
    """Live workers listening on each queue."""

    train: int
    infer: int


class ReadinessBody(TypedDict):
    """Whether Redis answers, and how many live workers each queue has."""

    redis: bool
    workers: QueueWorkersBody


def live_workers(redis: RedisClient, queue: QueueName, *, now: datetime | None = None) -> int:
    """Workers listening on `queue` that heartbeated within WORKER_LIVENESS_S. RQ keeps a
    registration for minutes after its worker died mid-job; the heartbeat says it is gone."""
    moment = datetime.now(UTC) if now is None else now
    oldest = moment - timedelta(seconds=WORKER_LIVENESS_S)
    workers = Worker.all(queue=Queue(queue, connection=redis))
    return sum(1 for worker in workers if worker.last_heartbeat and worker.last_heartbeat >= oldest)


def readiness(redis: RedisClient) -> ReadinessBody:
    try:
        redis.ping()
        workers: QueueWorkersBody = {
            "train": live_workers(redis, "train"),
            "infer": live_workers(redis, "infer"),
        }
    except RedisError:
        return {"redis": False, "workers": {"train": 0, "infer": 0}}
    return {"redis": True, "workers": workers}


def build_health_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=HealthBody, responses=refusals(keyed=False))
    def check_health() -> HealthBody:
        """The process answers; needs no key and reads nothing."""
        return {"status": "ok"}

    @router.get(
        "/readyz",
        response_model=ReadinessBody,
        responses={
            **refusals(keyed=False),
            503: {"model": ReadinessBody, "description": "Redis or a queue's workers missing"},
        },
    )
    def check_readiness() -> JSONResponse:
        """Ready when Redis answers and every queue has a live worker; needs no key."""
        body = readiness(ctx["redis"])
        workers = body["workers"]
        ready = body["redis"] and workers["train"] > 0 and workers["infer"] > 0
        return JSONResponse(body, status_code=200 if ready else 503)

    return router
