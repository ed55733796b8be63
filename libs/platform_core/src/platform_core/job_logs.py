"""Per-job log lines: a worker's log records as typed JSON, so any reader can decode them.

A line is additive like an event: a newer writer's extra field is dropped by an older decoder,
never refused, and every known field is validated, so a half-typed line never flows on.
"""

from datetime import datetime
from typing import NotRequired

from typing_extensions import TypedDict

from platform_core.json_types import (
    JSONObject,
    PayloadError,
    dump_json_object,
    load_json_object,
    optional_int,
    optional_object,
    require_str,
)


class JobLogLine(TypedDict):
    """One log record of a job: when, how severe, from which logger, what it said."""

    ts: str  # ISO-8601 with its UTC offset
    level: str  # the logging level name: INFO, WARNING, ERROR, ...
    logger: str
    message: str
    job_id: str
    attempt: NotRequired[int]  # which run of the job (1 the first; a retry counts up)
    fields: NotRequired[JSONObject]  # structured details (a config, an error code)


def make_log_line(
    *,
    ts: str,
    level: str,
    logger: str,
    message: str,
    job_id: str,
    attempt: int | None = None,
    fields: JSONObject | None = None,
) -> JobLogLine:
    """Builds a line, refusing a timestamp that is not ISO-8601, an empty level or job id, and
    an attempt below 1."""
    try:
        datetime.fromisoformat(ts)
    except ValueError as error:
        raise PayloadError("ts", f"field 'ts' must be an ISO-8601 time, got {ts!r}") from error
    for name, value in (("level", level), ("job_id", job_id)):
        if not value:
            raise PayloadError(name, f"field '{name}' must not be empty")
    line: JobLogLine = {
        "ts": ts,
        "level": level,
        "logger": logger,
        "message": message,
        "job_id": job_id,
    }
    if attempt is not None:
        if attempt < 1:
            raise PayloadError("attempt", f"field 'attempt' must be >= 1, got {attempt}")
        line["attempt"] = attempt
    if fields is not None:
        line["fields"] = fields
    return line


def encode_log_line(line: JobLogLine) -> str:
    """Serialises a line for the job's log list."""
    return dump_json_object(line)


def decode_log_line(payload: str | bytes) -> JobLogLine:
    """Validates every known field of a stored line and drops the unknown ones."""
    return log_line_from_object(load_json_object(payload))


def log_line_from_object(obj: JSONObject) -> JobLogLine:
    """A line already parsed as JSON (an element of an HTTP answer), validated the same way."""
    return make_log_line(
        ts=require_str(obj, "ts"),
        level=require_str(obj, "level"),
        logger=require_str(obj, "logger"),
        message=require_str(obj, "message"),
        job_id=require_str(obj, "job_id"),
        attempt=optional_int(obj, "attempt"),
        fields=optional_object(obj, "fields"),
    )


def log_lines_from_object(obj: JSONObject, field: str = "lines") -> list[JobLogLine]:
    """The list of lines under `field` (the logs endpoint's answer), each validated."""
    value = obj.get(field)
    if not isinstance(value, list):
        raise PayloadError(field, f"field '{field}' must be a list of log lines")
    lines: list[JobLogLine] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise PayloadError(f"{field}[{index}]", f"field '{field}[{index}]' must be an object")
        lines.append(log_line_from_object(item))
    return lines
