"""A training whose process is killed on every attempt ends `failed WORKER_LOST`, never stuck
`running`: RQ fails it once its retries are spent, and reconciliation ends our record."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from rq import Queue, Retry, Worker
from rq.serializers import JSONSerializer
from tests.support.processes import cli_process, descendants, stop, wait_for
from tests.support.records import queued_record

from model_trainer.api.submit import QUEUE_RETRIES
from model_trainer.contracts.jobs import DOMAIN, TrainJobPayload
from model_trainer.contracts.train_config import TRAIN_DEFAULTS, make_train_config
from model_trainer.storage.job_store import JobStore
from platform_core.job_events import decode_job_event, is_failed
from platform_core.json_types import load_json_object
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient


def _horse(redis: RedisClient) -> int | None:
    """The training process: the one process below the train worker, once it is up."""
    workers = Worker.all(queue=Queue("train", connection=redis))
    for worker in workers:
        below = descendants(worker.pid) if worker.pid else []
        if below:
            return below[0]
    return None


def _enqueue_endless_training(redis: RedisClient, corpus_path: Path) -> JobStore:
    """Record and enqueue job `doomed`: a training that never ends by itself, with the retries
    every train job gets."""
    store = JobStore(redis)
    config = make_train_config(
        model_family="char_lstm",
        model_size="tiny",
        corpus_path=str(corpus_path),
        options={**TRAIN_DEFAULTS, "max_steps": 10_000_000},
    )
    payload: TrainJobPayload = {
        "job_id": "doomed",
        "user_id": 1,
        "run_id": "run-doomed",
        "config": config,
        "tokenizer_id": None,
    }
    store.create(queued_record("doomed", "train", "run-doomed"))
    Queue("train", connection=redis, serializer=JSONSerializer).enqueue_call(
        "model_trainer.worker.train_job.process_train_job",
        args=(payload,),
        job_id="doomed",
        timeout=600,
        retry=Retry(max=QUEUE_RETRIES["train"]),
    )
    return store


def _attempt_running(store: JobStore, redis: RedisClient, attempt: int) -> Callable[[], bool]:
    def check() -> bool:
        record = store.get("doomed")
        return record is not None and record["attempts"] == attempt and _horse(redis) is not None

    return check


def test_a_training_killed_on_every_attempt_ends_as_worker_lost(
    redis: RedisClient, service_env: dict[str, str], corpus_path: Path
) -> None:
    store = _enqueue_endless_training(redis, corpus_path)
    worker = cli_process(["worker", "--queues", "train,infer"], service_env)
    try:
        for attempt in range(1, QUEUE_RETRIES["train"] + 2):
            wait_for(_attempt_running(store, redis, attempt), timeout=60, what=f"attempt {attempt}")
            horse = _horse(redis)
            assert horse is not None
            os.kill(horse, signal.SIGKILL)
        wait_for(
            lambda: (record := store.get("doomed")) is not None and record["status"] == "failed",
            timeout=90,
            what="the record to end",
        )
        record = store.get("doomed")
        assert record is not None and record["error"] is not None
        assert record["error"]["code"] == "WORKER_LOST"
        assert record["attempts"] == QUEUE_RETRIES["train"] + 1
        event = decode_job_event(read_events(redis, DOMAIN, "doomed")[-1][1])
        assert is_failed(event) and event["code"] == "WORKER_LOST"
    finally:
        stop(worker)


def test_a_training_dies_with_its_worker_so_a_retry_never_trains_beside_it(
    redis: RedisClient, service_env: dict[str, str], corpus_path: Path
) -> None:
    """SIGKILL to the worker alone (its horse sits in another process group): the horse goes
    too, so the job's retry elsewhere is the only process training the run."""
    _enqueue_endless_training(redis, corpus_path)
    worker = cli_process(["worker", "--queues", "train"], service_env)
    try:
        wait_for(
            lambda: (
                "trainer.metrics.progress.v1"
                in [
                    str(load_json_object(d)["type"])
                    for _, d in read_events(redis, DOMAIN, "doomed")
                ]
            ),
            timeout=60,
            what="training progress",
        )
        horse = _horse(redis)
        assert horse is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        wait_for(lambda: _gone(horse), timeout=10, what="the training to die with its worker")
    finally:
        stop(worker)


def _gone(pid: int) -> bool:
    """Dead, or a zombie nobody has reaped yet."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"
