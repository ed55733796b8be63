"""A 30 s Redis outage and restart (AOF on) in the middle of a training: every worker process
lives on, the training carries on through the outage (it ends while Redis is still away, so its
result waits for Redis) and completes, and its event stream ends `completed`."""

from __future__ import annotations

import time
from pathlib import Path

from rq import Queue, Retry, Worker
from rq.serializers import JSONSerializer
from tests.support.processes import cli_process, start_redis, stop, wait_for
from tests.support.records import queued_record

from model_trainer.contracts.defaults import make_generate_config
from model_trainer.contracts.jobs import (
    DOMAIN,
    GenerateJobPayload,
    TrainJobPayload,
)
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.storage.job_store import JobStore
from platform_core.json_types import load_json_object
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient, redis_from_url

OUTAGE_S = 30.0


def _pids(redis: RedisClient, queue: str) -> set[int]:
    return {worker.pid for worker in Worker.all(queue=Queue(queue, connection=redis)) if worker.pid}


def _event_types(redis: RedisClient, job_id: str) -> list[str]:
    return [str(load_json_object(data)["type"]) for _, data in read_events(redis, DOMAIN, job_id)]


def _status(store: JobStore, job_id: str) -> str | None:
    record = store.get(job_id)
    return None if record is None else record["status"]


def test_a_redis_restart_mid_training_is_survived(
    tmp_path: Path, corpus_path: Path, service_env: dict[str, str]
) -> None:
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    server, url = start_redis(redis_dir, persist=True)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    redis = redis_from_url(url)
    store = JobStore(redis)
    worker = cli_process(["worker", "--queues", "train,infer"], {**service_env, "REDIS_URL": url})
    try:
        wait_for(lambda: len(_pids(redis, "train")) == 1, timeout=60, what="a train worker")
        wait_for(lambda: len(_pids(redis, "infer")) == 1, timeout=60, what="an infer worker")
        before = (_pids(redis, "train"), _pids(redis, "infer"))
        config = make_train_config(
            model_family="char_lstm",
            model_size="tiny",
            corpus_path=str(corpus_path),
            options={
                **TRAIN_DEFAULTS,
                "max_seq_len": 32,
                "batch_size": 8,
                "max_steps": 10_000_000,
                "time_budget_s": 20.0,
                "log_every_steps": 10,
                "device": "cpu",
            },
        )
        train: TrainJobPayload = {
            "job_id": "t1",
            "user_id": 1,
            "run_id": "run-t1",
            "config": config,
            "tokenizer_id": None,
        }
        store.create(queued_record("t1", "train", "run-t1"))
        Queue("train", connection=redis, serializer=JSONSerializer).enqueue_call(
            "model_trainer.worker.train_job.process_train_job",
            args=(train,),
            job_id="t1",
            timeout=600,
            retry=Retry(max=2),
        )
        wait_for(
            lambda: "trainer.metrics.progress.v1" in _event_types(redis, "t1"),
            timeout=60,
            what="training progress",
        )
        stop(server)
        time.sleep(OUTAGE_S)
        server, _ = start_redis(redis_dir, port, persist=True)
        wait_for(lambda: _status(store, "t1") == "completed", timeout=120, what="completion")
        record = store.get("t1")
        assert record is not None and record["attempts"] == 1
        assert _event_types(redis, "t1")[-1] == "trainer.job.completed.v1"
        # the same worker processes serve both queues, and serve new work
        assert worker.poll() is None
        assert (_pids(redis, "train"), _pids(redis, "infer")) == before
        generate: GenerateJobPayload = {
            "job_id": "g1",
            "user_id": 1,
            "run_id": "run-t1",
            "step": None,
            "config": make_generate_config(prompt_text="To", max_new_tokens=5, seed=1),
        }
        store.create(queued_record("g1", "generate", "run-t1"))
        Queue("infer", connection=redis, serializer=JSONSerializer).enqueue_call(
            "model_trainer.worker.generate_job.process_generate_job", args=(generate,), job_id="g1"
        )
        wait_for(lambda: _status(store, "g1") == "completed", timeout=60, what="a generate")
    finally:
        stop(worker)
        stop(server)
        redis.close()
