"""Per-job logs: a running job's `logging` records, kept in Redis beside its events.

While a job runs, `capture_job_logs` attaches a `JobLogHandler` to the root logger (and to any
named library logger that does not propagate), so the INFO-and-above records of the job's own
thread, from its code, its libraries and `warnings.warn` (through `logging.captureWarnings`),
become JSON lines (`platform_core.job_logs`) appended to the job's list (`keys.logs_key`). The
newest `max_lines` are kept and the list expires like the job's event stream. Each line is
pushed as it is logged, so nothing waits in a buffer when an RQ work horse exits.

Logging never breaks or slows the job: a Redis error is counted in `dropped`, never raised, and
for `cooldown_s` after one, lines are dropped without trying, so an outage costs one timeout
rather than one per line. Records of other threads (a worker's maintenance thread logs about
other users' jobs) are not this job's and are left alone.
"""

import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson
from redis.exceptions import RedisError

from platform_core.job_logs import JobLogLine, decode_log_line, encode_log_line, make_log_line
from platform_core.json_types import JSONObject, PayloadError, load_json_object
from platform_core.structured_logs import FIELDS_ATTR
from platform_workers.keys import logs_key
from platform_workers.redis_conn import RedisClient, as_text

logger = logging.getLogger(__name__)

LOG_LINES_KEPT = 1000
COOLDOWN_S = 10.0
MESSAGE_LIMIT = 8192


class JobLogHandler(logging.Handler):
    """Appends the records of the thread that made it to one job's log list in Redis."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        domain: str,
        job_id: str,
        ttl_s: int,
        attempt: int | None = None,
        max_lines: int = LOG_LINES_KEPT,
        cooldown_s: float = COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_lines < 1 or ttl_s < 1:
            raise ValueError(f"max_lines and ttl_s must be >= 1, got {max_lines}, {ttl_s}")
        super().__init__(logging.INFO)
        self._redis = redis
        self._key = logs_key(domain, job_id)
        self.job_id = job_id
        self._ttl_s = ttl_s
        self._attempt = attempt
        self._max_lines = max_lines
        self._cooldown_s = cooldown_s
        self._clock = clock
        self.thread = threading.get_ident()
        self.dropped = 0
        self._failed_at: float | None = None
        self._last: logging.LogRecord | None = None
        self._busy = False

    def emit(self, record: logging.LogRecord) -> None:
        # The same record reaches this handler twice when a library logger it is attached to
        # propagates after all; a record logged while pushing one (by redis-py) is skipped.
        if record.thread != self.thread or record is self._last or self._busy:
            return
        self._last = record
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < self._cooldown_s:
            self.dropped += 1
            return
        self._busy = True
        try:
            self._push(encode_log_line(self._line(record)))
        except RedisError:
            self.dropped += 1
            self._failed_at = now
        except Exception:
            # A record that cannot be formatted: logging's own policy (a note on stderr).
            self.handleError(record)
        finally:
            self._busy = False

    def _line(self, record: logging.LogRecord) -> JobLogLine:
        return make_log_line(
            ts=datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            level=record.levelname,
            logger=record.name,
            message=_message(record),
            job_id=self.job_id,
            attempt=self._attempt,
            fields=_fields(record),
        )

    def _push(self, line: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(self._key, line)
        pipe.ltrim(self._key, -self._max_lines, -1)
        pipe.expire(self._key, self._ttl_s)
        pipe.execute()


def _message(record: logging.LogRecord) -> str:
    """The formatted message, naming the exception a record carries (without its traceback)."""
    text = record.getMessage()
    error = record.exc_info[1] if record.exc_info else None
    if error is not None:
        text = f"{text} ({type(error).__name__}: {error})"
    return text[:MESSAGE_LIMIT]


def _fields(record: logging.LogRecord) -> JSONObject | None:
    """The record's structured `fields` as plain JSON (an odd value becomes its str)."""
    value = record.__dict__.get(FIELDS_ATTR)
    if value is None:
        return None
    return load_json_object(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


@contextmanager
def capture_job_logs(handler: JobLogHandler, *, loggers: Sequence[str] = ()) -> Iterator[None]:
    """Keeps the job's log lines while the block runs; everything is put back when it ends,
    however it ends, because a worker runs many jobs.

    `loggers` names library loggers that may not propagate to the root (transformers' does
    not). The root logger's level is lowered to INFO for the block if it was higher.
    """
    root = logging.getLogger()
    targets = [root, *(logging.getLogger(name) for name in loggers)]
    level = root.level
    # A handler on the root ends logging's last resort (WARNING and above to stderr when no
    # handler exists): made explicit for the block, the worker's console keeps its warnings.
    last_resort = logging.lastResort if not root.handlers else None
    with warnings.catch_warnings():
        logging.captureWarnings(True)
        for target in targets:
            target.addHandler(handler)
        if last_resort is not None:
            root.addHandler(last_resort)
        root.setLevel(min(level, logging.INFO))
        try:
            yield
        finally:
            for target in targets:
                target.removeHandler(handler)
            if last_resort is not None:
                root.removeHandler(last_resort)
            root.setLevel(level)
            logging.captureWarnings(False)
            if handler.dropped:
                logger.warning(
                    "%d log lines of job %s were not stored: Redis unreachable",
                    handler.dropped,
                    handler.job_id,
                )


def read_job_logs(
    redis: RedisClient, domain: str, job_id: str, *, tail: int
) -> tuple[list[JobLogLine], int]:
    """The job's newest `tail` lines, oldest first, and how many it keeps. A line another
    writer left undecodable is skipped (and logged): one bad entry hides nothing else."""
    if tail < 1:
        raise ValueError(f"tail must be >= 1, got {tail}")
    key = logs_key(domain, job_id)
    lines: list[JobLogLine] = []
    for raw in redis.lrange(key, -tail, -1):
        try:
            lines.append(decode_log_line(as_text(raw)))
        except (PayloadError, UnicodeDecodeError) as error:
            logger.warning("skipped an undecodable log line of job %s: %s", job_id, error)
    return lines, redis.llen(key)
