"""JobLogHandler: a job's records become bounded, expiring lines; logging never hurts the job."""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import fakeredis
import pytest

from platform_core.job_logs import JobLogLine, decode_log_line
from platform_core.structured_logs import FIELDS_ATTR
from platform_workers.job_context import JobContext
from platform_workers.job_logs import (
    MESSAGE_LIMIT,
    JobLogHandler,
    capture_job_logs,
    read_job_logs,
)
from platform_workers.keys import logs_key
from platform_workers.redis_conn import RedisClient

KEY = logs_key("trainer", "job-1")
TTL_S = 3600
log = logging.getLogger("tests.job_logs")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def redis(server: fakeredis.FakeServer) -> RedisClient:
    return fakeredis.FakeRedis(server=server)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def handler(redis: RedisClient, clock: FakeClock) -> JobLogHandler:
    return JobLogHandler(
        redis, domain="trainer", job_id="job-1", ttl_s=TTL_S, attempt=1, max_lines=5, clock=clock
    )


@pytest.fixture
def bare_root() -> Iterator[logging.Logger]:
    """The root logger at a worker process's level, WARNING."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    yield root
    root.setLevel(level)


@contextmanager
def without_handlers(root: logging.Logger) -> Iterator[None]:
    """The root without handlers, as in a worker process (pytest adds its capture handlers as
    each test's body starts; they are put back after)."""
    handlers = root.handlers[:]
    root.handlers = []
    try:
        yield
    finally:
        root.handlers = handlers


def stored(redis: RedisClient) -> list[JobLogLine]:
    return [decode_log_line(raw) for raw in redis.lrange(KEY, 0, -1)]


def test_records_of_the_job_become_lines_with_their_fields(
    redis: RedisClient, handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    with capture_job_logs(handler):
        log.debug("too fine to keep")
        log.info("job started: %s", "train", extra={FIELDS_ATTR: {"config": {"lr": 0.1}}})
        log.warning("odd value %s", Path("/data/x.txt"), extra={FIELDS_ATTR: {"path": Path("/p")}})
    lines = stored(redis)
    assert [(line["level"], line["message"]) for line in lines] == [
        ("INFO", "job started: train"),
        ("WARNING", "odd value /data/x.txt"),
    ]
    first = lines[0]
    assert first["logger"] == "tests.job_logs"
    assert (first["job_id"], first.get("attempt")) == ("job-1", 1)
    assert first.get("fields") == {"config": {"lr": 0.1}}
    assert lines[1].get("fields") == {"path": "/p"}
    assert datetime.fromisoformat(first["ts"]).utcoffset() is not None
    assert handler.dropped == 0


def test_the_list_keeps_only_the_newest_lines_and_expires_like_the_events(
    redis: RedisClient, handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    with capture_job_logs(handler):
        for index in range(8):
            log.info("line %d", index)
    assert [line["message"] for line in stored(redis)] == [f"line {i}" for i in range(3, 8)]
    assert 0 < redis.ttl(KEY) <= TTL_S


def test_warnings_warn_becomes_a_warning_line_only_while_captured(
    redis: RedisClient, handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    showwarning = warnings.showwarning
    with capture_job_logs(handler):
        warnings.warn("learning rate looks high", UserWarning, stacklevel=1)
    assert warnings.showwarning is showwarning
    with pytest.warns(UserWarning, match="after the job"):
        warnings.warn("after the job", UserWarning, stacklevel=1)
    (line,) = stored(redis)
    assert (line["level"], line["logger"]) == ("WARNING", "py.warnings")
    assert "learning rate looks high" in line["message"]


def test_everything_is_put_back_when_the_job_ends_even_by_an_error(
    redis: RedisClient, handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    library = logging.getLogger("tests.library")
    library.propagate = False

    def job() -> None:
        with capture_job_logs(handler, loggers=["tests.library"]):
            assert bare_root.level == logging.INFO
            assert handler in bare_root.handlers and handler in library.handlers
            library.warning("from a library that keeps its records")
            raise RuntimeError("the job failed")

    with without_handlers(bare_root):
        with pytest.raises(RuntimeError, match="the job failed"):
            job()
        assert bare_root.handlers == [] and library.handlers == []
    library.propagate = True
    assert bare_root.level == logging.WARNING
    log.warning("after the job")
    assert [line["message"] for line in stored(redis)] == ["from a library that keeps its records"]


def test_a_record_reaching_the_handler_twice_is_kept_once(
    redis: RedisClient, handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    with capture_job_logs(handler, loggers=["tests.propagating"]):
        logging.getLogger("tests.propagating").warning("once")
    assert [line["message"] for line in stored(redis)] == ["once"]


def test_the_worker_console_keeps_its_warnings_during_a_job(
    handler: JobLogHandler, bare_root: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    with without_handlers(bare_root), capture_job_logs(handler):
        assert logging.lastResort in bare_root.handlers
        log.warning("disk nearly full")
        log.info("not for the console")
    err = capsys.readouterr().err
    assert "disk nearly full" in err and "not for the console" not in err


def test_a_root_with_its_own_handlers_is_left_to_them(
    handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    console = logging.NullHandler()
    with without_handlers(bare_root):
        bare_root.addHandler(console)
        with capture_job_logs(handler):
            assert bare_root.handlers == [console, handler]
        assert bare_root.handlers == [console]


def test_other_threads_records_are_not_the_jobs(
    redis: RedisClient, handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    with capture_job_logs(handler):
        thread = threading.Thread(target=lambda: log.warning("reconciled job other-user-job"))
        thread.start()
        thread.join()
        log.info("mine")
    assert [line["message"] for line in stored(redis)] == ["mine"]


@pytest.mark.usefixtures("bare_root")
def test_a_redis_failure_is_counted_never_raised_and_not_retried_at_once(
    server: fakeredis.FakeServer,
    redis: RedisClient,
    handler: JobLogHandler,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with capture_job_logs(handler):
        log.info("before")
        server.connected = False
        log.info("lost")
        clock.now += 1.0
        log.info("dropped without trying")
        server.connected = True
        log.info("still in the cool-down")
        clock.now += 10.0
        log.info("after")
        assert handler.dropped == 3
    assert [line["message"] for line in stored(redis)] == ["before", "after"]
    assert "3 log lines of job job-1 were not stored" in caplog.text


def test_a_record_that_cannot_be_formatted_is_reported_like_logging_does(
    redis: RedisClient,
    handler: JobLogHandler,
    bare_root: logging.Logger,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with without_handlers(bare_root), capture_job_logs(handler):
        log.info("%d steps", "many")
        log.info("fine", extra={FIELDS_ATTR: ["not", "an", "object"]})
        log.info("next")
    assert [line["message"] for line in stored(redis)] == ["next"]
    assert "Logging error" in capsys.readouterr().err
    assert handler.dropped == 0


def test_an_exception_is_named_and_a_long_message_cut(
    redis: RedisClient, handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    with capture_job_logs(handler):
        try:
            raise KeyError("run_id")
        except KeyError:
            log.exception("could not load")
        log.info("x" * (MESSAGE_LIMIT + 10))
    first, second = stored(redis)
    assert first["level"] == "ERROR"
    assert first["message"] == "could not load (KeyError: 'run_id')"
    assert second["message"] == "x" * MESSAGE_LIMIT


class ChattyHandler(JobLogHandler):
    """Logs while it pushes, as a chatty Redis library might."""

    def _push(self, line: str) -> None:
        log.warning("pushing a line")
        super()._push(line)


def test_a_record_logged_while_pushing_one_is_skipped_not_recursed_into(
    redis: RedisClient, bare_root: logging.Logger
) -> None:
    handler = ChattyHandler(redis, domain="trainer", job_id="job-1", ttl_s=TTL_S)
    with capture_job_logs(handler):
        log.info("one")
        log.info("two")
    assert [line["message"] for line in stored(redis)] == ["one", "two"]


def test_limits_are_checked(redis: RedisClient) -> None:
    with pytest.raises(ValueError, match="max_lines"):
        JobLogHandler(redis, domain="trainer", job_id="j", ttl_s=TTL_S, max_lines=0)
    with pytest.raises(ValueError, match="ttl_s"):
        JobLogHandler(redis, domain="trainer", job_id="j", ttl_s=0)


def test_job_context_keeps_lines_as_long_as_its_event_stream(
    redis: RedisClient, bare_root: logging.Logger
) -> None:
    ctx = JobContext(
        redis, domain="trainer", job_id="job-1", user_id=1, queue="train", stream_ttl_s=600
    )
    with ctx.capture_logs(attempt=2):
        log.info("job started")
    (line,) = stored(redis)
    assert (line["message"], line.get("attempt")) == ("job started", 2)
    assert 0 < redis.ttl(KEY) <= 600


def test_reading_gives_the_newest_lines_oldest_first_and_the_total(
    redis: RedisClient, handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    with capture_job_logs(handler):
        for index in range(4):
            log.info("line %d", index)
    lines, total = read_job_logs(redis, "trainer", "job-1", tail=2)
    assert [line["message"] for line in lines] == ["line 2", "line 3"]
    assert total == 4
    assert read_job_logs(redis, "trainer", "nobody", tail=10) == ([], 0)
    with pytest.raises(ValueError, match="tail"):
        read_job_logs(redis, "trainer", "job-1", tail=0)


def test_a_line_another_writer_left_undecodable_is_skipped(
    redis: RedisClient, handler: JobLogHandler, bare_root: logging.Logger
) -> None:
    with capture_job_logs(handler):
        log.info("good")
    redis.rpush(KEY, b'{"level": "INFO"}', b"\xff\xfe", b"not json")
    lines, total = read_job_logs(redis, "trainer", "job-1", tail=10)
    assert [line["message"] for line in lines] == ["good"]
    assert total == 4
