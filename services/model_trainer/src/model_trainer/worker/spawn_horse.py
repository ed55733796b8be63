"""Spawned work horses that connect to Redis the way every other process does: from REDIS_URL.

RQ's SpawnWorker starts its horse with `Redis(**kwargs)`, the kwargs copied from the worker's
connection pool: a Sentinel-managed pool's kwargs hold a live proxy object that cannot cross
a process boundary (the horse dies before it starts), and a plain client rebuilt from a pool
would not follow a failover anyway. This horse builds its client with `redis_from_url`
(retries and backoff included) and then reconstructs what RQ's horse does: the worker by its
key, the job, its queue and its execution, before `main_work_horse`.
"""

from __future__ import annotations

import os
import sys

from rq import Queue
from rq.executions import Execution
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import SpawnWorker

from model_trainer.settings import load_settings
from platform_workers.redis_conn import redis_from_url


class SpawnFromSettings(SpawnWorker):
    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        """Spawn `work_horse` in a fresh interpreter, in its own process group (RQ's reaper
        and stop-job command signal the group)."""
        # The execution prepare_execution just recorded: a spawn worker runs one at a time.
        execution_id = next(iter(self.executions))
        os.environ["RQ_WORKER_ID"] = self.name
        os.environ["RQ_JOB_ID"] = job.id
        os.environ["RQ_EXECUTION_ID"] = execution_id
        source = (
            f"import sys; sys.path[:] = {sys.path!r}\n"
            "from model_trainer.worker.spawn_horse import work_horse\n"
            f"work_horse({self.key!r}, {job.id!r}, {queue.name!r}, {execution_id!r})\n"
        )
        argv = [sys.executable, "-c", source]
        self._horse_pid = os.posix_spawn(sys.executable, argv, os.environ, setpgroup=0)


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
