"""Schedule records in Redis: round trips, the per-user cap, pause and delete, the slot claim
that keeps a slot to one firing, the firing history, and what a scheduler may skip."""

from __future__ import annotations

import logging

import fakeredis
import pytest
from tests.support.schedules import CREATED, schedule_record

from model_trainer.contracts import limits
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.schedules import Firing, FiringError, ScheduleRecord, ScheduleStore
from platform_core.json_types import JSONObject, PayloadError
from platform_workers.keys import (
    schedule_firings_key,
    schedule_key,
    schedules_key,
    schedules_version_key,
    user_schedules_key,
)

REQUEST: JSONObject = {"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "c.txt"}
LATER = "2026-01-01T00:01:00.000000+00:00"


@pytest.fixture
def redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def store(redis: fakeredis.FakeRedis) -> ScheduleStore:
    return ScheduleStore(redis)


def firing(job_id: str | None, n: int = 0) -> Firing:
    error: FiringError | None = (
        None if job_id else {"code": "QUOTA_EXCEEDED", "message": f"refused {n}"}
    )
    return {"scheduled_for": CREATED, "fired_at": LATER, "job_id": job_id, "error": error}


def test_schedule_keys_live_under_the_domain() -> None:
    assert schedule_key("trainer", "s") == "trainer:schedule:s"
    assert schedule_firings_key("trainer", "s") == "trainer:schedule:s:firings"
    assert user_schedules_key("trainer", 7) == "trainer:user:7:schedules"
    assert schedules_key("trainer") == "trainer:schedules"
    assert schedules_version_key("trainer") == "trainer:schedules:version"


def test_a_record_round_trips_and_is_listed_for_its_user_and_the_schedulers(
    store: ScheduleStore,
) -> None:
    cron: ScheduleRecord = {**schedule_record(request=REQUEST, cron="0 3 * * *"), "name": "nightly"}
    interval = schedule_record(
        request=REQUEST, interval_s=300, created_at=LATER, last_fired_at=LATER
    )
    other = schedule_record(request=REQUEST, user_id=2, created_at="2026-01-02T00:00:00+00:00")
    for record in (cron, interval, other):
        assert store.create(record, limit=10) == record
    assert store.get(cron["schedule_id"]) == cron
    assert store.get(interval["schedule_id"]) == interval
    assert store.get("nope") is None
    assert store.list_for_user(1) == [cron, interval]
    assert store.list_for_user(2) == [other]
    assert store.every() == [cron, interval, other]


def test_the_per_user_cap_is_a_quota_refusal(store: ScheduleStore) -> None:
    store.create(schedule_record(request=REQUEST), limit=2)
    store.create(schedule_record(request=REQUEST), limit=2)
    with pytest.raises(ModelTrainerError) as refused:
        store.create(schedule_record(request=REQUEST), limit=2)
    assert (refused.value.code, refused.value.details) == ("QUOTA_EXCEEDED", {"limit": 2})
    # Another user's count is their own.
    store.create(schedule_record(request=REQUEST, user_id=2), limit=2)
    assert len(store.list_for_user(1)) == 2


def test_every_change_a_scheduler_must_see_bumps_the_version(store: ScheduleStore) -> None:
    record = schedule_record(request=REQUEST)
    versions = [store.version()]
    store.create(record, limit=10)
    versions.append(store.version())
    store.set_paused(record["schedule_id"], True)
    versions.append(store.version())
    store.claim(record["schedule_id"], since=None, fired_at=LATER)  # paused: refused, no bump
    versions.append(store.version())
    store.set_paused(record["schedule_id"], False)
    versions.append(store.version())
    assert store.claim(record["schedule_id"], since=None, fired_at=LATER)
    versions.append(store.version())
    store.record_firing(record["schedule_id"], firing("j1"))  # counters only: no bump
    versions.append(store.version())
    store.delete(record["schedule_id"], record["user_id"])
    versions.append(store.version())
    assert versions == [0, 1, 2, 2, 3, 4, 4, 5]


def test_pause_and_resume_answer_the_record_or_none_once_deleted(store: ScheduleStore) -> None:
    record = store.create(schedule_record(request=REQUEST), limit=10)
    paused: ScheduleRecord = {**record, "paused": True}
    assert store.set_paused(record["schedule_id"], True) == paused
    assert store.get(record["schedule_id"]) == paused
    assert store.set_paused(record["schedule_id"], False) == record
    assert store.set_paused("nope", True) is None


def test_a_slot_is_claimed_once_and_only_from_the_base_it_was_computed_from(
    store: ScheduleStore,
) -> None:
    record = store.create(schedule_record(request=REQUEST), limit=10)
    schedule_id = record["schedule_id"]
    assert store.claim(schedule_id, since=None, fired_at=LATER)
    # A second scheduler that computed the same slot from the same base loses.
    assert not store.claim(schedule_id, since=None, fired_at=LATER)
    assert store.get(schedule_id) == {**record, "last_fired_at": LATER}
    assert store.claim(schedule_id, since=LATER, fired_at="2026-01-01T00:02:00+00:00")
    store.set_paused(schedule_id, True)
    assert not store.claim(schedule_id, since="2026-01-01T00:02:00+00:00", fired_at=LATER)
    assert not store.claim("nope", since=None, fired_at=LATER)


def test_firings_are_kept_newest_first_bounded_and_counted(store: ScheduleStore) -> None:
    record = store.create(schedule_record(request=REQUEST), limit=10)
    schedule_id = record["schedule_id"]
    store.record_firing(schedule_id, firing("j1"))
    for n in range(limits.FIRINGS_KEPT):
        store.record_firing(schedule_id, firing(None, n))
    kept = store.firings(schedule_id)
    assert len(kept) == limits.FIRINGS_KEPT
    assert kept[0] == firing(None, limits.FIRINGS_KEPT - 1)
    assert kept[-1] == firing(None, 0)  # j1 fell off the end
    assert store.get(schedule_id) == {**record, "fired": 1, "refused": limits.FIRINGS_KEPT}


def test_delete_removes_the_record_its_firings_and_its_listings(
    store: ScheduleStore, redis: fakeredis.FakeRedis
) -> None:
    record = store.create(schedule_record(request=REQUEST), limit=10)
    schedule_id = record["schedule_id"]
    store.record_firing(schedule_id, firing("j1"))
    store.delete(schedule_id, record["user_id"])
    assert store.get(schedule_id) is None
    assert store.list_for_user(1) == store.every() == []
    assert store.firings(schedule_id) == []
    # A firing that ends after the delete leaves nothing behind.
    store.record_firing(schedule_id, firing("j2"))
    assert not redis.exists(schedule_key("trainer", schedule_id))
    assert not redis.exists(schedule_firings_key("trainer", schedule_id))


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("user_id", "one", "user_id"),
        ("paused", "yes", "paused"),
        ("job_type", "bake", "job_type"),
        ("created_at", "yesterday", "created_at"),
        ("created_at", "2026-01-01T00:00:00", "created_at"),  # no offset
        ("last_fired_at", "soon", "last_fired_at"),
        ("interval_s", "1.5", "interval_s"),
        ("cron", "0 3 * * *", "cron"),  # both cron and interval_s
        ("request", "[]", "$"),
    ],
)
def test_a_malformed_record_names_its_field(
    store: ScheduleStore, redis: fakeredis.FakeRedis, field: str, value: str, named: str
) -> None:
    record = store.create(schedule_record(request=REQUEST), limit=10)
    redis.hset(schedule_key("trainer", record["schedule_id"]), field, value)
    with pytest.raises(PayloadError) as bad:
        store.get(record["schedule_id"])
    assert bad.value.field == named


def test_schedulers_skip_a_record_that_does_not_decode_and_keep_the_others(
    store: ScheduleStore, redis: fakeredis.FakeRedis, caplog: pytest.LogCaptureFixture
) -> None:
    broken = store.create(schedule_record(request=REQUEST), limit=10)
    good = store.create(schedule_record(request=REQUEST), limit=10)
    not_utf8 = store.create(schedule_record(request=REQUEST), limit=10)
    redis.hdel(schedule_key("trainer", broken["schedule_id"]), "key_id")
    redis.hset(schedule_key("trainer", not_utf8["schedule_id"]), "name", b"\xff")
    with caplog.at_level(logging.WARNING):
        assert store.every() == [good]
    assert "key_id" in caplog.text
