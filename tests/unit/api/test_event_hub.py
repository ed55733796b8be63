"""The event hub: one subscription that wakes the right followers, survives Redis going away,
and ends every follower when the API shuts down."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable

import fakeredis
import pytest

from model_trainer.api.event_hub import EventHub, FollowTiming
from platform_core.job_events import encode_job_event, make_started_event
from platform_workers.keys import events_channel

CHANNEL = events_channel("trainer")


def started(job_id: str) -> str:
    return encode_job_event(make_started_event(job_id=job_id, user_id=1, queue="train"))


async def eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def woken(wake: asyncio.Event, timeout: float = 1.0) -> bool:
    try:
        await asyncio.wait_for(wake.wait(), timeout)
    except TimeoutError:
        return False
    return True


@pytest.fixture
def timing() -> FollowTiming:
    return {"poll_s": 30.0, "keepalive_s": 30.0, "ended_grace_s": 30.0}


@pytest.mark.anyio
async def test_an_event_wakes_only_the_followers_of_its_job(
    hub: EventHub, redis: fakeredis.FakeRedis
) -> None:
    with hub.watch("a") as first, hub.watch("a") as second, hub.watch("b") as other:
        hub.start()
        await eventually(lambda: hub.subscriptions == 1)
        for wake in (first, second, other):
            wake.clear()
        redis.publish(CHANNEL, started("a"))
        assert await woken(first)
        assert await woken(second)
        assert not other.is_set()
        assert hub.followers() == 3
    assert hub.followers() == 0
    await hub.stop()


@pytest.mark.anyio
async def test_a_subscription_wakes_every_follower(hub: EventHub) -> None:
    with hub.watch("a") as first, hub.watch("b") as second:
        hub.start()
        assert await woken(first)
        assert await woken(second)
    assert hub.subscriptions == 1
    await hub.stop()


@pytest.mark.parametrize(
    "reply",
    [
        None,
        {"type": "pong", "data": b""},
        {"type": "message", "data": b"not json"},
        {"type": "message", "data": b'{"job_id": 5}'},
        {"type": "message", "data": None},
        {"type": "message", "data": started("b").encode()},
    ],
)
@pytest.mark.anyio
async def test_replies_that_name_no_followed_job_wake_nobody(hub: EventHub, reply: object) -> None:
    hub.dispatch(reply)  # nobody follows anything yet
    with hub.watch("a") as wake:
        hub.dispatch(reply)
        assert not wake.is_set()


@pytest.mark.anyio
async def test_the_hub_resubscribes_with_backoff_after_losing_redis(
    fake_server: fakeredis.FakeServer,
    redis: fakeredis.FakeRedis,
    timing: FollowTiming,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = EventHub(
        fakeredis.FakeAsyncRedis(server=fake_server),
        CHANNEL,
        timing=timing,
        backoff={"first_s": 0.01, "max_s": 0.04},
    )
    with hub.watch("a") as wake:
        hub.start()
        await eventually(lambda: hub.subscriptions == 1)
        fake_server.connected = False
        await eventually(lambda: caplog.text.count("resubscribing") >= 5)
        delays = re.findall(r"resubscribing in ([0-9.]+) s", caplog.text)
        assert delays[:5] == ["0.01", "0.02", "0.04", "0.04", "0.04"]
        wake.clear()
        fake_server.connected = True
        await eventually(lambda: hub.subscriptions >= 2)
        assert await woken(wake)
        wake.clear()
        redis.publish(CHANNEL, started("a"))
        assert await woken(wake)
    await hub.stop()


@pytest.mark.anyio
async def test_close_soon_from_another_thread_ends_followers(hub: EventHub) -> None:
    with hub.watch("a") as wake:
        hub.start()
        await eventually(lambda: hub.subscriptions == 1)
        wake.clear()
        closer = threading.Thread(target=hub.close_soon)
        closer.start()
        closer.join()
        assert await woken(wake)
        assert hub.closed
    await hub.stop()


def test_close_soon_before_the_hub_started_does_nothing(hub: EventHub) -> None:
    hub.close_soon()
    assert not hub.closed


@pytest.mark.anyio
async def test_stop_ends_followers_and_the_listener(hub: EventHub) -> None:
    with hub.watch("a") as wake:
        hub.start()
        await eventually(lambda: hub.subscriptions == 1)
        wake.clear()
        await hub.stop()
        assert wake.is_set()
    assert hub.closed
    assert [task for task in asyncio.all_tasks() if task.get_name() == "event-hub"] == []
    with hub.watch("b") as late:
        assert late.is_set()


@pytest.mark.anyio
async def test_a_hub_that_never_started_stops_cleanly(hub: EventHub) -> None:
    await hub.stop()
    assert hub.closed
    assert hub.subscriptions == 0
