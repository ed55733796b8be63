"""Group commit for Redis commands issued on one event loop: one pipeline per loop turn.

A request on the API's hot path (a key check, a submission) adds its command to the batch of
the current loop turn and awaits its reply; the batch leaves as one pipeline (one write, one
read) once the loop has run everything that was ready. Under load the concurrent requests of a
turn share one round trip, and the round trip is what costs most on a busy machine (a syscall
and a wake-up of redis-server each); a lone command leaves in the same turn, waiting for
nothing. Commands are independent (no MULTI): each gets its own reply or its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio.client import Pipeline

from platform_workers.async_redis import AsyncRedisClient

Command = Callable[[Pipeline], object]


class PipelineBatch:
    """Owned by one event loop (the API's): `run` a command, get its reply."""

    def __init__(self, redis: AsyncRedisClient) -> None:
        self._redis = redis
        self._pending: list[tuple[Command, asyncio.Future[object]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, command: Command) -> object:
        """The reply to the command `command(pipe)` queues on the batch's pipeline."""
        loop = asyncio.get_running_loop()
        if not self._pending:
            loop.call_soon(self._flush)
        future: asyncio.Future[object] = loop.create_future()
        self._pending.append((command, future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Command, asyncio.Future[object]]]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for command, _ in batch:
                    command(pipe)
                replies: list[object] = await pipe.execute(raise_on_error=False)
        except Exception as error:  # Redis unreachable, timed out: every request hears of it
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its request was cancelled meanwhile
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)
