"""What a running job needs from Redis: publish events, heartbeat, see cancellation, cheaply.

Keys are named in ``platform_workers.keys``: each event goes to the domain's channel and to the
job's stream (field ``event``; bounded by an approximate MAXLEN, expiring after a TTL), and its
log lines, while ``capture_logs`` runs, to its log list (same TTL);
``heartbeat_at`` is written into the job's record hash; the job stops once its cancel flag exists.

The training loop calls ``heartbeat``, ``cancelled`` and ``publish_progress`` often; each reads
an injected clock and touches Redis at most once per its interval, so a step costs no round trip.
"""

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from platform_core.job_events import (
    ErrorKind,
    encode_job_event,
    make_completed_event,
    make_failed_event,
    make_progress_event,
    make_started_event,
)
from platform_core.json_types import JSONObject
from platform_core.trainer_metrics_events import (
    TrainerMetricsEventV1,
    encode_trainer_metrics_event,
)
from platform_workers.event_stream import EVENT_FIELD
from platform_workers.job_logs import JobLogHandler, capture_job_logs
from platform_workers.keys import cancel_key, event_stream_key, events_channel, record_key
from platform_workers.redis_conn import RedisClient, as_text

HEARTBEAT_FIELD = "heartbeat_at"


def _due(last: float | None, interval_s: float, now: float) -> bool:
    """Says whether a throttled action may run again (always, the first time)."""
    return last is None or now - last >= interval_s


def _iso_utc(timestamp: float) -> str:
    """Formats a unix timestamp the way job records store times."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds")


class JobContext:
    """One job's handle on Redis, created by the worker and handed to the loop's callbacks."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        domain: str,
        job_id: str,
        user_id: int,
        queue: str,
        stream_maxlen: int = 10_000,
        stream_ttl_s: int = 7 * 24 * 3600,
        progress_min_interval_s: float = 1.0,
        cancel_poll_interval_s: float = 0.5,
        heartbeat_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not domain or ":" in domain:
            raise ValueError(f"domain must be a non-empty name without ':', got {domain!r}")
        if stream_maxlen < 1 or stream_ttl_s < 1:
            raise ValueError(
                f"stream_maxlen and stream_ttl_s must be >= 1, got {stream_maxlen}, {stream_ttl_s}"
            )
        intervals = (progress_min_interval_s, cancel_poll_interval_s, heartbeat_interval_s)
        if min(intervals) < 0:
            raise ValueError(f"throttle intervals must be >= 0 seconds, got {intervals}")
        self._redis = redis
        self._domain = domain
        self.job_id = job_id
        self.user_id = user_id
        self.queue = queue
        self._channel = events_channel(domain)
        self._stream = event_stream_key(domain, job_id)
        self._record = record_key(domain, job_id)
        self._cancel = cancel_key(domain, job_id)
        self._stream_maxlen = stream_maxlen
        self._stream_ttl_s = stream_ttl_s
        self._progress_min_interval_s = progress_min_interval_s
        self._cancel_poll_interval_s = cancel_poll_interval_s
        self._heartbeat_interval_s = heartbeat_interval_s
        self._clock = clock
        self._last_progress: float | None = None
        self._last_heartbeat: float | None = None
        self._last_cancel_poll: float | None = None
        self._cancelled = False

    def publish(self, event_json: str) -> str:
        """Sends an event live and keeps it for replay, in one atomic round trip.

        Returns the stream entry id, which the SSE endpoint sends as the event id.
        """
        pipe = self._redis.pipeline(transaction=True)
        pipe.publish(self._channel, event_json)
        pipe.xadd(
            self._stream, {EVENT_FIELD: event_json}, maxlen=self._stream_maxlen, approximate=True
        )
        pipe.expire(self._stream, self._stream_ttl_s)
        _, entry_id, _ = pipe.execute()
        return as_text(entry_id)

    def capture_logs(
        self, *, attempt: int | None = None, loggers: Sequence[str] = ()
    ) -> AbstractContextManager[None]:
        """Keeps this thread's log records as the job's log lines while the block runs, expiring
        with its event stream (see `job_logs.capture_job_logs`)."""
        handler = JobLogHandler(
            self._redis,
            domain=self._domain,
            job_id=self.job_id,
            ttl_s=self._stream_ttl_s,
            attempt=attempt,
        )
        return capture_job_logs(handler, loggers=loggers)

    def publish_started(self) -> str:
        """Announces that a worker picked the job up."""
        event = make_started_event(job_id=self.job_id, user_id=self.user_id, queue=self.queue)
        return self.publish(encode_job_event(event))

    def publish_progress(
        self,
        progress: float,
        message: str,
        payload: JSONObject | None = None,
        *,
        force: bool = False,
    ) -> bool:
        """Publishes progress at most once per interval (unless forced); says whether it did."""
        now = self._clock()
        if not force and not _due(self._last_progress, self._progress_min_interval_s, now):
            return False
        event = make_progress_event(
            job_id=self.job_id,
            user_id=self.user_id,
            progress=progress,
            message=message,
            payload=payload,
        )
        self.publish(encode_job_event(event))
        self._last_progress = now
        return True

    def publish_completed(self, result_id: str, result_bytes: int) -> str:
        """Announces that the job stored its result."""
        event = make_completed_event(
            job_id=self.job_id,
            user_id=self.user_id,
            result_id=result_id,
            result_bytes=result_bytes,
        )
        return self.publish(encode_job_event(event))

    def publish_failed(self, error_kind: ErrorKind, code: str, message: str) -> str:
        """Announces that the job stopped with an error."""
        event = make_failed_event(
            job_id=self.job_id,
            user_id=self.user_id,
            error_kind=error_kind,
            code=code,
            message=message,
        )
        return self.publish(encode_job_event(event))

    def publish_metrics(self, event: TrainerMetricsEventV1) -> str:
        """Publishes a metrics event on the same channel and stream as lifecycle events."""
        return self.publish(encode_trainer_metrics_event(event))

    def heartbeat(self, now: float) -> None:
        """Records that the job is alive (`now` is a unix timestamp), at most once per interval."""
        tick = self._clock()
        if not _due(self._last_heartbeat, self._heartbeat_interval_s, tick):
            return
        self._redis.hset(self._record, HEARTBEAT_FIELD, _iso_utc(now))
        self._last_heartbeat = tick

    def cancelled(self) -> bool:
        """Says whether cancellation was requested, asking Redis at most once per interval.

        Once seen, cancellation is remembered: a cancelled job never un-cancels.
        """
        if self._cancelled:
            return True
        now = self._clock()
        if not _due(self._last_cancel_poll, self._cancel_poll_interval_s, now):
            return False
        self._last_cancel_poll = now
        self._cancelled = self._redis.exists(self._cancel) > 0
        return self._cancelled
