"""Group commit for Redis commands issued on one event loop: one pipeline per loop turn.

A request on the API's hot path (a key check, a submission) adds its command to the batch of
the current loop turn and awaits its reply; the batch leaves as one pipeline (one write, one
read) once the loop has run everything that was ready, or, while a pipeline is in flight, as
soon as it returns. Under load the concurrent requests share one round trip, and the round trip
is what costs most on a busy machine (a syscall and a wake-up of redis-server each); a lone
command leaves in the same turn, waiting for nothing. Commands are independent (no MULTI):
each gets its own reply or its own error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio.client import Pipeline

from platform_workers.async_redis import AsyncRedisClient

Command = Callable[[Pipeline], object]


class PipelineBatch:
    """Owned by one event loop (the API's): `run` a command, get its reply. One pipeline is in
    flight at a time: the commands that arrive meanwhile leave together as soon as it returns,
    so the busier the API, the fuller each round trip."""

    def __init__(self, redis: AsyncRedisClient) -> None:
        self._redis = redis
        self._pending: list[tuple[Command, asyncio.Future[object]]] = []
        self._busy = False
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, command: Command) -> object:
        """The reply to the command `command(pipe)` queues on the batch's pipeline."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._pending.append((command, future))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if self._pending:
            self._flush()
        else:
            self._busy = False

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
