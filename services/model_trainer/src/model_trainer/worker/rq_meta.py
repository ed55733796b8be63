"""A job's progress in its RQ job's `meta` too, so RQ dashboard shows what our record says.

Written where our record's progress or message is written (a training's throttled progress, the
job's end), as one HSET of the RQ job hash's `meta` field in the job's serializer (RQ's JSON
one here): what `Job.save_meta` does, which is untyped. No other field of RQ's hash is touched,
and the loop pays one round trip per throttled update at most.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from rq import get_current_job
from rq.job import Job


class RQProgressMeta(TypedDict):
    """What the dashboard's job page shows under "meta": our record's fraction and message and,
    for a training, where it stands."""

    message: str
    progress: NotRequired[float]
    step: NotRequired[int]
    total_steps: NotRequired[int]
    loss: NotRequired[float]
    tokens_per_second: NotRequired[float]


def show_in_rq(job_id: str, meta: RQProgressMeta) -> None:
    """Merges `meta` into the running RQ job's. Outside that job (a job function called
    directly, or the maintenance thread ending another job's record) nothing is written."""
    job = get_current_job()
    if job is None or job.id != job_id:
        return
    job.meta.update(meta)
    job.connection.hset(Job.key_for(job.id), "meta", job.serializer.dumps(job.meta))
