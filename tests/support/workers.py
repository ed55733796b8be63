"""RQ worker registrations written straight into Redis: a worker as the API sees it, without
a process behind it (how tests stand in for a CUDA worker on a machine that has no GPU)."""

from __future__ import annotations

from rq import Queue, Worker
from rq.worker_registration import register

from platform_workers.redis_conn import RedisClient


def register_worker(redis: RedisClient, *queues: str, name: str | None = None) -> Worker:
    """What a starting worker writes: its hash with a fresh heartbeat, and its place in the
    per-queue registries. (Worker.register_birth does the same but is unannotated.)"""
    worker = Worker(
        [Queue(queue, connection=redis) for queue in queues], name=name, connection=redis
    )
    worker.heartbeat()
    register(worker)
    return worker
