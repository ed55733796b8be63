"""Admission control: a user's queued+running jobs per queue, and every user's queue depth.

The global cap reads RQ's own queue length (`Queue.count`, one LLEN). The per-user count is a
sorted set of the user's job ids per queue, scored by submit time; it is pruned as it is read
(members whose record ended, or that never got a record within a minute), so no worker or
reconciler has to remember to remove them. A submission adds itself first and then counts, so two
racing submissions can both be refused but never both slip past the limit.
"""

from __future__ import annotations

import time

from rq import Queue
from rq.serializers import JSONSerializer

from model_trainer.contracts.jobs import DOMAIN, TERMINAL_STATUSES, QueueName
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.job_store import index_positions
from platform_workers.keys import record_key
from platform_workers.redis_conn import RedisClient, as_text

# A member with no record yet is a submission in flight; after this long it never will have one.
PENDING_GRACE_S = 60.0


def active_key(user_id: int, queue: QueueName) -> str:
    return f"{DOMAIN}:user:{user_id}:active:{queue}"


def admit(
    redis: RedisClient, settings: Settings, caller: Principal, queue: QueueName, job_id: str
) -> None:
    """Raise QUEUE_FULL (503) or QUOTA_EXCEEDED (429), or count the job against its user."""
    depth = Queue(queue, connection=redis, serializer=JSONSerializer).count
    if depth >= settings["max_queue_depth"]:
        raise ModelTrainerError(
            "QUEUE_FULL",
            f"the {queue} queue holds {depth} jobs, its limit (MAX_QUEUE_DEPTH); retry later",
            details={"queue": queue, "depth": depth},
        )
    key = active_key(caller["user_id"], queue)
    now = time.time()
    redis.zadd(key, {job_id: now})
    active = _prune(redis, key, now, keep=job_id)
    limit = settings["max_active_jobs"][queue]
    if active > limit:
        redis.zrem(key, job_id)
        raise ModelTrainerError(
            "QUOTA_EXCEEDED",
            f"you have {active - 1} jobs queued or running on {queue}, your limit "
            f"(MAX_ACTIVE_JOBS_{queue.upper()}); wait for one to end or cancel one",
            details={"queue": queue, "active": active - 1, "limit": limit},
        )


def _prune(redis: RedisClient, key: str, now: float, *, keep: str) -> int:
    """Drop ended jobs from the user's set; the count of those still queued or running."""
    members = [
        (job_id, score)
        for score, job_id in index_positions(redis.zrange(key, 0, -1, withscores=True))
    ]
    pipe = redis.pipeline()
    for job_id, _ in members:
        pipe.hget(record_key(DOMAIN, job_id), "status")
    statuses: list[bytes | None] = pipe.execute()
    ended = [
        job_id
        for (job_id, submitted), status in zip(members, statuses, strict=True)
        if job_id != keep and _ended(status, now - submitted)
    ]
    if ended:
        redis.zrem(key, *ended)
    return len(members) - len(ended)


def _ended(status: bytes | None, age_s: float) -> bool:
    if status is None:
        return age_s > PENDING_GRACE_S
    return as_text(status) in TERMINAL_STATUSES
