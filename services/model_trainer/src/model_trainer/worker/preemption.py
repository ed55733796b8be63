"""Seeing, from inside a work horse, that its worker was asked to stop (SIGTERM: a deploy, a
scale-down, `docker compose stop`).

RQ's warm shutdown waits for the running job; a training can run for hours. On SIGTERM RQ
writes `shutdown_requested_date` into the worker's hash, so the horse polls that field (as
cheaply as the cancel flag) and the training stops at its next step, checkpoints, and goes back
to the queue for another worker to resume.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from rq.worker import BaseWorker

from platform_workers.redis_conn import RedisClient

# RQ exports the worker's name to the horse it starts.
WORKER_ID_ENV = "RQ_WORKER_ID"
SHUTDOWN_FIELD = "shutdown_requested_date"
POLL_INTERVAL_S = 0.5


class ShutdownWatch:
    """`requested()` says whether this horse's worker is shutting down; it asks Redis at most
    once per POLL_INTERVAL_S and, once it has seen a shutdown, keeps saying so."""

    def __init__(
        self,
        redis: RedisClient,
        worker_name: str | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._key = (
            None if worker_name is None else BaseWorker.redis_worker_namespace_prefix + worker_name
        )
        self._clock = clock
        self._next_poll = 0.0
        self.seen = False

    @classmethod
    def for_this_horse(cls, redis: RedisClient) -> ShutdownWatch:
        """Watches the worker that started this process; outside RQ, nothing ever stops it."""
        return cls(redis, os.environ.get(WORKER_ID_ENV))

    def requested(self) -> bool:
        if self.seen or self._key is None:
            return self.seen
        now = self._clock()
        if now < self._next_poll:
            return False
        self._next_poll = now + POLL_INTERVAL_S
        self.seen = bool(self._redis.hexists(self._key, SHUTDOWN_FIELD))
        return self.seen
