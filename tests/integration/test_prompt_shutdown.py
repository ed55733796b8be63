"""A worker leaves its command channel at once (a real redis-server and RQ's pub/sub thread).

RQ sends UNSUBSCRIBE, then stops its command thread and waits for it (redis-py 8). When the
thread handles the reply before the stop (slowed here, as a loaded machine does), it used to go
back to a 60 s wait for a subscription, and so did the worker's shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from redis.client import PubSub
from rq.worker import BaseWorker

from model_trainer.worker.worker_entry import make_worker
from platform_workers.redis_conn import RedisClient


def test_unsubscribing_ends_the_command_thread_at_once(
    redis: RedisClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: Callable[[PubSub], object] = PubSub.unsubscribe

    def then_pause(pubsub: PubSub) -> None:
        sent(pubsub)
        time.sleep(0.3)  # the thread handles the reply before RQ stops it

    monkeypatch.setattr(PubSub, "unsubscribe", then_pause)
    for queue in ("train", "infer"):
        worker: BaseWorker = make_worker(queue, redis)
        worker.subscribe()
        time.sleep(0.2)  # the thread is inside its 60 s read
        started = time.monotonic()
        worker.unsubscribe()
        assert time.monotonic() - started < 3.0
        thread = vars(worker)["pubsub_thread"]
        assert not thread.is_alive()


def test_a_worker_that_never_subscribed_unsubscribes_quietly(redis: RedisClient) -> None:
    make_worker("infer", redis).unsubscribe()
