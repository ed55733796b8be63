"""A work horse's tie to its worker: it sees the worker asked to stop, and dies with it.

Seeing, from inside a work horse, that its worker was asked to stop (SIGTERM: a deploy, a
scale-down, `docker compose stop`).

RQ's warm shutdown waits for the running job; a training can run for hours. On SIGTERM RQ
writes `shutdown_requested_date` into the worker's hash, so the horse polls that field (as
cheaply as the cancel flag) and the training stops at its next step, checkpoints, and goes back
to the queue for another worker to resume.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Callable

from rq.worker import BaseWorker

from platform_workers.redis_conn import RedisClient

# RQ exports the worker's name to the horse it starts.
WORKER_ID_ENV = "RQ_WORKER_ID"
SHUTDOWN_FIELD = "shutdown_requested_date"
POLL_INTERVAL_S = 0.5
# prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_worker() -> bool:
    """A training must not outlive its worker: RQ would retry the job elsewhere and two
    processes would train the same run. RQ's horse has its own process group (a signal to the
    worker does not reach it), so on Linux the kernel is asked to SIGKILL it when its parent
    dies. Says whether that was arranged."""
    if WORKER_ID_ENV not in os.environ or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    status: int = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    return status == 0


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
