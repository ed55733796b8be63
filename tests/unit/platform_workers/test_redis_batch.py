"""PipelineBatch: commands of one loop turn share a pipeline; each gets its own reply or error."""

import asyncio

import fakeredis
import pytest
from redis.asyncio.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from platform_workers.redis_batch import PipelineBatch

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingRedis(fakeredis.FakeAsyncRedis):
    """Counts the pipelines it hands out (each is one round trip)."""

    pipelines = 0

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        CountingRedis.pipelines += 1
        return super().pipeline(transaction=transaction, shard_hint=shard_hint)


async def test_commands_of_one_turn_share_one_pipeline_and_get_their_own_replies() -> None:
    redis = CountingRedis()
    await redis.set("a", "1")
    await redis.set("b", "2")
    batch = PipelineBatch(redis)
    CountingRedis.pipelines = 0
    replies = await asyncio.gather(
        batch.run(lambda pipe: pipe.get("a")),
        batch.run(lambda pipe: pipe.get("b")),
        batch.run(lambda pipe: pipe.get("missing")),
    )
    assert list(replies) == [b"1", b"2", None]
    assert CountingRedis.pipelines == 1


async def test_commands_that_arrive_while_a_pipeline_is_out_leave_together_after_it() -> None:
    redis = CountingRedis()
    batch = PipelineBatch(redis)
    CountingRedis.pipelines = 0
    first = asyncio.ensure_future(batch.run(lambda pipe: pipe.incr("n")))
    await asyncio.sleep(0)  # the first pipeline is on its way
    later = [asyncio.ensure_future(batch.run(lambda pipe: pipe.incr("n"))) for _ in range(3)]
    assert await first == 1
    assert {await reply for reply in later} == {2, 3, 4}
    assert CountingRedis.pipelines == 2
    assert await batch.run(lambda pipe: pipe.get("n")) == b"4"  # idle again: leaves at once


async def test_a_failing_command_fails_alone() -> None:
    redis = fakeredis.FakeAsyncRedis()
    await redis.set("text", "not a hash")
    batch = PipelineBatch(redis)
    wrong, fine = await asyncio.gather(
        batch.run(lambda pipe: pipe.hgetall("text")),
        batch.run(lambda pipe: pipe.get("text")),
        return_exceptions=True,
    )
    assert isinstance(wrong, ResponseError) and "WRONGTYPE" in str(wrong)
    assert fine == b"not a hash"


async def test_an_unreachable_redis_fails_every_command_of_the_batch() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    batch = PipelineBatch(fakeredis.FakeAsyncRedis(server=server))
    replies = await asyncio.gather(
        batch.run(lambda pipe: pipe.get("a")),
        batch.run(lambda pipe: pipe.get("b")),
        return_exceptions=True,
    )
    assert all(isinstance(reply, RedisConnectionError) for reply in replies)
    server.connected = True
    assert await batch.run(lambda pipe: pipe.get("a")) is None  # the batch recovers


async def test_a_cancelled_request_does_not_stop_the_others_replies() -> None:
    redis = fakeredis.FakeAsyncRedis()
    batch = PipelineBatch(redis)
    gone = asyncio.ensure_future(batch.run(lambda pipe: pipe.incr("n")))
    kept = asyncio.ensure_future(batch.run(lambda pipe: pipe.incr("n")))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == 2  # the cancelled one's command was sent all the same
    assert gone.cancelled()


async def test_a_failure_reaches_no_cancelled_request() -> None:
    server = fakeredis.FakeServer()
    server.connected = False
    batch = PipelineBatch(fakeredis.FakeAsyncRedis(server=server))
    gone = asyncio.ensure_future(batch.run(lambda pipe: pipe.get("a")))
    kept = asyncio.ensure_future(batch.run(lambda pipe: pipe.get("a")))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(RedisConnectionError):
        await kept
    assert gone.cancelled()
