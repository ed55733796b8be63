"""The scheduler's passes on fakeredis with a hand-moved clock: due schedules fire as ordinary
jobs of their owner, refusals are recorded, paused and deleted ones stop, missed slots coalesce
into one firing, two schedulers fire a slot once, and a Redis outage is waited out."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from rq import Queue
from rq.serializers import JSONSerializer
from tests.support.schedules import CREATED, schedule_record

from model_trainer.api import SubmitContext, job_requests
from model_trainer.api.submit import SubmittedJob
from model_trainer.contracts.jobs import JobOrigin
from model_trainer.scheduler.service import SYNC_S, ScheduleScheduler
from model_trainer.scheduler.timing import iso
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import CreatedKey, Principal, create_key, revoke_key
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.schedules import ScheduleRecord, ScheduleStore
from platform_core.json_types import JSONObject

START = datetime.fromisoformat(CREATED)
TRAIN: JSONObject = {"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "corpus.txt"}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def redis(server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=server)


@pytest.fixture
def ctx(settings: Settings, redis: fakeredis.FakeRedis, corpus_path: Path) -> SubmitContext:
    return {"settings": settings, "redis": redis, "jobs": JobStore(redis)}


@pytest.fixture
def key(redis: fakeredis.FakeRedis) -> CreatedKey:
    return create_key(redis, "alice")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def scheduler(ctx: SubmitContext, clock: Clock) -> ScheduleScheduler:
    return ScheduleScheduler(ctx, clock=clock)


@pytest.fixture
def store(redis: fakeredis.FakeRedis) -> ScheduleStore:
    return ScheduleStore(redis)


def add(store: ScheduleStore, key: CreatedKey, **fields: int | str) -> ScheduleRecord:
    interval = fields.get("interval_s")
    cron = fields.get("cron")
    last = fields.get("last_fired_at")
    record = schedule_record(
        request=TRAIN,
        key_id=key["key_id"],
        user_id=key["user_id"],
        interval_s=interval if isinstance(interval, int) else None,
        cron=cron if isinstance(cron, str) else None,
        last_fired_at=last if isinstance(last, str) else None,
    )
    return store.create(record, limit=100)


def test_a_due_schedule_fires_an_ordinary_job_of_its_owner_linked_to_it(
    *,
    scheduler: ScheduleScheduler,
    store: ScheduleStore,
    ctx: SubmitContext,
    key: CreatedKey,
    clock: Clock,
    redis: fakeredis.FakeRedis,
) -> None:
    record = add(store, key, interval_s=60)
    clock.advance(59)
    assert scheduler.enqueue_jobs() == []
    assert [job.name for job in scheduler.get_jobs()] == [record["schedule_id"]]
    clock.advance(1)
    fired = scheduler.enqueue_jobs()
    assert [job.name for job in fired] == [record["schedule_id"]]
    assert scheduler.enqueue_jobs() == []  # the same slot never fires twice

    [firing] = store.firings(record["schedule_id"])
    assert firing["scheduled_for"] == firing["fired_at"] == iso(START + timedelta(seconds=60))
    assert firing["error"] is None and firing["job_id"] is not None
    job = ctx["jobs"].get(firing["job_id"])
    assert job is not None
    assert (job["type"], job["status"], job["user_id"]) == ("train", "queued", key["user_id"])
    assert job["origin"] == {"kind": "schedule", "id": record["schedule_id"], "trial": None}
    queue = Queue("train", connection=redis, serializer=JSONSerializer)
    assert queue.job_ids == [firing["job_id"]]
    assert store.get(record["schedule_id"]) == {
        **record,
        "last_fired_at": firing["fired_at"],
        "fired": 1,
    }

    clock.advance(60)
    assert len(scheduler.enqueue_jobs()) == 1
    assert len(store.firings(record["schedule_id"])) == 2


def test_a_refused_firing_is_recorded_with_its_code(
    ctx: SubmitContext, store: ScheduleStore, key: CreatedKey, clock: Clock
) -> None:
    limits = {**ctx["settings"]["max_active_jobs"], "train": 1}
    tight: SubmitContext = {**ctx, "settings": {**ctx["settings"], "max_active_jobs": limits}}
    scheduler = ScheduleScheduler(tight, clock=clock)
    record = add(store, key, interval_s=60)
    for _ in range(2):
        clock.advance(60)
        scheduler.enqueue_jobs()
    refused, accepted = store.firings(record["schedule_id"])
    assert accepted["job_id"] is not None
    assert refused["job_id"] is None and refused["error"] is not None
    assert refused["error"]["code"] == "QUOTA_EXCEEDED"
    stored = store.get(record["schedule_id"])
    assert stored is not None and (stored["fired"], stored["refused"]) == (1, 1)


def test_a_firing_after_its_key_was_revoked_is_refused(
    scheduler: ScheduleScheduler,
    store: ScheduleStore,
    key: CreatedKey,
    clock: Clock,
    redis: fakeredis.FakeRedis,
) -> None:
    record = add(store, key, interval_s=60)
    revoke_key(redis, key["key_id"])
    clock.advance(60)
    scheduler.enqueue_jobs()
    [firing] = store.firings(record["schedule_id"])
    assert firing["error"] is not None and firing["error"]["code"] == "UNAUTHENTICATED"
    assert key["key_id"] in firing["error"]["message"]
    assert JobStore(redis).list_for_user(key["user_id"], limit=10)[0] == []


def test_pause_stops_firings_and_resume_fires_the_missed_slots_once(
    scheduler: ScheduleScheduler, store: ScheduleStore, key: CreatedKey, clock: Clock
) -> None:
    record = add(store, key, interval_s=60)
    store.set_paused(record["schedule_id"], True)
    clock.advance(600)
    assert scheduler.enqueue_jobs() == []
    assert scheduler.get_jobs() == []
    store.set_paused(record["schedule_id"], False)
    assert len(scheduler.enqueue_jobs()) == 1
    clock.advance(59)
    assert scheduler.enqueue_jobs() == []
    [firing] = store.firings(record["schedule_id"])
    assert firing["scheduled_for"] == iso(START + timedelta(seconds=60))
    assert firing["fired_at"] == iso(START + timedelta(seconds=600))


def test_a_deleted_schedule_never_fires_again(
    scheduler: ScheduleScheduler, store: ScheduleStore, key: CreatedKey, clock: Clock
) -> None:
    record = add(store, key, interval_s=60)
    scheduler.enqueue_jobs()
    store.delete(record["schedule_id"], record["user_id"])
    clock.advance(600)
    assert scheduler.enqueue_jobs() == []
    assert scheduler.get_jobs() == []


@pytest.mark.parametrize(
    ("when", "missed_slot", "next_slot"),
    [
        # Every 60 s, last fired at 00:00 and down for 3 hours: one firing, then every 60 s.
        ({"interval_s": 60}, "00:01:00", "03:01:00"),
        # Quarter hours: one firing for the twelve missed, then the next quarter hour.
        ({"cron": "*/15 * * * *"}, "00:15:00", "03:15:00"),
    ],
)
def test_missed_slots_coalesce_into_one_firing_then_the_schedule_continues(
    *,
    scheduler: ScheduleScheduler,
    store: ScheduleStore,
    key: CreatedKey,
    clock: Clock,
    when: dict[str, int | str],
    missed_slot: str,
    next_slot: str,
) -> None:
    record = add(store, key, last_fired_at=CREATED, **when)
    clock.advance(3 * 3600)  # 03:00
    assert len(scheduler.enqueue_jobs()) == 1
    assert scheduler.enqueue_jobs() == []
    [firing] = store.firings(record["schedule_id"])
    assert firing["scheduled_for"] == f"2026-01-01T{missed_slot}.000000+00:00"
    assert firing["fired_at"] == "2026-01-01T03:00:00.000000+00:00"
    [job] = scheduler.get_jobs()
    assert job.next_enqueue_time is not None
    assert iso(job.next_enqueue_time) == f"2026-01-01T{next_slot}.000000+00:00"


def test_two_schedulers_fire_a_slot_once(
    ctx: SubmitContext, store: ScheduleStore, key: CreatedKey, clock: Clock
) -> None:
    """The second scheduler has read the schedules when the first fires the slot: its own
    claim of that slot finds it taken, so it submits nothing."""
    first = ScheduleScheduler(ctx, clock=clock)
    fired_by_first: list[int] = []

    def first_fires_meanwhile() -> datetime:
        if not fired_by_first:  # once: between the second's sync and its firing
            fired_by_first.append(len(first.enqueue_jobs()))
        return clock()

    second = ScheduleScheduler(ctx, clock=first_fires_meanwhile)
    record = add(store, key, interval_s=60)
    clock.advance(60)
    assert second.enqueue_jobs() == []
    assert fired_by_first == [1]
    [firing] = store.firings(record["schedule_id"])
    # Both carry on from the record: the next slot fires once too, by whichever comes first.
    clock.advance(60)
    assert len(ScheduleScheduler(ctx, clock=clock).enqueue_jobs()) == 1
    assert second.enqueue_jobs() == []
    assert len(store.firings(record["schedule_id"])) == 2
    assert firing["job_id"] is not None


def test_cron_jobs_are_rebuilt_only_when_their_schedule_changed(
    scheduler: ScheduleScheduler, store: ScheduleStore, key: CreatedKey
) -> None:
    kept = add(store, key, interval_s=60)
    changed = add(store, key, interval_s=60)
    scheduler.sync()
    before = {job.name: job for job in scheduler.get_jobs()}
    store.claim(changed["schedule_id"], since=None, fired_at=iso(START))
    scheduler.sync()
    after = {job.name: job for job in scheduler.get_jobs()}
    assert after[kept["schedule_id"]] is before[kept["schedule_id"]]
    assert after[changed["schedule_id"]] is not before[changed["schedule_id"]]


@pytest.mark.parametrize("error", [KeyError("boom"), ResponseError("WRONGTYPE")])
def test_an_unexpected_failure_is_recorded_and_the_other_schedules_still_fire(
    *,
    error: Exception,
    scheduler: ScheduleScheduler,
    store: ScheduleStore,
    key: CreatedKey,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken:
        def check(self, ctx: SubmitContext, caller: Principal, body: JSONObject) -> None:
            raise AssertionError("unused")

        def submit(
            self, ctx: SubmitContext, caller: Principal, body: JSONObject, origin: JobOrigin
        ) -> SubmittedJob:
            raise self.error

        def __init__(self, error: Exception) -> None:
            self.error = error

    broken = store.create(
        schedule_record(request={}, job_type="export", key_id=key["key_id"]), limit=10
    )
    healthy = add(store, key, interval_s=60)
    monkeypatch.setitem(job_requests.KEPT_REQUESTS, "export", Broken(error))
    clock.advance(60)
    assert len(scheduler.enqueue_jobs()) == 2
    [failed] = store.firings(broken["schedule_id"])
    message = f"internal error ({type(error).__name__})"
    assert failed["error"] == {"code": "INTERNAL_ERROR", "message": message}
    [fired] = store.firings(healthy["schedule_id"])
    assert fired["job_id"] is not None


def test_a_redis_outage_is_waited_out_and_its_slots_fire_after_it(
    *,
    scheduler: ScheduleScheduler,
    store: ScheduleStore,
    key: CreatedKey,
    clock: Clock,
    server: fakeredis.FakeServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = add(store, key, interval_s=60)
    scheduler.sync()
    server.connected = False
    clock.advance(120)
    with caplog.at_level(logging.WARNING):
        assert scheduler.enqueue_jobs() == []
        scheduler.heartbeat()
    assert "Redis is unreachable" in caplog.text and "heartbeat failed" in caplog.text
    server.connected = True
    assert len(scheduler.enqueue_jobs()) == 1
    assert len(store.firings(record["schedule_id"])) == 1


def test_a_redis_error_inside_a_submission_is_not_recorded_as_a_refusal(
    scheduler: ScheduleScheduler,
    store: ScheduleStore,
    key: CreatedKey,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(*args: object) -> SubmittedJob:
        raise RedisConnectionError("gone")

    record = add(store, key, interval_s=60)
    monkeypatch.setattr(job_requests.KEPT_REQUESTS["train"], "submit", unreachable)
    clock.advance(60)
    assert scheduler.enqueue_jobs() == []
    # The slot was claimed before Redis went: at most once, so it is not fired again.
    assert store.firings(record["schedule_id"]) == []
    stored = store.get(record["schedule_id"])
    assert stored is not None and stored["last_fired_at"] == iso(clock.now)


def test_the_sleep_between_passes_is_capped_so_new_schedules_are_seen_soon(
    scheduler: ScheduleScheduler, store: ScheduleStore, key: CreatedKey
) -> None:
    assert scheduler.calculate_sleep_interval() == SYNC_S  # RQ would sleep 60 s
    add(store, key, interval_s=60)  # created 2026-01-01: long overdue by the real clock
    scheduler.sync()
    assert scheduler.calculate_sleep_interval() == 0
