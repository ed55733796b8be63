"""A spawned train horse builds its own connection from REDIS_URL (the e2e tests run it over
TLS and Sentinel); like RQ's horse, it exits 1 when the worker that spawned it is gone. A
long-running train worker keeps a warm spare horse that takes the next job."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from rq import Queue
from rq.serializers import JSONSerializer
from tests.support.processes import cli_process, descendants, stop, wait_for
from tests.support.records import queued_record

from model_trainer.settings import Settings
from model_trainer.storage.job_store import JobStore
from model_trainer.worker.spawn_horse import await_order, work_horse
from model_trainer.worker.worker_entry import TrainWorker, make_worker
from platform_workers.redis_conn import RedisClient


@pytest.fixture
def worker_env(redis_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a horse reads when it starts: the same Redis and roots as this test."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ARTIFACTS_ROOT", str(settings["artifacts_root"]))
    monkeypatch.setenv("DATA_ROOT", str(settings["data_root"]))


def test_a_horse_whose_worker_is_gone_exits_1(
    redis: RedisClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    redis.sadd("rq:workers", "rq:worker:gone")
    with pytest.raises(SystemExit) as caught:
        work_horse("rq:worker:gone", "j1", "train", "e1")
    assert caught.value.code == 1
    assert redis.smembers("rq:workers") == set()


def _train_worker(redis: RedisClient) -> TrainWorker:
    worker = make_worker("train", redis)
    assert isinstance(worker, TrainWorker)
    return worker


def _enqueue_pid_report(redis: RedisClient, job_id: str) -> None:
    JobStore(redis).create(queued_record(job_id, "train", None))
    Queue("train", connection=redis, serializer=JSONSerializer).enqueue(
        "tests.support.rq_jobs.reports_pid", job_id, job_id=job_id
    )


def _reported_pid(redis: RedisClient, job_id: str) -> int:
    record = JobStore(redis).get(job_id)
    assert record is not None and record["status"] == "completed", record
    assert record["result"] is not None
    pid = record["result"]["pid"]
    assert isinstance(pid, int)
    return pid


def _gone(pid: int) -> bool:
    """Exited (reaped, or a zombie waiting for its parent)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.usefixtures("worker_env")
def test_a_train_worker_hands_its_job_to_the_warm_spare_and_retires_the_next_at_teardown(
    redis: RedisClient,
) -> None:
    worker = _train_worker(redis)
    worker.keep_spare()
    spare = worker.spare_pid
    assert spare is not None
    _enqueue_pid_report(redis, "j-spare")
    assert worker.work(burst=True)
    assert _reported_pid(redis, "j-spare") == spare
    # a new spare was spawned after the job; teardown killed and reaped it
    assert worker.spare_pid is None
    assert _gone(spare)


@pytest.mark.usefixtures("worker_env")
def test_a_dead_spare_is_replaced_by_a_fresh_horse(redis: RedisClient) -> None:
    worker = _train_worker(redis)
    worker.keep_spare()
    spare = worker.spare_pid
    assert spare is not None
    os.kill(spare, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _gone(spare) and time.monotonic() < deadline:
        time.sleep(0.02)
    _enqueue_pid_report(redis, "j-fresh")
    assert worker.work(burst=True)
    assert _reported_pid(redis, "j-fresh") not in (spare, os.getpid())
    assert worker.spare_pid is None


def test_a_spare_whose_worker_closes_the_pipe_warms_up_then_exits_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    await_order(warm=True)
    # what a training would otherwise import on its first step is loaded
    assert {"torch._dynamo", "transformers", "model_trainer.worker.train_job"} <= set(sys.modules)


def test_an_order_names_the_job_and_its_execution_for_the_horse(
    redis: RedisClient, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("RQ_JOB_ID", "old")
    monkeypatch.setenv("RQ_EXECUTION_ID", "old")
    order = {
        "worker_key": "rq:worker:gone",
        "job_id": "j2",
        "queue_name": "train",
        "execution_id": "e2",
    }
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(orjson.dumps(order) + b"\n")))
    with pytest.raises(SystemExit) as caught:
        await_order(warm=False)
    assert caught.value.code == 1  # its worker is gone, as for RQ's own horse
    assert (os.environ["RQ_JOB_ID"], os.environ["RQ_EXECUTION_ID"]) == ("j2", "e2")


def _status(redis: RedisClient, job_id: str) -> str | None:
    record = JobStore(redis).get(job_id)
    return None if record is None else record["status"]


def _one_spare_other_than(pid: int, worker: int) -> Callable[[], bool]:
    def check() -> bool:
        below = descendants(worker)
        return len(below) == 1 and below[0] != pid

    return check


def test_a_running_train_worker_keeps_one_spare_and_takes_it_down_when_stopped(
    redis: RedisClient, service_env: dict[str, str]
) -> None:
    worker = cli_process(["worker", "--queues", "train", "--device", "cpu"], service_env)
    try:
        wait_for(_one_spare_other_than(0, worker.pid), timeout=60, what="a spare horse")
        (spare,) = descendants(worker.pid)
        _enqueue_pid_report(redis, "j-process")
        wait_for(lambda: _status(redis, "j-process") == "completed", timeout=60, what="the job")
        assert _reported_pid(redis, "j-process") == spare
        # the horse exited with its job; the next spare is spawned after it
        wait_for(_one_spare_other_than(spare, worker.pid), timeout=60, what="the next spare")
        (next_spare,) = descendants(worker.pid)
    finally:
        stop(worker)
    assert worker.returncode == 0
    assert _gone(next_spare)
