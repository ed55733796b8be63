"""Priorities against a real redis-server and a real RQ worker: a mixed backlog drains high
first, then normal, then low (submission order within a priority), and the per-user limit
counts every priority of a queue alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from rq import Queue
from rq.serializers import JSONSerializer
from tests.support.backends import train_cfg, train_run

from model_trainer.api import SubmitContext
from model_trainer.api.schemas import ScoreJobRequest
from model_trainer.api.submit import enqueue_planned, plan_score
from model_trainer.backends.char_lstm import BACKEND as CHAR_LSTM
from model_trainer.contracts.jobs import Priority, rq_queues
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.owners import claim
from model_trainer.worker import model_cache
from model_trainer.worker.worker_entry import make_worker
from platform_workers.redis_conn import RedisClient

CALLER: Principal = {"user_id": 1, "user": "alice", "admin": False, "key_id": "a" * 12}
BACKLOG: list[Priority] = ["low", "normal", "high", "low", "high", "normal"]


@pytest.fixture
def submit_ctx(
    redis: RedisClient,
    redis_url: str,
    settings: Settings,
    corpus_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> SubmitContext:
    """The caller owns a trained run; job functions the worker calls read this test's env."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ARTIFACTS_ROOT", str(settings["artifacts_root"]))
    monkeypatch.setenv("DATA_ROOT", str(settings["data_root"]))
    train_run(CHAR_LSTM, settings, train_cfg("char_lstm", corpus_path), "run-p")
    claim(redis, "run", "run-p", CALLER["user_id"])
    model_cache.clear()
    return {"settings": settings, "redis": redis, "jobs": JobStore(redis)}


def _score(ctx: SubmitContext, priority: Priority) -> str:
    body = ScoreJobRequest(run_id="run-p", text="to be", priority=priority)
    return enqueue_planned(ctx, CALLER, plan_score(ctx, CALLER, body), None)["job_id"]


def test_a_worker_drains_a_mixed_backlog_in_priority_order(
    submit_ctx: SubmitContext, redis: RedisClient
) -> None:
    job_ids = [_score(submit_ctx, priority) for priority in BACKLOG]
    lengths = [Queue(name, connection=redis).count for name in rq_queues("infer")]
    assert lengths == [2, 2, 2]

    make_worker("infer", redis).work(burst=True)

    records = [submit_ctx["jobs"].get(job_id) for job_id in job_ids]
    assert all(r is not None and r["status"] == "completed" for r in records), records
    started = sorted(
        (r["started_at"] or "", r["priority"], r["job_id"]) for r in records if r is not None
    )
    assert [priority for _, priority, _ in started] == [
        "high",
        "high",
        "normal",
        "normal",
        "low",
        "low",
    ]
    # Within a priority, first submitted, first served.
    assert [job_id for *_, job_id in started] == [job_ids[i] for i in (2, 4, 1, 5, 0, 3)]


def test_the_per_user_limit_counts_every_priority(
    submit_ctx: SubmitContext, redis: RedisClient
) -> None:
    limits = {**submit_ctx["settings"]["max_active_jobs"], "infer": 2}
    ctx: SubmitContext = {
        **submit_ctx,
        "settings": {**submit_ctx["settings"], "max_active_jobs": limits},
    }
    _score(ctx, "low")
    _score(ctx, "normal")
    with pytest.raises(ModelTrainerError) as refused:
        _score(ctx, "high")
    assert refused.value.code == "QUOTA_EXCEEDED"
    assert [
        Queue(name, connection=redis, serializer=JSONSerializer).count
        for name in rq_queues("infer")
    ] == [0, 1, 1]


def test_the_queue_limit_counts_every_priority(
    submit_ctx: SubmitContext, redis: RedisClient
) -> None:
    ctx: SubmitContext = {
        **submit_ctx,
        "settings": {**submit_ctx["settings"], "max_queue_depth": 2},
    }
    _score(ctx, "low")
    _score(ctx, "high")
    with pytest.raises(ModelTrainerError) as refused:
        _score(ctx, "normal")
    assert refused.value.code == "QUEUE_FULL"
    assert refused.value.details["depth"] == 2
