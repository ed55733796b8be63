"""Reads awaited in the API's batch (a key check, an owner, a record) refuse a reply of the
wrong type."""

import fakeredis
import pytest

from model_trainer.storage.api_keys import authenticate_async, create_key
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.owners import owner_of_async
from platform_workers.redis_batch import Command, PipelineBatch

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Replying(PipelineBatch):
    """A batch whose every command gets the same reply."""

    def __init__(self, reply: object) -> None:
        super().__init__(fakeredis.FakeAsyncRedis())
        self.reply = reply

    async def run(self, command: Command) -> object:
        return self.reply


async def test_a_key_check_refuses_a_reply_that_is_not_a_hash() -> None:
    key = create_key(fakeredis.FakeRedis(), "alice")["key"]
    with pytest.raises(TypeError, match="HGETALL"):
        await authenticate_async(Replying([b"sha256"]), key)


async def test_an_owner_read_refuses_a_reply_that_is_not_an_id() -> None:
    with pytest.raises(TypeError, match="HGET"):
        await owner_of_async(Replying(7), "run", "r1")


async def test_an_owner_read_answers_the_owner_or_none() -> None:
    redis = fakeredis.FakeAsyncRedis()
    await redis.hset("trainer:owners:run", "r1", 7)
    batch = PipelineBatch(redis)
    assert await owner_of_async(batch, "run", "r1") == 7
    assert await owner_of_async(batch, "run", "r2") is None


async def test_a_record_read_refuses_a_reply_that_is_not_a_hash() -> None:
    with pytest.raises(TypeError, match="HGETALL"):
        await JobStore(fakeredis.FakeRedis()).get_async(Replying(b"queued"), "job-1")
