"""One pub/sub subscription per API process that wakes the SSE followers of a job.

Followers read the job's stream (the truth) and sleep between reads; a pub/sub message only
wakes the followers of the job it names, early. Every (re)subscription wakes every follower, so
messages lost while the connection was down cost nothing, and followers also poll on a timer,
so a silent subscription delays an event by at most one poll. Closing the hub ends every
follower: uvicorn waits for open responses before its lifespan shutdown, so the followers must
end first for the API to stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TypedDict

from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from platform_core.json_types import PayloadError, load_json_object, require_str
from platform_workers.async_redis import AsyncRedisClient

logger = logging.getLogger(__name__)

LISTEN_TIMEOUT_S = 1.0


class FollowTiming(TypedDict):
    """How followers pace themselves (seconds)."""

    poll_s: float  # mean wait between two reads when nothing wakes the follower
    keepalive_s: float  # a comment after this much silence keeps proxies from closing
    ended_grace_s: float  # how long a job must look ended, with nothing new, to end the stream


class Backoff(TypedDict):
    """Delays between resubscription attempts while Redis is away (seconds)."""

    first_s: float
    max_s: float


FOLLOW_TIMING: FollowTiming = {"poll_s": 5.0, "keepalive_s": 15.0, "ended_grace_s": 1.0}
BACKOFF: Backoff = {"first_s": 0.1, "max_s": 5.0}


class EventHub:
    """Owned by the app: started and stopped by its lifespan, closed early on SIGTERM."""

    def __init__(
        self,
        redis: AsyncRedisClient,
        channel: str,
        *,
        timing: FollowTiming = FOLLOW_TIMING,
        backoff: Backoff = BACKOFF,
    ) -> None:
        self.redis = redis
        self.timing = timing
        self.subscriptions = 0
        self._channel = channel
        self._backoff = backoff
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        """Subscribes in the background: the API starts even while Redis is away."""
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._listen(), name="event-hub")

    def close_soon(self) -> None:
        """`close` from a signal handler or another thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close)

    def close(self) -> None:
        """Ends every follower's stream now, and every later one at once."""
        self._closed = True
        self._wake_all()

    async def stop(self) -> None:
        """Closes, stops listening and releases the connections."""
        self.close()
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        await self.redis.aclose()

    @contextmanager
    def watch(self, job_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever something may have happened to the job (or the hub closed)."""
        wake = asyncio.Event()
        if self._closed:
            wake.set()
        self._waiters.setdefault(job_id, set()).add(wake)
        try:
            yield wake
        finally:
            waiters = self._waiters[job_id]
            waiters.discard(wake)
            if not waiters:
                del self._waiters[job_id]

    def followers(self) -> int:
        return sum(len(waiters) for waiters in self._waiters.values())

    async def _listen(self) -> None:
        """Reads the channel until cancelled, then closes the subscription."""
        pubsub = self.redis.pubsub()
        async with pubsub:
            await self._read_forever(pubsub)

    async def _read_forever(self, pubsub: PubSub) -> None:
        """Dispatches every reply; a lost connection is retried with capped backoff (redis-py
        resubscribes by itself when it reconnects)."""
        subscribed = False
        delay = self._backoff["first_s"]
        while True:
            try:
                if not subscribed:
                    await pubsub.subscribe(self._channel)
                    subscribed = True
                message = await pubsub.get_message(timeout=LISTEN_TIMEOUT_S)
            except (RedisError, OSError) as error:
                logger.warning("event hub: %s; resubscribing in %.2f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff["max_s"])
                continue
            delay = self._backoff["first_s"]
            self.dispatch(message)

    def dispatch(self, message: object) -> None:
        """Handles one pub/sub reply: a (re)subscription wakes everyone (messages may have been
        lost while unsubscribed); an event wakes its job's followers; anything else, nobody."""
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "subscribe":
            self.subscriptions += 1
            self._wake_all()
        elif kind == "message" and self._waiters:
            job_id = _job_of(message.get("data"))
            for wake in self._waiters.get(job_id or "", ()):
                wake.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for wake in waiters:
                wake.set()


def _job_of(data: object) -> str | None:
    """The `job_id` an event names; None for anything else on the channel."""
    if not isinstance(data, bytes | str):
        return None
    try:
        return require_str(load_json_object(data), "job_id")
    except PayloadError:
        return None
