"""`model-trainer scheduler` as a process against a real redis-server, with 1-2 s intervals:
firings are ordinary jobs linked to their schedule on the right RQ queue, a quota refusal and a
revoked key are recorded on the schedule, pause stops firings and resume restarts them, delete
ends them, and slots missed while the scheduler was down coalesce into one firing."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rq.cron import CronScheduler
from rq.job import Job
from rq.serializers import JSONSerializer
from tests.support.processes import cli_process, stop, wait_for
from tests.support.schedules import schedule_record
from tests.unit.api.conftest import make_manifest

from model_trainer.contracts.jobs import WORKER_FUNCTIONS, JobType
from model_trainer.scheduler.timing import iso
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import CreatedKey, create_key, revoke_key
from model_trainer.storage.job_store import JobStore
from model_trainer.storage.owners import claim
from model_trainer.storage.runs import run_dir, write_manifest
from model_trainer.storage.schedules import Firing, ScheduleRecord, ScheduleStore
from platform_core.json_types import JSONObject
from platform_workers.redis_conn import RedisClient

pytestmark = pytest.mark.integration

SCORE: JSONObject = {"run_id": "run-s", "text": "To be", "priority": "high"}
TRAIN: JSONObject = {"model_family": "char_lstm", "model_size": "tiny", "corpus_path": "corpus.txt"}
Start = Callable[[], subprocess.Popen[bytes]]


@pytest.fixture
def store(redis: RedisClient) -> ScheduleStore:
    return ScheduleStore(redis)


@pytest.fixture
def alice(redis: RedisClient, settings: Settings, corpus_path: Path) -> CreatedKey:
    """A user with a finished run `run-s` (a manifest is all a score submission reads)."""
    key = create_key(redis, "alice")
    directory = run_dir(settings, "run-s")
    directory.mkdir(parents=True)
    write_manifest(directory, make_manifest("run-s", str(corpus_path), iso(datetime.now(UTC))))
    claim(redis, "run", "run-s", key["user_id"])
    return key


@pytest.fixture
def start_scheduler(redis_url: str, settings: Settings, corpus_path: Path) -> Iterator[Start]:
    """Starts `model-trainer scheduler` processes (1 s minimum interval, one active train job
    per user); each is stopped at the end if the test did not stop it."""
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": redis_url,
            "ARTIFACTS_ROOT": str(settings["artifacts_root"]),
            "DATA_ROOT": str(settings["data_root"]),
            "MIN_SCHEDULE_INTERVAL_S": "1",
            "MAX_ACTIVE_JOBS_TRAIN": "1",
            "OMP_NUM_THREADS": "1",
        }
    )
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        started.append(cli_process(["scheduler"], env))
        return started[-1]

    yield start
    for process in started:
        stop(process)


def add(
    store: ScheduleStore, key: CreatedKey, job_type: JobType, request: JSONObject, interval: int
) -> ScheduleRecord:
    record = schedule_record(
        request=request,
        job_type=job_type,
        key_id=key["key_id"],
        user_id=key["user_id"],
        interval_s=interval,
        created_at=iso(datetime.now(UTC)),
    )
    return store.create(record, limit=10)


def firings_of(store: ScheduleStore, record: ScheduleRecord) -> list[Firing]:
    """Oldest first."""
    return list(reversed(store.firings(record["schedule_id"])))


def wait_firings(store: ScheduleStore, record: ScheduleRecord, count: int) -> list[Firing]:
    wait_for(
        lambda: len(store.firings(record["schedule_id"])) >= count,
        timeout=30,
        what=f"{count} firings of schedule {record['schedule_id']}",
    )
    return firings_of(store, record)


def scheduled_jobs(redis: RedisClient, user_id: int, schedule_id: str) -> list[str]:
    jobs, _ = JobStore(redis).list_for_user(user_id, limit=200)
    origin = {"kind": "schedule", "id": schedule_id, "trial": None}
    return [job["job_id"] for job in jobs if job["origin"] == origin]


def gap_s(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


def test_firings_refusals_pause_resume_and_delete(
    *,
    redis: RedisClient,
    store: ScheduleStore,
    alice: CreatedKey,
    start_scheduler: Start,
) -> None:
    bob = create_key(redis, "bob")
    carol = create_key(redis, "carol")
    scores = add(store, alice, "score", SCORE, 1)
    trains = add(store, bob, "train", TRAIN, 1)
    revoked = add(store, carol, "train", TRAIN, 1)
    revoke_key(redis, carol["key_id"])
    process = start_scheduler()

    # Firings are ordinary jobs of their owner, linked to the schedule, on the request's queue.
    first, second = wait_firings(store, scores, 2)[:2]
    for firing in (first, second):
        assert firing["error"] is None and firing["job_id"] is not None
        record = JobStore(redis).get(firing["job_id"])
        assert record is not None
        assert (record["type"], record["status"], record["user_id"]) == (
            "score",
            "queued",
            alice["user_id"],
        )
        assert record["origin"] == {"kind": "schedule", "id": scores["schedule_id"], "trial": None}
        job = Job.fetch(firing["job_id"], connection=redis, serializer=JSONSerializer)
        assert (job.origin, job.func_name) == ("infer-high", WORKER_FUNCTIONS["score"])
    assert gap_s(second["scheduled_for"], first["fired_at"]) == 1.0

    # A refused firing is recorded with the refusal's code: bob may have one train job at once.
    accepted, refused = wait_firings(store, trains, 2)[:2]
    assert accepted["job_id"] is not None
    assert refused["error"] is not None and refused["error"]["code"] == "QUOTA_EXCEEDED"
    assert scheduled_jobs(redis, bob["user_id"], trains["schedule_id"]) == [accepted["job_id"]]
    [unauthenticated] = wait_firings(store, revoked, 1)[:1]
    assert unauthenticated["error"] is not None
    assert unauthenticated["error"]["code"] == "UNAUTHENTICATED"

    # RQ's own registry lists the scheduler, with our schedules as its cron jobs.
    [registered] = CronScheduler.all(redis)
    names = {job.name for job in registered.get_jobs()}
    assert names == {scores["schedule_id"], trains["schedule_id"], revoked["schedule_id"]}

    # Pause: no firing while paused. Resume: the missed slots fire once at once, then on time.
    store.set_paused(scores["schedule_id"], True)
    time.sleep(1.5)  # a pass under way when it was paused may still fire
    paused_at = len(store.firings(scores["schedule_id"]))
    time.sleep(3)
    assert len(store.firings(scores["schedule_id"])) == paused_at
    store.set_paused(scores["schedule_id"], False)
    last_before, catch_up, on_time = wait_firings(store, scores, paused_at + 2)[
        paused_at - 1 : paused_at + 2
    ]
    assert gap_s(catch_up["scheduled_for"], last_before["fired_at"]) == 1.0
    assert gap_s(catch_up["fired_at"], catch_up["scheduled_for"]) > 2  # late: a missed slot
    assert gap_s(on_time["scheduled_for"], catch_up["fired_at"]) == 1.0

    # Delete: no more firings; the jobs it submitted stay.
    store.delete(scores["schedule_id"], alice["user_id"])
    time.sleep(1.5)
    submitted = scheduled_jobs(redis, alice["user_id"], scores["schedule_id"])
    time.sleep(3)
    assert scheduled_jobs(redis, alice["user_id"], scores["schedule_id"]) == submitted
    assert len(submitted) >= 4
    assert store.get(scores["schedule_id"]) is None
    assert store.firings(scores["schedule_id"]) == []

    stop(process)
    assert process.returncode == 0
    assert CronScheduler.all(redis) == []


def test_slots_missed_while_the_scheduler_was_down_fire_once_then_it_continues(
    *, store: ScheduleStore, alice: CreatedKey, start_scheduler: Start
) -> None:
    """The missed-firing rule: coalesce. Down for about four slots, the schedule fires once when
    the scheduler is back (for the first slot it missed), then every interval from there."""
    scores = add(store, alice, "score", SCORE, 2)
    process = start_scheduler()
    [before] = wait_firings(store, scores, 1)[:1]
    stop(process)
    assert process.returncode == 0
    stopped_with = len(store.firings(scores["schedule_id"]))
    time.sleep(8)
    assert len(store.firings(scores["schedule_id"])) == stopped_with
    last = firings_of(store, scores)[-1]

    start_scheduler()
    catch_up, on_time = wait_firings(store, scores, stopped_with + 2)[
        stopped_with : stopped_with + 2
    ]
    assert gap_s(catch_up["scheduled_for"], last["fired_at"]) == 2.0  # the first missed slot
    assert gap_s(catch_up["fired_at"], catch_up["scheduled_for"]) > 4  # fired late, once
    assert gap_s(on_time["scheduled_for"], catch_up["fired_at"]) == 2.0
    assert gap_s(on_time["fired_at"], on_time["scheduled_for"]) < 1.5  # then on time
    assert before["job_id"] is not None and catch_up["job_id"] is not None
    record = store.get(scores["schedule_id"])
    assert record is not None and record["last_fired_at"] == on_time["fired_at"]
    assert record["fired"] == stopped_with + 2


def test_a_record_created_in_the_past_is_due_at_once(
    *, store: ScheduleStore, alice: CreatedKey, start_scheduler: Start
) -> None:
    """What the scheduler finds when everything was down since a schedule was made: one firing
    for however many slots passed."""
    created = datetime.now(UTC) - timedelta(hours=1)
    record = store.create(
        schedule_record(
            request=SCORE,
            job_type="score",
            key_id=alice["key_id"],
            user_id=alice["user_id"],
            interval_s=60,
            created_at=iso(created),
        ),
        limit=10,
    )
    start_scheduler()
    [firing] = wait_firings(store, record, 1)
    assert firing["scheduled_for"] == iso(created + timedelta(seconds=60))
    time.sleep(2)
    assert len(store.firings(record["schedule_id"])) == 1
