"""`GET /v1/jobs/{job_id}/events`: the job's event stream as Server-Sent Events.

Replays the job's Redis stream after `Last-Event-ID` (or from its start), then follows it live
and ends after the terminal event. A sync generator on purpose: StreamingResponse runs it in a
thread, where a blocking XREAD of at most BLOCK_MS keeps a disconnected client's thread short.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from model_trainer.api import ApiContext
from model_trainer.api.routes import ERROR_RESPONSES
from model_trainer.api.routes.jobs import owned_job
from model_trainer.contracts.jobs import DOMAIN, TERMINAL_STATUSES
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.job_store import JobStore
from platform_core.json_types import PayloadError, load_json_object, require_str
from platform_workers.event_stream import read_events
from platform_workers.redis_conn import RedisClient

TERMINAL_EVENTS = frozenset({"trainer.job.completed.v1", "trainer.job.failed.v1"})
BLOCK_MS = 1000
KEEPALIVE_S = 15.0
KEEPALIVE = ": keepalive\n\n"
_STREAM_ID = re.compile(r"[0-9]+(-[0-9]+)?")
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event_type(event_json: str) -> str:
    """The event's `type`, used as the SSE event name ("message" for an undecodable entry)."""
    try:
        return require_str(load_json_object(event_json), "type")
    except PayloadError:
        return "message"


def sse_frame(entry_id: str, name: str, event_json: str) -> str:
    data = "".join(f"data: {line}\n" for line in event_json.splitlines())
    return f"id: {entry_id}\nevent: {name}\n{data}\n"


def follow_events(
    redis: RedisClient,
    jobs: JobStore,
    job_id: str,
    after: str,
    *,
    block_ms: int = BLOCK_MS,
    keepalive_s: float = KEEPALIVE_S,
) -> Iterator[str]:
    """SSE frames for every entry after `after`, until the terminal event.

    The record is read before each blocking read: a job that had already ended a whole block
    earlier and still sent nothing (its stream expired) ends the response instead of hanging.
    """
    silent_since = time.monotonic()
    while True:
        record = jobs.get(job_id)
        ended = record is None or record["status"] in TERMINAL_STATUSES
        entries = read_events(redis, DOMAIN, job_id, after=after, block_ms=block_ms)
        for entry_id, event_json in entries:
            after = entry_id
            name = event_type(event_json)
            yield sse_frame(entry_id, name, event_json)
            if name in TERMINAL_EVENTS:
                return
        now = time.monotonic()
        if entries:
            silent_since = now
        elif ended:
            return
        elif now - silent_since >= keepalive_s:
            silent_since = now
            yield KEEPALIVE


def checked_stream_id(last_event_id: str) -> str:
    if not _STREAM_ID.fullmatch(last_event_id):
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"Last-Event-ID must be a stream entry id like 1700000000000-0, got {last_event_id!r}",
            details={"field": "Last-Event-ID"},
        )
    return last_event_id


def build_events_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(tags=["jobs"], responses=ERROR_RESPONSES)

    @router.get(
        "/v1/jobs/{job_id}/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "SSE frames"}},
    )
    def job_events(
        job_id: str,
        last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    ) -> StreamingResponse:
        owned_job(ctx, job_id)
        after = "0-0" if last_event_id is None else checked_stream_id(last_event_id)
        frames = follow_events(ctx["redis"], ctx["jobs"], job_id, after)
        return StreamingResponse(frames, media_type="text/event-stream", headers=_SSE_HEADERS)

    return router
