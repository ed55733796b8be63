"""`model-trainer worker --queues train,infer` keeps both queues served when a child dies."""

from __future__ import annotations

import os
import signal

from rq import Queue, Worker
from tests.support.processes import cli_process, stop, wait_for

from platform_workers.redis_conn import RedisClient


def _pids(redis: RedisClient, queue: str) -> set[int]:
    """The process ids of the RQ workers registered on `queue`."""
    return {worker.pid for worker in Worker.all(queue=Queue(queue, connection=redis)) if worker.pid}


def test_a_killed_worker_child_is_replaced_by_its_parent(
    redis: RedisClient, service_env: dict[str, str]
) -> None:
    parent = cli_process(["worker", "--queues", "train,infer"], service_env)
    try:
        wait_for(lambda: len(_pids(redis, "train")) == 1, timeout=60, what="a train worker")
        wait_for(lambda: len(_pids(redis, "infer")) == 1, timeout=60, what="an infer worker")
        (killed,) = _pids(redis, "train")
        os.kill(killed, signal.SIGKILL)
        # The dead one stays registered until its TTL; a second, live one appears beside it.
        wait_for(
            lambda: len(_pids(redis, "train") - {killed}) == 1,
            timeout=30,
            what="a new train worker",
        )
        assert parent.poll() is None
        assert len(_pids(redis, "infer")) == 1
    finally:
        stop(parent)
    assert parent.returncode is not None
