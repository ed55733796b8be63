"""Per-job event streams: the replayable copy of every event a domain publishes.

A worker publishes each event on the domain's pub/sub channel and appends it to the job's
stream (both named in ``platform_workers.keys``) under the field ``event``. Pub/sub is
fire-and-forget; the stream lets a reader that was away (the API's Server-Sent Events
endpoint, honouring ``Last-Event-ID``) replay what it missed and then follow new entries.
``read_events_async`` is the same replay for readers on an event loop, which never block.
"""

import re

from redis.typing import StreamRangeResponse

from platform_core.json_types import PayloadError
from platform_workers.async_redis import AsyncRedisClient
from platform_workers.keys import event_stream_key
from platform_workers.redis_conn import RedisClient, as_text

EVENT_FIELD = b"event"
_STREAM_ID = re.compile(r"[0-9]+(-[0-9]+)?")


def read_events(
    redis: RedisClient,
    domain: str,
    job_id: str,
    *,
    after: str = "0-0",
    block_ms: int | None = None,
    count: int = 100,
) -> list[tuple[str, str]]:
    """Returns up to `count` (entry_id, event_json) pairs strictly after `after`, oldest first.

    With `block_ms` the call waits up to that long for a first new entry (XREAD BLOCK), so a
    follower does not poll; without it the call answers at once (exclusive XRANGE).
    """
    key = _stream_key(domain, job_id, after)
    if block_ms is None:
        return _pairs(redis.xrange(key, min=f"({after}", count=count))
    reply = redis.xread({key: after}, count=count, block=block_ms)
    if isinstance(reply, dict):
        raise TypeError("read_events parses RESP2 replies; build the client with redis_from_url")
    return _pairs(reply[0][1]) if reply else []


def read_latest_events(
    redis: RedisClient, domain: str, job_id: str, *, count: int
) -> list[tuple[str, str]]:
    """The job's newest `count` (entry_id, event_json) pairs, newest first."""
    return _pairs(redis.xrevrange(event_stream_key(domain, job_id), count=count))


async def read_events_async(
    redis: AsyncRedisClient, domain: str, job_id: str, *, after: str = "0-0", count: int = 100
) -> list[tuple[str, str]]:
    """Like `read_events` without `block_ms`: up to `count` pairs strictly after `after`."""
    key = _stream_key(domain, job_id, after)
    return _pairs(await redis.xrange(key, min=f"({after}", count=count))


def _stream_key(domain: str, job_id: str, after: str) -> str:
    """The job's stream key, once `after` is known to be a stream id (never `$` or a range)."""
    if _STREAM_ID.fullmatch(after) is None:
        raise PayloadError("after", f"field 'after' must be a stream id like '0-0', got {after!r}")
    return event_stream_key(domain, job_id)


def _pairs(entries: StreamRangeResponse | None) -> list[tuple[str, str]]:
    """Turns raw stream entries into (entry_id, event_json) text pairs."""
    return [_pair(entry_id, fields) for entry_id, fields in entries or []]


def _pair(
    entry_id: bytes | str | None, fields: dict[bytes | str, bytes | str] | None
) -> tuple[str, str]:
    """Reads one entry's event, refusing an entry another writer left without one."""
    event = None if fields is None else fields.get(EVENT_FIELD)
    if entry_id is None or event is None:
        raise PayloadError("event", f"stream entry {entry_id!r} has no 'event' field")
    return as_text(entry_id), as_text(event)
