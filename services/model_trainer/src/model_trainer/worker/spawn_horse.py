"""Spawned work horses that connect to Redis the way every other process does (from
REDIS_URL), and that are ready before their job arrives.

RQ's SpawnWorker starts its horse with `Redis(**kwargs)`, the kwargs copied from the worker's
connection pool: a Sentinel-managed pool's kwargs hold a live proxy object that cannot cross
a process boundary (the horse dies before it starts), and a plain client rebuilt from a pool
would not follow a failover anyway. This horse builds its client with `redis_from_url`
(retries and backoff included) and then reconstructs what RQ's horse does: the worker by its
key, the job, its queue and its execution, before `main_work_horse`.

A fresh interpreter spends seconds importing torch (and, on its first optimizer, torch's
compiler stack) before a training's first step. So the worker keeps one spare horse: spawned
while the worker is idle, it pays those imports (`warm_up`), then blocks on its stdin for an
order (one JSON line: worker key, job, queue, execution). A dequeued job goes to the spare at
once; the next spare is spawned after the job's horse has exited, so it never competes with a
training for the cores. Every training still runs in an interpreter of its own that no process
forked (CUDA stays safe) and that exits with the job (its memory goes back). A spare whose
worker is gone reads end-of-file and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TypedDict

import orjson
from rq import Queue
from rq.executions import Execution
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import SpawnWorker

from model_trainer.contracts.model import ModelFamily
from model_trainer.settings import load_settings
from model_trainer.worker.preemption import die_with_worker
from platform_core.json_types import load_json_object, require_str
from platform_workers.redis_conn import redis_from_url

# Every family a training may ask for: a spare imports each backend, so none starts cold.
WARM_FAMILIES: tuple[ModelFamily, ...] = ("char_lstm", "gpt2")


class HorseOrder(TypedDict):
    """What a spare horse is told to run: the same four names RQ's own horse is given."""

    worker_key: str
    job_id: str
    queue_name: str
    execution_id: str


class Spare:
    """A spawned horse waiting for its order on a pipe that only this worker writes to."""

    def __init__(self, pid: int, order_fd: int) -> None:
        self.pid = pid
        self._order_fd = order_fd

    @classmethod
    def spawn(cls, *, warm: bool) -> Spare:
        """A fresh interpreter in its own process group (RQ's reaper and stop-job command
        signal the group) reading its order from a new pipe on its stdin; `warm` has it
        warm up first (a horse spawned for a waiting job goes straight to it)."""
        read_fd, write_fd = os.pipe()
        source = (
            f"import sys; sys.path[:] = {sys.path!r}\n"
            "from model_trainer.worker.spawn_horse import await_order\n"
            f"await_order(warm={warm!r})\n"
        )
        try:
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-c", source],
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, read_fd, 0)],
                setpgroup=0,
            )
        finally:
            os.close(read_fd)
        return cls(pid, write_fd)

    def hand(self, order: HorseOrder) -> bool:
        """Send the order and close the pipe; False when the horse is already dead (its pipe
        is broken)."""
        try:
            os.write(self._order_fd, orjson.dumps(order) + b"\n")
        except BrokenPipeError:
            return False
        finally:
            os.close(self._order_fd)
        return True

    def retire(self, *, handed: bool = False) -> None:
        """Stop and reap a horse that runs no job: a spare never given an order, or one that
        was found dead (`handed`: its pipe is closed already). It holds no job, so it is simply
        killed."""
        if not handed:
            os.close(self._order_fd)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


class SpawnFromSettings(SpawnWorker):
    _spare: Spare | None = None
    _keeps_spare = False

    @property
    def spare_pid(self) -> int | None:
        """The waiting spare horse's process id (None when there is none)."""
        return None if self._spare is None else self._spare.pid

    def keep_spare(self) -> None:
        """From now on, keep a warm spare horse ready (a long-running worker's choice: a burst
        worker, which stops once the queue is empty, would only kill it unused)."""
        self._keeps_spare = True
        self._prepare_spare()

    def _prepare_spare(self) -> None:
        if self._keeps_spare and self._spare is None:
            # RQ exports the worker's name to its horse (preemption.py reads it).
            os.environ["RQ_WORKER_ID"] = self.name
            self._spare = Spare.spawn(warm=True)

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        """Hand the job to the spare horse (or, without a live one, to a fresh horse)."""
        # The execution prepare_execution just recorded: a spawn worker runs one at a time.
        execution_id = next(iter(self.executions))
        os.environ["RQ_WORKER_ID"] = self.name
        os.environ["RQ_JOB_ID"] = job.id
        os.environ["RQ_EXECUTION_ID"] = execution_id
        order: HorseOrder = {
            "worker_key": self.key,
            "job_id": job.id,
            "queue_name": queue.name,
            "execution_id": execution_id,
        }
        horse, self._spare = self._spare, None
        if horse is not None and not horse.hand(order):
            horse.retire(handed=True)
            horse = None
        if horse is None:
            horse = Spare.spawn(warm=False)
            # Should even a fresh horse be dead already, RQ's monitor reaps it and fails the
            # job as it does any horse that died.
            horse.hand(order)
        self._horse_pid = horse.pid

    def execute_job(self, job: Job, queue: Queue) -> None:
        super().execute_job(job, queue)
        self._prepare_spare()

    def teardown(self) -> None:
        if self._spare is not None:
            self._spare.retire()
            self._spare = None
        # SpawnWorker's, named: mypy takes RQ's unannotated method through super() as untyped.
        SpawnWorker.teardown(self)


def await_order(*, warm: bool) -> None:
    """A horse's life: warm up (a spare), then run the one job its worker sends (none when
    the worker closes the pipe first). A spare dies with its worker, even mid-warm-up."""
    die_with_worker()
    if warm:
        warm_up()
    line = sys.stdin.buffer.readline()
    if not line:
        return
    order = load_json_object(line)
    job_id, execution_id = require_str(order, "job_id"), require_str(order, "execution_id")
    os.environ["RQ_JOB_ID"] = job_id
    os.environ["RQ_EXECUTION_ID"] = execution_id
    work_horse(
        require_str(order, "worker_key"), job_id, require_str(order, "queue_name"), execution_id
    )


def warm_up() -> None:
    """Pay what a training pays on first use before any job waits for it: the job and backend
    modules (torch, transformers) and one fused AdamW step on the CPU, which loads torch's
    compiler stack (imported lazily by the first optimizer). CUDA is never touched."""
    import torch

    from model_trainer.backends.registry import get_backend
    from model_trainer.worker import train_job, worker_entry

    del train_job, worker_entry
    for family in WARM_FAMILIES:
        get_backend(family)
    layer = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(layer.parameters(), fused=True)
    layer(torch.zeros(1, 2)).sum().backward()
    optimizer.step()


def work_horse(worker_key: str, job_id: str, queue_name: str, execution_id: str) -> None:
    """The horse's entry point; exits 1, as RQ's horse does, when its worker is gone."""
    # Imported here: worker_entry's TrainWorker is built on this module's class.
    from model_trainer.worker.worker_entry import JOB_MONITORING_INTERVAL, TrainWorker

    redis = redis_from_url(load_settings()["redis_url"])
    worker = TrainWorker.find_by_key(worker_key, connection=redis, serializer=JSONSerializer)
    if worker is None:
        sys.exit(1)
    worker.job_monitoring_interval = JOB_MONITORING_INTERVAL
    job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    queue = Queue(queue_name, connection=redis, serializer=JSONSerializer)
    worker.execution = Execution.fetch(execution_id, job_id, connection=redis)
    worker.main_work_horse(job, queue)
