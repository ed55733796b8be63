"""A spawned train horse builds its own connection from REDIS_URL (the e2e tests run it over
TLS and Sentinel); like RQ's horse, it exits 1 when the worker that spawned it is gone."""

from __future__ import annotations

import pytest

from model_trainer.worker.spawn_horse import work_horse
from platform_workers.redis_conn import RedisClient


def test_a_horse_whose_worker_is_gone_exits_1(
    redis: RedisClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    redis.sadd("rq:workers", "rq:worker:gone")
    with pytest.raises(SystemExit) as caught:
        work_horse("rq:worker:gone", "j1", "train", "e1")
    assert caught.value.code == 1
    assert redis.smembers("rq:workers") == set()
