"""Process logs as JSON lines: the line's shape, the job context, and one handler for every
logger, uvicorn's and RQ's included."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import orjson
import pytest

from platform_core.json_types import JSONObject, load_json_object
from platform_core.structured_logs import (
    FIELDS_ATTR,
    ROUTED_LOGGERS,
    JsonFormatter,
    configure_logging,
    log_context,
)

log = logging.getLogger("model_trainer.test")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back after each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    routed = {name: logging.getLogger(name) for name in ROUTED_LOGGERS}
    saved = {name: (lg.handlers[:], lg.propagate, lg.level) for name, lg in routed.items()}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (own, propagate, own_level) in saved.items():
        routed[name].handlers[:] = own
        routed[name].propagate = propagate
        routed[name].setLevel(own_level)


def printed(capsys: pytest.CaptureFixture[str]) -> list[JSONObject]:
    return [load_json_object(line) for line in capsys.readouterr().err.splitlines()]


def formatted(record: logging.LogRecord) -> JSONObject:
    return load_json_object(JsonFormatter().format(record))


def record(message: str, **extra: object) -> logging.LogRecord:
    made = log.makeRecord(log.name, logging.WARNING, __file__, 1, message, (), None, extra=extra)
    made.created = 0.25
    return made


def test_a_line_has_time_level_logger_message_context_and_fields() -> None:
    with log_context(job_id="j1", user_id=7), log_context(type="train"):
        line = formatted(record("job done", **{FIELDS_ATTR: {"event": "job.completed"}}))
    assert line == {
        "ts": "1970-01-01T00:00:00.250+00:00",
        "level": "WARNING",
        "logger": "model_trainer.test",
        "message": "job done",
        "job_id": "j1",
        "user_id": 7,
        "type": "train",
        "event": "job.completed",
    }
    assert list(line)[:4] == ["ts", "level", "logger", "message"]
    # Outside the block the context is gone.
    assert "job_id" not in formatted(record("later"))


def test_base_keys_win_colours_go_and_odd_values_become_text() -> None:
    fields = {"message": "shadow", "level": "x", "path": object, 3: "three"}
    line = formatted(record("\x1b[32mtrain\x1b[39;49;00m: Job OK", **{FIELDS_ATTR: fields}))
    assert (line["message"], line["level"]) == ("train: Job OK", "WARNING")
    assert line["path"] == str(object) and line["3"] == "three"


def test_an_exception_is_one_json_string() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        made = log.makeRecord(log.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = JsonFormatter().format(made)
    assert "\n" not in text
    exc = orjson.loads(text)["exc"]
    assert exc.startswith("Traceback") and "RuntimeError: boom" in exc


def test_configure_prints_json_at_the_level_once_however_often_called(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO")
    handler = configure_logging("WARNING")
    assert [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)] == [
        handler
    ]
    log.info("not printed")
    log.warning("printed")
    # A job lowers the root's level to keep its own INFO lines: the process still prints none.
    logging.getLogger().setLevel(logging.INFO)
    log.info("still not printed")
    assert [line["message"] for line in printed(capsys)] == ["printed"]


def test_uvicorn_and_rq_loggers_print_through_the_same_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rq_log = logging.getLogger("rq.worker")
    rq_log.addHandler(logging.StreamHandler())
    rq_log.propagate = False
    rq_log.setLevel(logging.ERROR)
    configure_logging("INFO")
    rq_log.info("Worker w1: started")
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /healthz HTTP/1.1" 200')
    assert [(line["logger"], line["message"]) for line in printed(capsys)] == [
        ("rq.worker", "Worker w1: started"),
        ("uvicorn.access", '127.0.0.1 - "GET /healthz HTTP/1.1" 200'),
    ]
