"""`GET /v1/jobs/{job_id}/events`: the job's event stream as Server-Sent Events.

Replays the job's Redis stream after `Last-Event-ID` (or from its start), then follows it live
and ends after the terminal event. Each follower is an async generator on the event loop: it
reads with a non-blocking XRANGE and sleeps until the app's EventHub wakes it (a pub/sub message
for its job) or its poll timer fires, so a thousand followers hold no thread and share a few
Redis connections. A Redis error or the hub closing (shutdown) ends the stream; the client
resumes with `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisError

from model_trainer.api import ApiContext
from model_trainer.api.event_hub import EventHub, FollowTiming
from model_trainer.api.openapi import refusals
from model_trainer.api.routes.jobs import owned_job
from model_trainer.api.schemas import JobId
from model_trainer.contracts.jobs import DOMAIN, TERMINAL_STATUSES
from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.storage.api_keys import Principal
from platform_core.job_events import TERMINAL_JOB_EVENT_TYPES
from platform_core.json_types import PayloadError, load_json_object, require_str
from platform_workers.async_redis import AsyncRedisClient
from platform_workers.event_stream import read_events_async
from platform_workers.keys import record_key
from platform_workers.redis_conn import as_text

logger = logging.getLogger(__name__)

READ_COUNT = 100
STATUS_FIELD = "status"  # the job record's status field (storage/job_store.py)
KEEPALIVE = ": keepalive\n\n"
_STREAM_ID = re.compile(r"[0-9]+(-[0-9]+)?")
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_SCHEMA = {
    "type": "string",
    "examples": [
        'id: 1764902523456-0\nevent: trainer.job.progress.v1\ndata: {"type": '
        '"trainer.job.progress.v1", "job_id": "6f1c", "progress": 0.5, ...}\n\n'
    ],
}


def event_type(event_json: str) -> str:
    """The event's `type`, used as the SSE event name ("message" for an undecodable entry)."""
    try:
        return require_str(load_json_object(event_json), "type")
    except PayloadError:
        return "message"


def sse_frame(entry_id: str, name: str, event_json: str) -> str:
    data = "".join(f"data: {line}\n" for line in event_json.splitlines())
    return f"id: {entry_id}\nevent: {name}\n{data}\n"


class _Pace:
    """When a follower last sent something, and since when its job has looked ended."""

    def __init__(self, timing: FollowTiming) -> None:
        self._timing = timing
        self._silent_since = time.monotonic()
        self._ended_since: float | None = None

    def over(self, now: float, *, sent: bool, ended: bool) -> bool:
        """True once the job has looked ended for the grace period with nothing new: its
        terminal event follows the record's change by a moment, or its stream expired."""
        if sent:
            self._silent_since, self._ended_since = now, None
        elif ended and self._ended_since is None:
            self._ended_since = now
        grace = self._timing["ended_grace_s"]
        return self._ended_since is not None and now - self._ended_since >= grace

    def keepalive_due(self, now: float) -> bool:
        if now - self._silent_since < self._timing["keepalive_s"]:
            return False
        self._silent_since = now
        return True

    def wait_s(self, now: float) -> float:
        """The poll interval, jittered so followers that arrived together do not read
        together, and cut short by a keepalive or the end of the ended grace."""
        waits = [
            self._timing["poll_s"] * random.uniform(0.5, 1.5),
            self._timing["keepalive_s"] - (now - self._silent_since),
        ]
        if self._ended_since is not None:
            waits.append(self._timing["ended_grace_s"] - (now - self._ended_since))
        return max(0.0, min(waits))


async def _read(
    redis: AsyncRedisClient, job_id: str, after: str
) -> tuple[bool, list[tuple[str, str]]]:
    """Whether the job looked ended (or gone) just before its entries after `after` were read."""
    status = await redis.hget(record_key(DOMAIN, job_id), STATUS_FIELD)
    ended = status is None or as_text(status) in TERMINAL_STATUSES
    return ended, await read_events_async(redis, DOMAIN, job_id, after=after, count=READ_COUNT)


async def _doze(wake: asyncio.Event, seconds: float) -> None:
    """Until the hub wakes this follower or `seconds` pass (a timer wakes it then).

    No cancellation is involved: `asyncio.timeout` and `wait_for` turn a cancellation into
    TimeoutError, which Python 3.11 gets wrong under a trace function (coverage; CPython
    gh-106749): the stray CancelledError ended the response while its connection stayed open,
    so a client waited forever on a stream that was silent for one poll interval."""
    timer = asyncio.get_running_loop().call_later(seconds, wake.set)
    try:
        await wake.wait()
    finally:
        timer.cancel()


async def follow_events(hub: EventHub, job_id: str, after: str) -> AsyncIterator[str]:
    """SSE frames for every entry after `after`, until the terminal event (or the job ended
    without one), the hub closing or a Redis error; keepalive comments fill the silence."""
    pace = _Pace(hub.timing)
    with hub.watch(job_id) as wake:
        while not hub.closed:
            wake.clear()
            try:
                ended, entries = await _read(hub.redis, job_id, after)
            except RedisError as error:
                logger.warning("events of job %s: %s; ending the stream", job_id, error)
                return
            for entry_id, event_json in entries:
                after, name = entry_id, event_type(event_json)
                yield sse_frame(entry_id, name, event_json)
                if name in TERMINAL_JOB_EVENT_TYPES:
                    return
            now = time.monotonic()
            if pace.over(now, sent=bool(entries), ended=ended):
                return
            if len(entries) == READ_COUNT:
                continue
            if pace.keepalive_due(now):
                yield KEEPALIVE
            await _doze(wake, pace.wait_s(now))


def checked_stream_id(last_event_id: str) -> str:
    if not _STREAM_ID.fullmatch(last_event_id):
        raise ModelTrainerError(
            "INVALID_CONFIG",
            "Last-Event-ID must be a stream entry id like 1700000000000-0, "
            f"got {quoted(last_event_id)}",
            details={"field": "Last-Event-ID"},
        )
    return last_event_id


def build_events_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["jobs"])
    key = Depends(ctx["caller"])

    @router.get(
        "/v1/jobs/{job_id}/events",
        response_class=StreamingResponse,
        responses={
            200: {
                "content": {"text/event-stream": {"schema": SSE_SCHEMA}},
                "description": "Server-Sent Events: `id` (pass it back as Last-Event-ID), "
                "`event` (the event's type) and `data` (the event as JSON) per event, "
                "`: keepalive` comments in silences; the stream ends after the terminal event",
            },
            **refusals("JOB_NOT_FOUND"),
        },
    )
    def follow_job_events(
        job_id: JobId,
        last_event_id: Annotated[
            str | None,
            Header(
                alias="Last-Event-ID",
                description="resume after this event's id (what the last frame's `id` said)",
                examples=["1764902523456-0"],
            ),
        ] = None,
        caller: Principal = key,
    ) -> StreamingResponse:
        """The job's lifecycle and metrics events, replayed from its start (or after
        Last-Event-ID), then live until its terminal event.

        A plain `def`: the ownership check reads Redis synchronously in the thread pool; the
        stream itself then runs on the event loop."""
        owned_job(ctx, caller, job_id)
        after = "0-0" if last_event_id is None else checked_stream_id(last_event_id)
        frames = follow_events(ctx["events"], job_id, after)
        return StreamingResponse(frames, media_type="text/event-stream", headers=_SSE_HEADERS)

    return router
