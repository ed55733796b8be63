"""`model-trainer worker --queues infer --processes 2`: two inference workers, each its own
process, serve requests at the same time."""

from __future__ import annotations

import pytest
from rq import Queue, Worker
from rq.serializers import JSONSerializer
from tests.support.processes import cli_process, stop, wait_for
from tests.support.records import queued_record

from model_trainer import cli
from model_trainer.storage.job_store import JobStore
from platform_workers.redis_conn import RedisClient

JOBS = 6


def _pids(redis: RedisClient) -> set[int]:
    workers = Worker.all(queue=Queue("infer", connection=redis))
    return {worker.pid for worker in workers if worker.pid}


def _finished(store: JobStore) -> list[int]:
    """The pids the completed jobs report."""
    pids = []
    for index in range(JOBS):
        record = store.get(f"j{index}")
        if record is None or record["result"] is None:
            continue
        pid = record["result"]["pid"]
        assert isinstance(pid, int)
        pids.append(pid)
    return pids


def test_two_infer_processes_share_the_queue(
    redis: RedisClient, service_env: dict[str, str]
) -> None:
    parent = cli_process(
        ["worker", "--queues", "infer", "--processes", "2", "--device", "cpu"], service_env
    )
    try:
        wait_for(lambda: len(_pids(redis)) == 2, timeout=60, what="two infer workers")
        store = JobStore(redis)
        queue = Queue("infer", connection=redis, serializer=JSONSerializer)
        for index in range(JOBS):
            store.create(queued_record(f"j{index}", "generate", None))
            queue.enqueue(
                "tests.support.rq_jobs.reports_pid", f"j{index}", "infer", 0.3, job_id=f"j{index}"
            )
        wait_for(lambda: len(_finished(store)) == JOBS, timeout=60, what="every job")
        # both processes took jobs: the queue was served two at a time
        assert set(_finished(store)) == _pids(redis)
        assert parent.poll() is None
    finally:
        stop(parent)
    assert parent.returncode == 0


def test_fewer_than_one_process_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["worker", "--queues", "infer", "--processes", "0"]) == 2
    assert "--processes must be >= 1, got 0" in capsys.readouterr().err
