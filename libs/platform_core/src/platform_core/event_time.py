"""When an event happened (`ts`), so a replayed or relayed event still says when it was published.

Publishers write ISO-8601 UTC with milliseconds and an explicit offset,
`2026-12-05T01:02:03.456+00:00`: the form job records use, which Python's
`datetime.fromisoformat` and JavaScript's `Date` both read. Readers accept any ISO-8601 time in
UTC (`Z` too) and keep it as written.
"""

from datetime import UTC, datetime, timedelta

from platform_core.json_types import JSONObject, PayloadError, optional_str

TS_FIELD = "ts"


def event_time(now: datetime | None = None) -> str:
    """The publisher's clock, now (or the given aware time), as events carry it."""
    moment = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")


def check_event_time(value: str) -> str:
    """Refuses what is not an ISO-8601 time in UTC: a naive or shifted time would be misread."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        message = f"field '{TS_FIELD}' must be an ISO-8601 time, got {value[:64]!r}"
        raise PayloadError(TS_FIELD, message) from error
    if moment.utcoffset() != timedelta(0):
        message = f"field '{TS_FIELD}' must be in UTC (Z or +00:00), got {value[:64]!r}"
        raise PayloadError(TS_FIELD, message)
    return value


def received_time(obj: JSONObject) -> str | None:
    """A decoded event's `ts`, checked; None from a publisher older than `ts`."""
    value = optional_str(obj, TS_FIELD)
    return None if value is None else check_event_time(value)
