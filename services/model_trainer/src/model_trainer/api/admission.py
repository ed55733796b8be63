"""Admission control: a user's queued+running jobs per queue, and every user's queue depth.

The counting happens in the submission script (storage/submissions.py), atomically with the
record and the enqueue: the global cap sums RQ's own queue lengths (one LLEN per priority and
device of the queue class); the per-user count is the size of a sorted set of the user's unended
job ids per queue (all priorities and devices alike), scored by submit time. A job joins it as
it is admitted and leaves it when its record ends (`JobStore.complete`/`fail`). In case a job
ever ends without its record saying so, a submission refused for its quota first re-checks the
set's oldest few members (`prune`), drops those whose record ended or that never got one within
a minute, and tries once more. This module names the keys, the refusals and the repair.
"""

from __future__ import annotations

from rq import Queue

from model_trainer.contracts.jobs import DOMAIN, TERMINAL_STATUSES, QueueName, every_rq_queue
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.job_store import index_positions
from platform_workers.keys import record_key, user_active_key
from platform_workers.redis_conn import RedisClient, as_text

# A member with no record yet is a submission in flight; after this long it never will have one.
PENDING_GRACE_S = 60.0
# How many of the oldest members each admission re-checks: constant work per submission.
PRUNE_SAMPLE = 8


def active_key(user_id: int, queue: QueueName) -> str:
    return user_active_key(DOMAIN, user_id, queue)


def queue_full(queue: QueueName, depth: int) -> ModelTrainerError:
    return ModelTrainerError(
        "QUEUE_FULL",
        f"the {queue} queue holds {depth} jobs, its limit (MAX_QUEUE_DEPTH); retry later",
        details={"queue": queue, "depth": depth},
    )


def quota_exceeded(queue: QueueName, active: int, limit: int) -> ModelTrainerError:
    return ModelTrainerError(
        "QUOTA_EXCEEDED",
        f"you have {active} jobs queued or running on {queue}, your limit "
        f"(MAX_ACTIVE_JOBS_{queue.upper()}); wait for one to end or cancel one",
        details={"queue": queue, "active": active, "limit": limit},
    )


def depth_keys(queue: QueueName) -> list[str]:
    """RQ's lists of every priority and device of the queue class, whose lengths sum to its
    depth."""
    return [Queue.redis_queue_namespace_prefix + name for name in every_rq_queue(queue)]


def prune(redis: RedisClient, key: str, now: float) -> int:
    """Drop ended jobs among the set's oldest members (a leak's repair); how many went."""
    oldest = index_positions(redis.zrange(key, 0, PRUNE_SAMPLE - 1, withscores=True))
    pipe = redis.pipeline(transaction=False)
    for _, job_id in oldest:
        pipe.hget(record_key(DOMAIN, job_id), "status")
    statuses: list[bytes | None] = pipe.execute()
    ended = [
        job_id
        for (submitted, job_id), status in zip(oldest, statuses, strict=True)
        if _ended(status, now - submitted)
    ]
    if ended:
        redis.zrem(key, *ended)
    return len(ended)


def _ended(status: bytes | None, age_s: float) -> bool:
    if status is None:
        return age_s > PENDING_GRACE_S
    return as_text(status) in TERMINAL_STATUSES
