"""Reading a job's event stream: replay strictly after an id, then follow with a blocking read
(or, on an event loop, with non-blocking reads)."""

import fakeredis
import pytest

from platform_core.job_events import decode_job_event, encode_job_event, make_started_event
from platform_core.json_types import PayloadError
from platform_workers.event_stream import EVENT_FIELD, read_events, read_events_async
from platform_workers.redis_conn import RedisClient, as_text

KEY = "trainer:events:job-1"


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def client(server: fakeredis.FakeServer) -> RedisClient:
    return fakeredis.FakeRedis(server=server)


def _append(client: RedisClient, events: list[str]) -> list[str]:
    """Writes events the way JobContext does and returns their entry ids."""
    return [as_text(client.xadd(KEY, {EVENT_FIELD: event})) for event in events]


def test_an_absent_stream_reads_as_empty(client: RedisClient) -> None:
    assert read_events(client, "trainer", "job-1") == []
    assert read_events(client, "trainer", "job-1", block_ms=5) == []


def test_replay_returns_every_event_in_order(client: RedisClient) -> None:
    ts = "2026-12-05T01:02:03.456+00:00"
    event = encode_job_event(make_started_event(job_id="job-1", user_id=7, queue="train", ts=ts))
    ids = _append(client, [event, '{"n":2}', '{"n":3}'])
    pairs = read_events(client, "trainer", "job-1")
    assert pairs == list(zip(ids, [event, '{"n":2}', '{"n":3}'], strict=True))
    assert decode_job_event(pairs[0][1]) == {
        "type": "trainer.job.started.v1",
        "job_id": "job-1",
        "user_id": 7,
        "queue": "train",
        "ts": ts,
    }


@pytest.mark.parametrize("block_ms", [None, 5])
def test_reads_start_strictly_after_the_given_id(client: RedisClient, block_ms: int | None) -> None:
    ids = _append(client, ['{"n":1}', '{"n":2}', '{"n":3}'])
    after_first = read_events(client, "trainer", "job-1", after=ids[0], block_ms=block_ms)
    assert [entry_id for entry_id, _ in after_first] == ids[1:]
    assert read_events(client, "trainer", "job-1", after=ids[2], block_ms=block_ms) == []


@pytest.mark.parametrize("block_ms", [None, 5])
def test_count_bounds_one_read(client: RedisClient, block_ms: int | None) -> None:
    ids = _append(client, [f'{{"n":{n}}}' for n in range(5)])
    first = read_events(client, "trainer", "job-1", count=2, block_ms=block_ms)
    rest = read_events(client, "trainer", "job-1", after=first[-1][0], block_ms=block_ms)
    assert [entry_id for entry_id, _ in first + rest] == ids


def test_a_millisecond_id_is_accepted(client: RedisClient) -> None:
    ids = _append(client, ['{"n":1}'])
    milliseconds = ids[0].split("-")[0]
    assert read_events(client, "trainer", "job-1", after=str(int(milliseconds) - 1)) == [
        (ids[0], '{"n":1}')
    ]


@pytest.mark.parametrize("after", ["", "abc", "1-", "-1", "1-2-3", "$", "(1-0"])
def test_a_malformed_id_names_the_after_field(client: RedisClient, after: str) -> None:
    with pytest.raises(PayloadError, match="stream id") as caught:
        read_events(client, "trainer", "job-1", after=after)
    assert caught.value.field == "after"


def test_an_entry_without_an_event_field_is_refused(client: RedisClient) -> None:
    client.xadd(KEY, {b"other": b"x"})
    with pytest.raises(PayloadError, match="no 'event' field") as caught:
        read_events(client, "trainer", "job-1")
    assert caught.value.field == "event"


def test_a_resp3_client_is_refused_for_blocking_reads() -> None:
    client = fakeredis.FakeRedis(protocol=3)
    client.xadd(KEY, {EVENT_FIELD: b"{}"})
    with pytest.raises(TypeError, match="RESP2"):
        read_events(client, "trainer", "job-1", block_ms=5)


@pytest.mark.anyio
async def test_the_async_read_replays_strictly_after_an_id(
    client: RedisClient, server: fakeredis.FakeServer
) -> None:
    ids = _append(client, ['{"n":1}', '{"n":2}', '{"n":3}'])
    reader = fakeredis.FakeAsyncRedis(server=server)
    assert await read_events_async(reader, "trainer", "job-1") == [
        (ids[0], '{"n":1}'),
        (ids[1], '{"n":2}'),
        (ids[2], '{"n":3}'),
    ]
    after_first = await read_events_async(reader, "trainer", "job-1", after=ids[0], count=1)
    assert after_first == [(ids[1], '{"n":2}')]
    assert await read_events_async(reader, "trainer", "job-2") == []
    with pytest.raises(PayloadError, match="stream id"):
        await read_events_async(reader, "trainer", "job-1", after="$")
