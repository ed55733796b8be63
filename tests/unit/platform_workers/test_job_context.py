"""JobContext: events reach subscribers and the stream alike; Redis is touched on a budget."""

from datetime import UTC, datetime

import fakeredis
import pytest
from redis.client import PubSub
from tests.support.event_times import unstamped

from platform_core.job_events import decode_job_event
from platform_core.json_types import PayloadError
from platform_core.trainer_metrics_events import (
    TrainerMetricsEventV1,
    decode_trainer_metrics_event,
    make_completed_metrics_event,
    make_config_event,
    make_progress_metrics_event,
)
from platform_workers.event_stream import read_events
from platform_workers.job_context import JobContext
from platform_workers.keys import cancel_key, record_key
from platform_workers.redis_conn import RedisClient

STREAM = "trainer:events:job-1"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def client() -> RedisClient:
    return fakeredis.FakeRedis()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def subscriber(client: RedisClient) -> PubSub:
    pubsub = PubSub(client.connection_pool)
    pubsub.subscribe("trainer:events")
    return pubsub


def _context(client: RedisClient, clock: FakeClock, **limits: float) -> JobContext:
    return JobContext(
        client,
        domain="trainer",
        job_id="job-1",
        user_id=7,
        queue="train",
        progress_min_interval_s=limits.get("progress", 1.0),
        cancel_poll_interval_s=limits.get("cancel", 0.5),
        heartbeat_interval_s=limits.get("heartbeat", 5.0),
        clock=clock,
    )


def _received(subscriber: PubSub) -> list[str]:
    """Drains every message delivered to the subscriber so far (skipping the confirmation)."""
    payloads: list[str] = []
    while (message := subscriber.get_message(timeout=0.01)) is not None:
        if message["type"] == "subscribe":
            continue
        assert message["type"] == "message"
        assert isinstance(message["data"], bytes)
        payloads.append(message["data"].decode())
    return payloads


def _stream(client: RedisClient) -> list[tuple[str, str]]:
    return read_events(client, "trainer", "job-1", count=10_000)


def test_publish_reaches_subscribers_and_the_stream_in_order(
    client: RedisClient, clock: FakeClock, subscriber: PubSub
) -> None:
    context = _context(client, clock)
    payloads = ['{"n":1}', '{"n":2}', '{"n":3}']
    ids = [context.publish(payload) for payload in payloads]
    assert _received(subscriber) == payloads
    assert _stream(client) == list(zip(ids, payloads, strict=True))


def test_the_stream_expires(client: RedisClient, clock: FakeClock) -> None:
    context = JobContext(
        client, domain="trainer", job_id="job-1", user_id=7, queue="train", stream_ttl_s=60
    )
    context.publish("{}")
    assert 0 < client.ttl(STREAM) <= 60


def test_the_stream_is_trimmed_to_about_maxlen(client: RedisClient) -> None:
    context = JobContext(
        client, domain="trainer", job_id="job-1", user_id=7, queue="train", stream_maxlen=50
    )
    ids = [context.publish(f'{{"n":{n}}}') for n in range(300)]
    kept = _stream(client)
    # Approximate trimming drops whole stream nodes (100 entries by default): a bounded stream
    # that keeps the newest entries and lost the oldest.
    assert 50 <= len(kept) <= 50 + 100
    assert [entry_id for entry_id, _ in kept] == ids[-len(kept) :]


def test_lifecycle_events_decode_as_published(
    client: RedisClient, clock: FakeClock, subscriber: PubSub
) -> None:
    context = _context(client, clock)
    context.publish_started()
    assert context.publish_progress(0.5, "halfway", {"step": 10})
    context.publish_completed("run-1", 1234)
    context.publish_failed("user", "CORPUS_EMPTY", "the corpus is empty")
    expected: list[dict[str, object]] = [
        {"type": "trainer.job.started.v1", "job_id": "job-1", "user_id": 7, "queue": "train"},
        {
            "type": "trainer.job.progress.v1",
            "job_id": "job-1",
            "user_id": 7,
            "progress": 0.5,
            "message": "halfway",
            "payload": {"step": 10},
        },
        {
            "type": "trainer.job.completed.v1",
            "job_id": "job-1",
            "user_id": 7,
            "result_id": "run-1",
            "result_bytes": 1234,
        },
        {
            "type": "trainer.job.failed.v1",
            "job_id": "job-1",
            "user_id": 7,
            "error_kind": "user",
            "code": "CORPUS_EMPTY",
            "message": "the corpus is empty",
        },
    ]
    received = _received(subscriber)
    assert [unstamped(decode_job_event(payload)) for payload in received] == expected
    assert [event for _, event in _stream(client)] == received


def test_metrics_events_share_the_channel_and_stream(
    client: RedisClient, clock: FakeClock, subscriber: PubSub
) -> None:
    context = _context(client, clock)
    events: list[TrainerMetricsEventV1] = [
        make_config_event(
            job_id="job-1",
            user_id=7,
            model_family="char_lstm",
            model_size="tiny",
            total_epochs=1,
            queue="train",
        ),
        make_progress_metrics_event(
            job_id="job-1", user_id=7, epoch=0, total_epochs=1, step=5, loss=2.5
        ),
        make_completed_metrics_event(
            job_id="job-1", user_id=7, loss=2.0, perplexity=7.39, artifact_path="/runs/run-1"
        ),
    ]
    ids = [context.publish_metrics(event) for event in events]
    received = _received(subscriber)
    assert [decode_trainer_metrics_event(payload) for payload in received] == events
    assert _stream(client) == list(zip(ids, received, strict=True))


def test_progress_is_throttled_by_time_and_force_bypasses(
    client: RedisClient, clock: FakeClock, subscriber: PubSub
) -> None:
    context = _context(client, clock, progress=1.0)
    assert context.publish_progress(0.1, "a")
    clock.advance(0.4)
    assert not context.publish_progress(0.2, "b")
    assert context.publish_progress(0.3, "c", force=True)
    clock.advance(0.9)
    assert not context.publish_progress(0.4, "d")
    clock.advance(0.1)
    assert context.publish_progress(0.5, "e")
    messages = [decode_job_event(payload) for payload in _received(subscriber)]
    assert [event.get("message") for event in messages] == ["a", "c", "e"]
    assert len(_stream(client)) == 3


def test_an_invalid_progress_is_refused_without_publishing(
    client: RedisClient, clock: FakeClock
) -> None:
    context = _context(client, clock)
    with pytest.raises(PayloadError, match="progress"):
        context.publish_progress(1.5, "too far")
    assert _stream(client) == []
    assert context.publish_progress(1.0, "done")


def _heartbeat_at(client: RedisClient) -> bytes | str | None:
    return client.hget(record_key("trainer", "job-1"), "heartbeat_at")


def test_heartbeat_writes_at_most_once_per_interval(client: RedisClient, clock: FakeClock) -> None:
    context = _context(client, clock, heartbeat=5.0)
    start = datetime(2026, 11, 3, 12, 0, 0, 250_000, tzinfo=UTC).timestamp()
    context.heartbeat(start)
    assert _heartbeat_at(client) == b"2026-11-03T12:00:00.250+00:00"
    clock.advance(4.9)
    context.heartbeat(start + 4.9)
    assert _heartbeat_at(client) == b"2026-11-03T12:00:00.250+00:00"
    clock.advance(0.1)
    context.heartbeat(start + 5.0)
    assert _heartbeat_at(client) == b"2026-11-03T12:00:05.250+00:00"


def test_cancelled_polls_redis_at_most_once_per_interval(
    client: RedisClient, clock: FakeClock
) -> None:
    context = _context(client, clock, cancel=0.5)
    assert not context.cancelled()
    client.set(cancel_key("trainer", "job-1"), b"1")
    clock.advance(0.49)
    assert not context.cancelled()  # the flag is there, but the last poll is too recent
    clock.advance(0.01)
    assert context.cancelled()


def test_cancelled_stays_true_without_asking_redis_again(
    client: RedisClient, clock: FakeClock
) -> None:
    context = _context(client, clock)
    client.set(cancel_key("trainer", "job-1"), b"1")
    assert context.cancelled()
    client.delete(cancel_key("trainer", "job-1"))
    clock.advance(60.0)
    assert context.cancelled()


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"domain": ""}, "domain"),
        ({"domain": "a:b"}, "domain"),
        ({"stream_maxlen": 0}, "stream_maxlen"),
        ({"stream_ttl_s": 0}, "stream_ttl_s"),
        ({"progress_min_interval_s": -1.0}, "intervals"),
        ({"cancel_poll_interval_s": -0.1}, "intervals"),
        ({"heartbeat_interval_s": -5.0}, "intervals"),
    ],
)
def test_constructor_refuses_bad_settings(
    client: RedisClient, options: dict[str, str | int | float], match: str
) -> None:
    settings: dict[str, str | int | float] = {"domain": "trainer", **options}
    domain = settings.pop("domain")
    assert isinstance(domain, str)
    with pytest.raises(ValueError, match=match):
        JobContext(
            client,
            domain=domain,
            job_id="job-1",
            user_id=7,
            queue="train",
            stream_maxlen=int(settings.get("stream_maxlen", 10)),
            stream_ttl_s=int(settings.get("stream_ttl_s", 10)),
            progress_min_interval_s=float(settings.get("progress_min_interval_s", 1.0)),
            cancel_poll_interval_s=float(settings.get("cancel_poll_interval_s", 1.0)),
            heartbeat_interval_s=float(settings.get("heartbeat_interval_s", 1.0)),
        )
