"""Admission control: a user's queued+running jobs per queue, and every user's queue depth.

The global cap reads RQ's own queue lengths (one LLEN per priority and device of the queue
class). The per-user count is the size of a sorted set of the user's unended job ids per queue
(all priorities and devices alike), scored by submit time: a job joins it here and leaves it
when its record ends (`JobStore.complete`/`fail`), so counting is one ZCARD whatever the user
has queued, in the same round trip as the queues' lengths. In case a job ever ends without its
record saying so, an admission about to refuse first re-checks the set's oldest few members and
drops those whose record ended, or that never got one within a minute. A submission adds itself
first and then counts, so two racing submissions can both be refused but never both slip past
the limit.
"""

from __future__ import annotations

import time

from rq import Queue
from rq.serializers import JSONSerializer

from model_trainer.contracts.jobs import DOMAIN, TERMINAL_STATUSES, QueueName, every_rq_queue
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.job_store import index_positions
from platform_workers.keys import record_key, user_active_key
from platform_workers.redis_conn import RedisClient, as_text

# A member with no record yet is a submission in flight; after this long it never will have one.
PENDING_GRACE_S = 60.0
# How many of the oldest members each admission re-checks: constant work per submission.
PRUNE_SAMPLE = 8


def active_key(user_id: int, queue: QueueName) -> str:
    return user_active_key(DOMAIN, user_id, queue)


def admit(
    redis: RedisClient, settings: Settings, caller: Principal, queue: QueueName, job_id: str
) -> None:
    """Raise QUEUE_FULL (503) or QUOTA_EXCEEDED (429), or count the job against its user.

    One round trip when the job fits; the oldest members are re-checked only before a refusal.
    """
    key = active_key(caller["user_id"], queue)
    now = time.time()
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(key, {job_id: now})
    pipe.zcard(key)
    for name in every_rq_queue(queue):
        pipe.llen(Queue(name, connection=redis, serializer=JSONSerializer).key)
    _, counted, *lengths = pipe.execute()
    depth = sum(int(length) for length in lengths)
    if depth >= settings["max_queue_depth"]:
        redis.zrem(key, job_id)
        raise ModelTrainerError(
            "QUEUE_FULL",
            f"the {queue} queue holds {depth} jobs, its limit (MAX_QUEUE_DEPTH); retry later",
            details={"queue": queue, "depth": depth},
        )
    limit = settings["max_active_jobs"][queue]
    active = int(counted)
    if active > limit:
        active -= _prune(redis, key, now, keep=job_id)
    if active > limit:
        redis.zrem(key, job_id)
        raise ModelTrainerError(
            "QUOTA_EXCEEDED",
            f"you have {active - 1} jobs queued or running on {queue}, your limit "
            f"(MAX_ACTIVE_JOBS_{queue.upper()}); wait for one to end or cancel one",
            details={"queue": queue, "active": active - 1, "limit": limit},
        )


def _prune(redis: RedisClient, key: str, now: float, *, keep: str) -> int:
    """Drop ended jobs among the set's oldest members (a leak's repair); how many went."""
    oldest = index_positions(redis.zrange(key, 0, PRUNE_SAMPLE - 1, withscores=True))
    pipe = redis.pipeline(transaction=False)
    for _, job_id in oldest:
        pipe.hget(record_key(DOMAIN, job_id), "status")
    statuses: list[bytes | None] = pipe.execute()
    ended = [
        job_id
        for (submitted, job_id), status in zip(oldest, statuses, strict=True)
        if job_id != keep and _ended(status, now - submitted)
    ]
    if ended:
        redis.zrem(key, *ended)
    return len(ended)


def _ended(status: bytes | None, age_s: float) -> bool:
    if status is None:
        return age_s > PENDING_GRACE_S
    return as_text(status) in TERMINAL_STATUSES
