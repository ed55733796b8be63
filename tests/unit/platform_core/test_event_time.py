"""Events say when they were published, in one UTC form every reader parses."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from platform_core.event_time import check_event_time, event_time, received_time
from platform_core.json_types import PayloadError


def test_a_time_in_another_zone_is_written_in_utc_with_milliseconds() -> None:
    paris = timezone(timedelta(hours=1))
    moment = datetime(2026, 12, 5, 2, 2, 3, 456789, tzinfo=paris)
    assert event_time(moment) == "2026-12-05T01:02:03.456+00:00"


def test_now_is_the_default() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    assert before <= datetime.fromisoformat(event_time()) <= datetime.now(UTC)


def test_a_naive_time_is_refused_with_the_field_named() -> None:
    with pytest.raises(PayloadError, match="must be in UTC") as info:
        check_event_time("2026-12-05T01:02:03")
    assert info.value.field == "ts"


def test_a_missing_or_null_ts_is_none_and_a_present_one_is_kept() -> None:
    assert received_time({}) is None
    assert received_time({"ts": None}) is None
    assert received_time({"ts": "2026-12-05T01:02:03Z"}) == "2026-12-05T01:02:03Z"
