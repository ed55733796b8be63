"""Redis Sentinel fails the primary over to its replica in the middle of a training (and the old
primary is killed): the worker, its spawned work horse and the API follow the new primary
through `REDIS_URL=redis+sentinel://…`; the training completes on its first attempt, its record
and its event stream (`started` to `completed`) are read from the new primary, an API follower
live across the failover ends with `completed`, and the worker still hears RQ commands (its
pub/sub subscription moved too)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
from rq import Queue, Retry, Worker
from rq.command import send_shutdown_command
from rq.serializers import JSONSerializer
from tests.support.processes import cli_process, start_api, stop, wait_for
from tests.support.records import queued_record
from tests.support.redis_ha import PASSWORD, start_sentinel_group

from model_trainer.client import API_KEY_ENV, TrainerClient
from model_trainer.contracts.jobs import DOMAIN, TrainJobPayload
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.storage.api_keys import create_key
from model_trainer.storage.job_store import JobStore
from platform_core.json_types import load_json_object
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient, redis_from_url


def _event_types(redis: RedisClient, job_id: str) -> list[str]:
    """Every stored event's type (a fast machine trains enough steps to pass one page of 100)."""
    events = read_events(redis, DOMAIN, job_id, count=100_000)
    return [str(load_json_object(data)["type"]) for _, data in events]


def _status(store: JobStore, job_id: str) -> str | None:
    record = store.get(job_id)
    return None if record is None else record["status"]


def _in_order_within(events: list[str], seen: list[str]) -> bool:
    remaining = iter(seen)
    return all(event in remaining for event in events)


def _train_payload(corpus_path: Path) -> TrainJobPayload:
    config = make_train_config(
        model_family="char_lstm",
        model_size="tiny",
        corpus_path=str(corpus_path),
        options={
            **TRAIN_DEFAULTS,
            "max_seq_len": 32,
            "batch_size": 8,
            "max_steps": 10_000_000,
            "time_budget_s": 10.0,
            "log_every_steps": 10,
            "device": "cpu",
        },
    )
    return {
        "job_id": "t1",
        "user_id": 1,
        "run_id": "run-t1",
        "config": config,
        "tokenizer_id": None,
    }


def test_a_training_survives_a_sentinel_failover(
    tmp_path: Path, corpus_path: Path, service_env: dict[str, str]
) -> None:
    group = start_sentinel_group(tmp_path / "redis")
    redis = redis_from_url(group.url)
    store = JobStore(redis)
    key = create_key(redis, "tester", admin=True)["key"]
    env = {**service_env, "REDIS_URL": group.url, API_KEY_ENV: key}
    worker = cli_process(["worker", "--queues", "train"], env)
    api, base_url = start_api(env)
    client = TrainerClient(base_url, api_key=key)
    try:
        train_queue = Queue("train", connection=redis, serializer=JSONSerializer)
        wait_for(lambda: len(Worker.all(queue=train_queue)) == 1, timeout=60, what="a worker")
        store.create(queued_record("t1", "train", "run-t1"))
        train_queue.enqueue_call(
            "model_trainer.worker.train_job.process_train_job",
            args=(_train_payload(corpus_path),),
            job_id="t1",
            timeout=600,
            retry=Retry(max=2),
        )
        wait_for(
            lambda: "trainer.metrics.progress.v1" in _event_types(redis, "t1"),
            timeout=60,
            what="training progress",
        )
        # An API follower of the job's events, live across the failover.
        followed: list[str] = []
        follower = threading.Thread(
            target=lambda: followed.extend(event["event"] for event in client.events("t1"))
        )
        follower.start()
        group.fail_over()
        assert _status(store, "t1") == "running"
        # The record says completed just before the completed event is published.
        wait_for(
            lambda: _event_types(redis, "t1")[-1:] == ["trainer.job.completed.v1"],
            timeout=60,
            what="the completed event",
        )
        assert _status(store, "t1") == "completed"

        # Everything is on the new primary, read directly from it.
        with redis_from_url(f"redis://:{PASSWORD}@127.0.0.1:{group.primary_port}/0") as primary:
            record = JobStore(primary).get("t1")
            assert record is not None and record["attempts"] == 1
            assert record["result"] is not None
            types = _event_types(primary, "t1")
        assert types[0] == "trainer.job.started.v1"
        assert "trainer.metrics.progress.v1" in types
        assert types[-1] == "trainer.job.completed.v1"
        # The follower saw every stored event, in order, and may have seen more: replication
        # is asynchronous, so what reached the old primary after the promotion is lost there.
        follower.join(30)
        assert followed[-1] == "trainer.job.completed.v1"
        assert _in_order_within(types, followed)
        # No infer worker here, so not ready; but Redis answers and the train worker is seen.
        readiness = httpx.get(f"{base_url}/readyz", timeout=10).json()
        assert (readiness["redis"], readiness["workers"]["train"]) == (True, 1)

        # RQ's command channel followed the primary: a shutdown command stops the worker.
        (name,) = [found.name for found in Worker.all(queue=train_queue)]
        channel = f"rq:pubsub:{name}"
        wait_for(
            lambda: dict(redis.pubsub_numsub(channel)).get(channel.encode()) == 1,
            timeout=30,
            what="the worker to subscribe on the new primary",
        )
        send_shutdown_command(redis, name)
        assert worker.wait(timeout=30) == 0
    finally:
        client.close()
        stop(api)
        stop(worker)
        redis.close()
        group.stop()
