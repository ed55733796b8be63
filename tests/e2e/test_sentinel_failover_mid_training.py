"""Redis Sentinel fails the primary over to its replica in the middle of a training (and the old
primary is killed): the worker and its spawned work horse follow the new primary through
`REDIS_URL=redis+sentinel://…`, the training completes on its first attempt, its record and
its whole event stream are read from the new primary, and the worker still hears RQ commands
(its pub/sub subscription moved over too)."""

from __future__ import annotations

from pathlib import Path

from rq import Queue, Retry, Worker
from rq.command import send_shutdown_command
from rq.serializers import JSONSerializer
from tests.support.processes import cli_process, stop, wait_for
from tests.support.records import queued_record
from tests.support.redis_ha import PASSWORD, start_sentinel_group

from model_trainer.contracts.jobs import DOMAIN, TrainJobPayload
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.storage.job_store import JobStore
from platform_core.json_types import load_json_object
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient, redis_from_url


def _event_types(redis: RedisClient, job_id: str) -> list[str]:
    return [str(load_json_object(data)["type"]) for _, data in read_events(redis, DOMAIN, job_id)]


def _status(store: JobStore, job_id: str) -> str | None:
    record = store.get(job_id)
    return None if record is None else record["status"]


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
            "time_budget_s": 8.0,
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
    worker = cli_process(["worker", "--queues", "train"], {**service_env, "REDIS_URL": group.url})
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
        group.fail_over()
        assert _status(store, "t1") == "running"
        wait_for(lambda: _status(store, "t1") == "completed", timeout=60, what="completion")

        # Everything is on the new primary, read directly from it.
        with redis_from_url(f"redis://:{PASSWORD}@127.0.0.1:{group.primary_port}/0") as primary:
            record = JobStore(primary).get("t1")
            assert record is not None and record["attempts"] == 1
            assert record["result"] is not None
            types = _event_types(primary, "t1")
        assert types[0] == "trainer.job.started.v1"
        assert "trainer.metrics.progress.v1" in types
        assert types[-1] == "trainer.job.completed.v1"

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
        stop(worker)
        redis.close()
        group.stop()
