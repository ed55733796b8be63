"""Which workers are alive on an RQ queue: what /readyz reports, and what a job that needs CUDA
must find before it is accepted.

RQ's own worker registry says who listens on a queue (`rq:workers:{queue}`); a worker counts as
alive only while its heartbeat is fresh, since RQ keeps a registration for minutes after its
worker died mid-job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rq import Queue, Worker

from model_trainer.contracts.jobs import WORKER_LIVENESS_S, Priority, QueueName, rq_queue
from model_trainer.errors import ModelTrainerError
from platform_workers.redis_conn import RedisClient


def live_workers(redis: RedisClient, rq_name: str, *, now: datetime | None = None) -> int:
    """Workers listening on the RQ queue `rq_name` that heartbeated within WORKER_LIVENESS_S."""
    moment = datetime.now(UTC) if now is None else now
    oldest = moment - timedelta(seconds=WORKER_LIVENESS_S)
    workers = Worker.all(queue=Queue(rq_name, connection=redis))
    return sum(1 for worker in workers if worker.last_heartbeat and worker.last_heartbeat >= oldest)


def require_cuda_worker(redis: RedisClient, queue: QueueName, priority: Priority) -> None:
    """Refuse (NO_CUDA_WORKER, 503) a job that needs CUDA while no CUDA worker is alive on its
    queue: a CPU worker never takes it, so it would wait with nobody to run it."""
    name = rq_queue(queue, priority, "cuda")
    if live_workers(redis, name) == 0:
        raise ModelTrainerError(
            "NO_CUDA_WORKER",
            f"device 'cuda' needs a CUDA worker on the {queue} queue and none is running "
            "(start one with WORKER_DEVICE=cuda on a GPU machine), or use device 'auto'",
            details={"queue": queue, "rq_queue": name},
        )
