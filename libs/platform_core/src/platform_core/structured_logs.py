"""Process logs as JSON lines: one object per record on stderr, so log tools parse, not guess.

A line is `{"ts", "level", "logger", "message", ...}` plus the fields of the enclosing
`log_context` (a job's id, user and type while it runs) and the record's own structured fields
(`logger.info("...", extra={FIELDS_ATTR: {...}})`), flattened to the top level; the four base
keys win over a field of the same name. A record carrying an exception adds `exc` (its
traceback, one JSON string); only genuine internal errors are logged with one.

`configure_logging` installs the one handler on the root logger and routes the loggers that
uvicorn and RQ would otherwise give handlers of their own through it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType

import orjson

from platform_core.json_types import JSONValue

# `logger.info("...", extra={FIELDS_ATTR: {...}})` gives a record its structured fields.
FIELDS_ATTR = "fields"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Loggers that uvicorn and RQ configure with handlers (and colours) of their own.
ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "rq", "rq.worker", "rq.job")
# RQ colours parts of its messages when stdout is a terminal.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BASE_KEYS = ("ts", "level", "logger", "message")

_context: ContextVar[Mapping[str, JSONValue]] = ContextVar(
    "log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: JSONValue) -> Iterator[None]:
    """Adds `fields` to every line logged in this thread (or task) while the block runs."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def record_fields(record: logging.LogRecord) -> Mapping[str, object]:
    """The structured fields a record was logged with (none: empty)."""
    value = record.__dict__.get(FIELDS_ATTR)
    return value if isinstance(value, Mapping) else {}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {**_context.get(), **record_fields(record)}
        line.update(
            ts=datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            level=record.levelname,
            logger=record.name,
            message=_ANSI.sub("", record.getMessage()),
        )
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        ordered = {key: line[key] for key in _BASE_KEYS} | line
        return orjson.dumps(ordered, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(level: str) -> logging.Handler:
    """JSON lines at `level` and above on stderr, from every logger of this process.

    Idempotent: a JSON handler installed before is replaced, so a process that configures
    again (a spawned work horse, a test) never prints a line twice. The level is the
    handler's, so a job that lowers the root logger's level to keep its own INFO lines
    (`platform_workers.job_logs`) does not widen what the process prints.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        for own in list(routed.handlers):
            routed.removeHandler(own)
        routed.propagate = True
        routed.setLevel(logging.NOTSET)
    return handler
