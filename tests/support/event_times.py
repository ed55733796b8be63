"""Publication times (`ts`) for event tests: what publishers write, and what decoders accept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC

from hypothesis import strategies as st

from platform_core.event_time import check_event_time, event_time
from platform_core.json_types import JSONValue, PayloadError

# What publishers write, and the `Z` form other UTC writers use.
EVENT_TIMES = st.datetimes(timezones=st.just(UTC)).map(event_time) | st.just("2026-12-05T01:02:03Z")
# Not ISO-8601, naive, shifted from UTC, empty.
REFUSED_TIMES = ("yesterday", "2026-12-05T01:02:03", "2026-12-05T02:02:03+01:00", "")
ISO_UTC_MILLIS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"


def event_times(given: bool) -> st.SearchStrategy[str | None]:
    """A given publication time, or (None) the factory's own clock."""
    return EVENT_TIMES if given else st.none() | EVENT_TIMES


def is_event_time(value: JSONValue) -> bool:
    try:
        return isinstance(value, str) and check_event_time(value) == value
    except PayloadError:
        return False


def unstamped(event: Mapping[str, object]) -> dict[str, object]:
    """A published event without its `ts`, once checked that its publisher stamped it: what
    the rest of the event must equal."""
    ts = event.get("ts")
    assert isinstance(ts, str), f"no ts in {event!r}"
    assert re.fullmatch(ISO_UTC_MILLIS, ts), ts
    return {key: value for key, value in event.items() if key != "ts"}
