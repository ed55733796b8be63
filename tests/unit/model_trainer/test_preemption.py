"""A work horse sees its worker's shutdown in the worker's RQ hash, cheaply and for good."""

from __future__ import annotations

import fakeredis
import pytest

from model_trainer.worker.preemption import POLL_INTERVAL_S, SHUTDOWN_FIELD, ShutdownWatch


def test_a_shutdown_is_seen_at_the_next_poll_and_never_forgotten() -> None:
    redis = fakeredis.FakeRedis()
    now = [100.0]
    watch = ShutdownWatch(redis, "w1", clock=lambda: now[0])
    assert watch.requested() is False
    redis.hset("rq:worker:w1", SHUTDOWN_FIELD, "2026-12-02T05:00:00.000000Z")
    assert watch.requested() is False  # polled moments ago: no Redis read yet
    now[0] += POLL_INTERVAL_S
    assert watch.requested() is True and watch.seen
    redis.delete("rq:worker:w1")
    assert watch.requested() is True


def test_outside_an_rq_horse_nothing_ever_asks_to_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RQ_WORKER_ID", raising=False)
    watch = ShutdownWatch.for_this_horse(fakeredis.FakeRedis())
    assert watch.requested() is False
    monkeypatch.setenv("RQ_WORKER_ID", "w2")
    redis = fakeredis.FakeRedis()
    redis.hset("rq:worker:w2", SHUTDOWN_FIELD, "2026-12-02T05:00:00.000000Z")
    assert ShutdownWatch.for_this_horse(redis).requested() is True
