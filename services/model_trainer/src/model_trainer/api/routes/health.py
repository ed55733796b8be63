"""`GET /healthz` (the process answers) and `GET /readyz` (Redis answers, workers listen)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from typing_extensions import TypedDict

from model_trainer.api import ApiContext
from model_trainer.api.openapi import refusals
from model_trainer.api.worker_presence import live_workers
from model_trainer.contracts.jobs import JobDevice, rq_queue
from platform_workers.redis_conn import RedisClient


class HealthBody(TypedDict):
    """The process answers (`status` is always "ok")."""

    status: str


class QueueWorkersBody(TypedDict):
    """Live workers listening on each queue."""

    train: int
    infer: int


class ReadinessBody(TypedDict):
    """Whether Redis answers, how many live workers each queue has (CPU and CUDA workers
    alike), and how many of them are CUDA workers, which alone run jobs that need CUDA."""

    redis: bool
    workers: QueueWorkersBody
    cuda_workers: QueueWorkersBody


def queue_workers(redis: RedisClient, needs: JobDevice) -> QueueWorkersBody:
    return {
        "train": live_workers(redis, rq_queue("train", "normal", needs)),
        "infer": live_workers(redis, rq_queue("infer", "normal", needs)),
    }


def readiness(redis: RedisClient) -> ReadinessBody:
    try:
        redis.ping()
        workers, cuda = queue_workers(redis, "any"), queue_workers(redis, "cuda")
    except RedisError:
        none: QueueWorkersBody = {"train": 0, "infer": 0}
        return {"redis": False, "workers": none, "cuda_workers": none}
    return {"redis": True, "workers": workers, "cuda_workers": cuda}


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
        """Ready when Redis answers and every queue has a live worker (CUDA workers are
        counted apart and not needed); needs no key."""
        body = readiness(ctx["redis"])
        workers = body["workers"]
        ready = body["redis"] and workers["train"] > 0 and workers["infer"] > 0
        return JSONResponse(body, status_code=200 if ready else 503)

    return router
