"""RQ workers for the two queues, and the process that runs them.

`train` jobs run under `TrainWorker`, an RQ `SpawnWorker`: every training starts in a freshly
spawned interpreter, so CUDA is never initialised in a process that forks, and a finished
training hands all its memory back. `infer` jobs run under `InferWorker`, an RQ `SimpleWorker`:
jobs execute in the worker process itself, so the model cache (`model_cache.py`) keeps recently
used runs loaded between generate/score/eval requests. `--queues train,infer` runs one worker of
each kind as child processes, so a long training never delays inference on the same machine;
`--processes N` runs N of each (N inference workers serve N requests at once, each with its own
model cache).
Each worker listens to its class's three priority queues, high first (`contracts.jobs.rq_queues`):
RQ takes a job from the first non-empty one. A CUDA worker (`device_class.py`) listens to its
class's three CUDA queues first; its name starts with its device class (`cuda-train-…`), so RQ
dashboard shows which workers have a GPU.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence

from rq import Queue, SimpleWorker
from rq.executions import Execution
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.utils import current_timestamp

from model_trainer.contracts.jobs import (
    DOMAIN,
    WORKER_HEARTBEAT_S,
    QueueName,
    WorkerDevice,
    worker_rq_queues,
)
from model_trainer.settings import Settings, load_settings
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.runs import utc_now
from model_trainer.worker.job_utils import job_context, reported_by_the_job, through_outage
from model_trainer.worker.prompt_shutdown import PromptUnsubscribe
from model_trainer.worker.reconcile import reconcile
from model_trainer.worker.rq_cancel import CancelledStaysCanceled
from model_trainer.worker.spawn_horse import SpawnFromSettings
from platform_core.json_types import require_int
from platform_core.structured_logs import configure_logging
from platform_workers.keys import running_studies_key
from platform_workers.redis_conn import RedisClient, redis_from_url

logger = logging.getLogger(__name__)

JOB_MONITORING_INTERVAL = 5
WORKER_TTL = 35
MAINTENANCE_INTERVAL = 10
MISSED_HEARTBEATS = 3


def announce_started(redis: RedisClient, job: Job, queue: QueueName) -> None:
    """Mark the record running and publish `started` from the worker process itself.

    The work horse of a train job needs seconds to start (a new interpreter, torch); announcing
    here keeps submit-to-started latency to one Redis round trip after the dequeue.
    """
    payload = job.args[0]
    user_id = require_int(payload, "user_id") if isinstance(payload, dict) else 0
    JobStore(redis).mark_running(job.id, now=utc_now())
    job_context(redis, job_id=job.id, user_id=user_id, queue=queue).publish_started()


def requeue_abandoned(queues: Sequence[Queue], monitoring_interval: int) -> None:
    """Hand jobs whose worker stopped heartbeating to RQ's own abandoned-job handling.

    RQ keeps a started job alive for `monitoring_interval + 60` s after each heartbeat; moving
    the cutoff forward declares a job abandoned after MISSED_HEARTBEATS missed heartbeats
    instead, and RQ then retries it (train jobs carry `Retry`) or fails it.
    """
    cutoff = current_timestamp() + 60 - MISSED_HEARTBEATS * monitoring_interval
    for queue in queues:
        queue.started_job_registry.cleanup(timestamp=cutoff)


class TrainWorker(PromptUnsubscribe, CancelledStaysCanceled, SpawnFromSettings):
    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        """RQ's heartbeats while the horse trains; a Redis outage skips them instead of killing
        this worker (and orphaning its training). They resume when Redis is back."""
        through_outage(lambda: super(TrainWorker, self).maintain_heartbeats(job, execution), None)

    def execute_job(self, job: Job, queue: Queue) -> None:
        announce_started(self.connection, job, "train")
        super().execute_job(job, queue)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """The horse is a fresh interpreter: its lines are JSON like its worker's."""
        configure_logging(load_settings()["log_level"])
        super().main_work_horse(job, queue)

    def handle_exception(self, job: Job, *exc_info: object) -> None:
        if not reported_by_the_job(exc_info[1]):
            super().handle_exception(job, *exc_info)


class InferWorker(PromptUnsubscribe, CancelledStaysCanceled, SimpleWorker):
    def execute_job(self, job: Job, queue: Queue) -> None:
        announce_started(self.connection, job, "infer")
        super().execute_job(job, queue)

    def handle_exception(self, job: Job, *exc_info: object) -> None:
        if not reported_by_the_job(exc_info[1]):
            super().handle_exception(job, *exc_info)


def make_worker(
    queue: QueueName, redis: RedisClient, device: WorkerDevice = "cpu"
) -> TrainWorker | InferWorker:
    worker_class = TrainWorker if queue == "train" else InferWorker
    return worker_class(
        [
            Queue(name, connection=redis, serializer=JSONSerializer)
            for name in worker_rq_queues(queue, device)
        ],
        name=f"{device}-{queue}-{uuid.uuid4().hex}",
        connection=redis,
        serializer=JSONSerializer,
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        worker_ttl=WORKER_TTL,
        maintenance_interval=MAINTENANCE_INTERVAL,
    )


def maintain(worker: TrainWorker | InferWorker, settings: Settings) -> None:
    """Heartbeat the worker's registration (so /readyz sees it alive even mid-job), hand
    abandoned jobs of its queues to RQ, reconcile every active record with RQ, so no record
    stays `running` after its job ended there, then advance the studies that have something
    to do (so a study goes on whoever was advancing it died)."""
    worker.heartbeat()
    requeue_abandoned(worker.queues, worker.job_monitoring_interval)
    reconcile(worker.connection)
    if worker.connection.scard(running_studies_key(DOMAIN)):
        # Optuna is imported only by workers that find a running study.
        from model_trainer.studies.driver import advance_due, submit_context

        advance_due(submit_context(settings, worker.connection))


def keep_maintaining(
    worker: TrainWorker | InferWorker, settings: Settings, *, interval_s: float = WORKER_HEARTBEAT_S
) -> threading.Thread:
    """`maintain` every interval in a daemon thread beside RQ's loop, which runs its own
    maintenance only between dequeue waits. A Redis outage skips a round; a bug is logged and
    the next round runs anyway."""

    def rounds() -> None:
        while True:
            # Sleep first: RQ registers the worker as `work()` starts, and refuses a name whose
            # key a heartbeat already created.
            time.sleep(interval_s)
            try:
                through_outage(lambda: maintain(worker, settings), None)
            except Exception:
                logger.exception("maintenance round failed")

    thread = threading.Thread(target=rounds, name="maintenance", daemon=True)
    thread.start()
    return thread


def run_worker(
    queue: QueueName, settings: Settings, *, device: WorkerDevice = "cpu", burst: bool = False
) -> bool:
    """Work one queue in this process until stopped (or, with burst, until it is empty).

    A train worker that keeps running keeps a warm spare horse (`spawn_horse.py`), so a
    training's first step does not wait for torch to import.

    Inference feeds small models one token at a time: extra torch threads only contend for the
    cores (a measured p95 of 1.5 s with 2 threads against 0.1 s with 1 under load), so the
    infer worker defaults to one thread unless OMP_NUM_THREADS says otherwise. torch reads it
    when a job first imports it.
    """
    if queue == "infer":
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    worker = make_worker(queue, redis_from_url(settings["redis_url"]), device)
    if isinstance(worker, TrainWorker) and not burst:
        worker.keep_spare()
    keep_maintaining(worker, settings)
    return worker.work(burst=burst, logging_level=settings["log_level"])


class Supervisor:
    """Keeps one child process per queue alive, so the process an operator runs is the one that
    keeps every queue served.

    Children are named (`infer`, or `infer-2` when a queue has several). A child that exits
    is started again after a backoff that doubles (from `base_s` up to
    `cap_s`) while it keeps dying young, and starts over once a child has lived `stable_s`.
    `stop` forwards a signal to the children and ends the supervision once they have exited.
    """

    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        base_s: float = 1.0,
        cap_s: float = 30.0,
        stable_s: float = 60.0,
        poll_s: float = 0.2,
    ) -> None:
        self._commands = commands
        self._base_s, self._cap_s, self._stable_s, self._poll_s = base_s, cap_s, stable_s, poll_s
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._started: dict[str, float] = {}
        self._delay: dict[str, float] = dict.fromkeys(commands, base_s)
        self._due: dict[str, float] = {}
        self._stopping = False
        self.restarts: dict[str, int] = dict.fromkeys(commands, 0)

    def run(self) -> int:
        for queue in self._commands:
            self._start(queue)
        while not (self._stopping and self._all_exited()):
            for queue in self._commands:
                self._tend(queue, time.monotonic())
            time.sleep(self._poll_s)
        return max(child.wait() for child in self._children.values())

    def stop(self, signum: int) -> None:
        self._stopping = True
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signum)

    def alive(self) -> dict[str, bool]:
        """Which children are running right now."""
        return {queue: child.poll() is None for queue, child in self._children.items()}

    def _all_exited(self) -> bool:
        return all(child.poll() is not None for child in self._children.values())

    def _start(self, queue: str) -> None:
        self._children[queue] = subprocess.Popen(self._commands[queue])
        self._started[queue] = time.monotonic()

    def _tend(self, queue: str, now: float) -> None:
        """Schedule a restart for a child that exited; start it when its backoff is over."""
        code = self._children[queue].poll()
        if code is None or self._stopping:
            return
        if queue not in self._due:
            lived = now - self._started[queue]
            delay = self._base_s if lived >= self._stable_s else self._delay[queue]
            self._delay[queue] = min(self._cap_s, delay * 2)
            self._due[queue] = now + delay
            logger.warning(
                "%s worker exited with %s after %.1f s; restarting in %.1f s",
                queue,
                code,
                lived,
                delay,
            )
        elif now >= self._due[queue]:
            del self._due[queue]
            self.restarts[queue] += 1
            self._start(queue)


def worker_command(queue: QueueName, device: WorkerDevice) -> list[str]:
    """A child's command: its device class is passed on, so children never probe for cpu."""
    return [
        sys.executable,
        "-m",
        "model_trainer.cli",
        "worker",
        "--queues",
        queue,
        "--device",
        device,
    ]


def child_commands(
    queues: Sequence[QueueName], device: WorkerDevice, processes: int
) -> dict[str, list[str]]:
    """Each supervised child's name and command: `processes` workers per queue."""
    if processes == 1:
        return {queue: worker_command(queue, device) for queue in queues}
    return {
        f"{queue}-{index}": worker_command(queue, device)
        for queue in queues
        for index in range(1, processes + 1)
    }


def run_workers(
    queues: Sequence[QueueName], settings: Settings, device: WorkerDevice, processes: int = 1
) -> int:
    """One queue, one process: work it here. Otherwise: supervised child processes,
    `processes` per queue."""
    logger.info("worker device class: %s", device)
    commands = child_commands(queues, device, processes)
    if len(commands) == 1:
        run_worker(queues[0], settings, device=device)
        return 0
    supervisor = Supervisor(commands)

    def stop(signum: int, _frame: object) -> None:
        supervisor.stop(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return supervisor.run()
