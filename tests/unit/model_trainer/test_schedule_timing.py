"""When schedules fire: RQ's CronJob timing counted from the record's base, and the checks a cron
expression or an interval passes at creation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.support.schedules import CREATED, schedule_record

from model_trainer.errors import ModelTrainerError
from model_trainer.scheduler.timing import (
    base_of,
    checked_cron,
    checked_interval,
    cron_job,
    iso,
    next_fire_at,
    shortest_gap,
)
from model_trainer.storage.schedules import ScheduleRecord
from platform_core.json_types import JSONObject

REQUEST: JSONObject = {"run_id": "r1"}
START = datetime.fromisoformat(CREATED)


def test_times_are_utc_iso_with_microseconds() -> None:
    moment = datetime(2026, 1, 1, 5, 30, tzinfo=UTC)
    assert iso(moment) == "2026-01-01T05:30:00.000000+00:00"
    assert datetime.fromisoformat(iso(moment.astimezone())) == moment


def test_an_interval_counts_from_creation_then_from_the_last_firing() -> None:
    new = schedule_record(request=REQUEST, interval_s=90)
    assert base_of(new) == START
    job = cron_job(new)
    assert job.next_enqueue_time == START + timedelta(seconds=90)
    assert (job.name, job.queue_name, job.func) == (new["schedule_id"], "train", None)
    assert job.func_name == "model_trainer.worker.train_job.process_train_job"
    fired: ScheduleRecord = {**new, "last_fired_at": "2026-01-01T10:00:00+00:00"}
    assert next_fire_at(fired) == "2026-01-01T10:01:30.000000+00:00"


def test_a_cron_slot_is_the_first_after_the_base() -> None:
    # Quarter hours are quarter hours in every time zone the scheduler may run in.
    record = schedule_record(
        request=REQUEST, cron="*/15 * * * *", created_at="2026-01-01T00:07:00+00:00"
    )
    assert next_fire_at(record) == "2026-01-01T00:15:00.000000+00:00"
    fired: ScheduleRecord = {**record, "last_fired_at": "2026-01-01T00:15:00+00:00"}
    assert next_fire_at(fired) == "2026-01-01T00:30:00.000000+00:00"


def test_an_overdue_schedule_shows_its_missed_slot_and_a_paused_one_none() -> None:
    record = schedule_record(request=REQUEST, interval_s=60)
    assert next_fire_at(record) == "2026-01-01T00:01:00.000000+00:00"  # long past: due now
    paused: ScheduleRecord = {**record, "paused": True}
    assert next_fire_at(paused) is None


@pytest.mark.parametrize(
    "expression",
    ["* * * *", "* * * * * *", "@hourly", "61 * * * *", "a b c d e", "0 0 30 2 *", "*/0 * * * *"],
)
def test_a_cron_that_is_not_five_valid_fields_is_refused(expression: str) -> None:
    with pytest.raises(ModelTrainerError) as refused:
        checked_cron(expression, 60)
    assert (refused.value.code, refused.value.details) == ("INVALID_CONFIG", {"field": "cron"})


def test_a_cron_is_stored_with_single_spaces() -> None:
    assert checked_cron("  0  3 * *\t1-5 ", 60) == "0 3 * * 1-5"
    assert checked_cron("* * * * *", 60) == "* * * * *"


@pytest.mark.parametrize(
    ("expression", "minimum", "accepted"),
    [
        ("* * * * *", 120, False),
        ("*/2 * * * *", 120, True),
        ("0,1 3 * * *", 120, False),  # two minutes apart once a day
        ("0,59 0,23 * * *", 120, False),  # 23:59 then 00:00 the next day
        ("0 3 * * *", 86_400, True),
        ("0 3 * * 1,2", 86_400, True),
        ("0 3,4 * * *", 7200, False),
    ],
)
def test_a_cron_never_fires_closer_than_the_minimum_interval(
    expression: str, minimum: int, accepted: bool
) -> None:
    if accepted:
        assert checked_cron(expression, minimum) == expression
        return
    with pytest.raises(ModelTrainerError) as refused:
        checked_cron(expression, minimum)
    assert "MIN_SCHEDULE_INTERVAL_S" in refused.value.message


def test_the_gap_of_a_yearly_cron_is_found_in_one_step() -> None:
    job = cron_job(schedule_record(request=REQUEST, cron="0 3 1 1 *"))
    assert shortest_gap(job, 60) >= 365 * 86_400


def test_an_interval_below_the_minimum_is_refused() -> None:
    assert checked_interval(60, 60) == 60
    with pytest.raises(ModelTrainerError) as refused:
        checked_interval(59, 60)
    assert refused.value.details == {"field": "interval_s"}
