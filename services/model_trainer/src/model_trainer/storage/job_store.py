"""Typed job records in Redis: one hash per job and a per-user index for newest-first listing.

Keys come from ``platform_workers.keys`` under ``contracts.jobs.DOMAIN``, the names the
worker's JobContext uses too:

- the record is a hash of string fields; a None field is absent; ``result``, ``error`` and
  ``origin`` hold JSON; ``heartbeat_at`` is written by the worker's JobContext
- the per-user index is a sorted set of job ids, scored by ``created_at`` in microseconds since
  the epoch
- the cancel flag is set with a TTL

Listing pages by (score, job_id) position rather than by offset, so a job created between two
requests never shifts a page; job ids break ties between jobs created in the same microsecond.
"""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeAlias

from redis.typing import EncodableT, FieldT, ZSetRangeResponse

from model_trainer.contracts.jobs import (
    DOMAIN,
    ERROR_KINDS,
    JOB_STATUSES,
    JOB_TYPES,
    ORIGIN_KINDS,
    PRIORITIES,
    QUEUE_NAMES,
    TERMINAL_STATUSES,
    JobError,
    JobOrigin,
    JobRecord,
    JobStatus,
    JobType,
)
from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.storage.job_metrics import count_job_end
from platform_core.json_types import (
    JSONObject,
    PayloadError,
    dump_json_object,
    load_json_object,
    optional_int,
    optional_str,
    require_literal,
    require_str,
)
from platform_workers.keys import (
    active_jobs_key,
    cancel_key,
    record_key,
    user_active_key,
    user_index_key,
)
from platform_workers.redis_batch import PipelineBatch
from platform_workers.redis_conn import RedisClient, as_text

CANCEL_TTL_S = 7 * 24 * 3600
COMPLETED_MESSAGE = "completed"
_MIN_SCAN_BATCH = 16
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTEGER = re.compile(r"-?[0-9]+")
_CURSOR = re.compile(r"(-?[0-9]+):(.+)", re.DOTALL)

# Where a listing stands in the index: (score, job_id), ordered newest first.
_Position: TypeAlias = tuple[int, str]
_HashFields: TypeAlias = dict[FieldT, EncodableT]
# What an ending job's metrics need from its record: its type and first start.
_Ending: TypeAlias = tuple[JobType, str | None]


def created_score(created_at: str) -> int:
    """Turns created_at into the index score: microseconds since the epoch (naive means UTC)."""
    try:
        moment = datetime.fromisoformat(created_at)
    except ValueError as exc:
        message = f"field 'created_at' must be an ISO-8601 timestamp, got {created_at!r}"
        raise PayloadError("created_at", message) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _seconds_between(start: str, end: str) -> float | None:
    """Seconds from one ISO-8601 time to another (naive means UTC); None, rather than a failed
    job end, when either is not one."""
    try:
        return max(0, created_score(end) - created_score(start)) / 1e6
    except PayloadError:
        return None


def _check_progress(progress: float) -> None:
    """Refuses a progress fraction outside [0, 1] (NaN included) before it is stored."""
    if not 0.0 <= progress <= 1.0:
        raise PayloadError("progress", f"field 'progress' must be within [0, 1], got {progress}")


def encode_record(record: JobRecord) -> _HashFields:
    """Flattens a record into hash fields; a None value is left out rather than stored."""
    _check_progress(record["progress"])
    fields: _HashFields = {
        "job_id": record["job_id"],
        "user_id": str(record["user_id"]),
        "type": record["type"],
        "queue": record["queue"],
        "status": record["status"],
        "progress": repr(float(record["progress"])),
        "message": record["message"],
        "attempts": str(record["attempts"]),
        "created_at": record["created_at"],
        "priority": record["priority"],
    }
    optional = {
        "started_at": record["started_at"],
        "finished_at": record["finished_at"],
        "heartbeat_at": record["heartbeat_at"],
        "run_id": record["run_id"],
        "result": None if record["result"] is None else dump_json_object(record["result"]),
        "error": None if record["error"] is None else dump_json_object(record["error"]),
        "origin": None if record["origin"] is None else dump_json_object(record["origin"]),
    }
    fields.update({name: value for name, value in optional.items() if value is not None})
    return fields


def _text_fields(raw: dict[bytes | str, bytes | str]) -> JSONObject:
    """Decodes hash fields to text, naming the field whose bytes are not UTF-8."""
    fields: JSONObject = {}
    for key, value in raw.items():
        name = as_text(key)
        try:
            fields[name] = as_text(value)
        except UnicodeDecodeError as exc:
            raise PayloadError(name, f"field '{name}' is not UTF-8 text") from exc
    return fields


def _int_field(fields: JSONObject, name: str) -> int:
    """Reads a decimal integer field, refusing anything int() would merely tolerate."""
    text = require_str(fields, name)
    if _INTEGER.fullmatch(text) is None:
        raise PayloadError(name, f"field '{name}' must be an integer, got {text!r}")
    return int(text)


def _progress_field(fields: JSONObject) -> float:
    """Reads the progress fraction, which must be a number within [0, 1]."""
    text = require_str(fields, "progress")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        message = f"field 'progress' must be a number within [0, 1], got {text!r}"
        raise PayloadError("progress", message)
    return value


def _json_field(fields: JSONObject, name: str) -> JSONObject | None:
    """Reads an optional field holding a JSON object."""
    text = optional_str(fields, name)
    if text is None:
        return None
    try:
        return load_json_object(text)
    except PayloadError as exc:
        raise PayloadError(name, f"field '{name}': {exc}") from exc


def _error_field(fields: JSONObject) -> JobError | None:
    """Reads the optional error, naming the inner field (e.g. error.kind) that is wrong."""
    error = _json_field(fields, "error")
    if error is None:
        return None
    try:
        return {
            "code": require_str(error, "code"),
            "kind": require_literal(error, "kind", ERROR_KINDS),
            "message": require_str(error, "message"),
        }
    except PayloadError as exc:
        raise PayloadError(f"error.{exc.field}", f"field 'error': {exc}") from exc


def _origin_field(fields: JSONObject) -> JobOrigin | None:
    origin = _json_field(fields, "origin")
    if origin is None:
        return None
    try:
        return {
            "kind": require_literal(origin, "kind", ORIGIN_KINDS),
            "id": require_str(origin, "id"),
            "trial": optional_int(origin, "trial"),
        }
    except PayloadError as exc:
        raise PayloadError(f"origin.{exc.field}", f"field 'origin': {exc}") from exc


def _decode(raw: dict[bytes | str, bytes | str]) -> JobRecord:
    """Validates every field of a stored hash, so a half-typed record never flows on."""
    fields = _text_fields(raw)
    return {
        "job_id": require_str(fields, "job_id"),
        "user_id": _int_field(fields, "user_id"),
        "type": require_literal(fields, "type", JOB_TYPES),
        "queue": require_literal(fields, "queue", QUEUE_NAMES),
        "status": require_literal(fields, "status", JOB_STATUSES),
        "progress": _progress_field(fields),
        "message": require_str(fields, "message"),
        "attempts": _int_field(fields, "attempts"),
        "created_at": require_str(fields, "created_at"),
        "started_at": optional_str(fields, "started_at"),
        "finished_at": optional_str(fields, "finished_at"),
        "heartbeat_at": optional_str(fields, "heartbeat_at"),
        "run_id": optional_str(fields, "run_id"),
        "result": _json_field(fields, "result"),
        "error": _error_field(fields),
        # Records written before priorities existed were all normal.
        "priority": require_literal(fields, "priority", PRIORITIES)
        if "priority" in fields
        else "normal",
        "origin": _origin_field(fields),
    }


def _encode_cursor(position: _Position) -> str:
    """Makes a position opaque, so clients pass it back rather than build one."""
    score, job_id = position
    return base64.urlsafe_b64encode(f"{score}:{job_id}".encode()).decode("ascii")


def _decode_cursor(cursor: str) -> _Position:
    """Reads a cursor from a previous page, refusing anything else with a clear message."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except ValueError:
        text = ""
    match = _CURSOR.fullmatch(text)
    if match is None:
        message = f"cursor {quoted(cursor)} is not one returned by a previous page of this listing"
        raise ModelTrainerError("INVALID_CONFIG", message, details={"field": "cursor"})
    return int(match[1]), match[2]


def _position(entry: bytes | str | tuple[bytes | str, object] | list[object]) -> _Position:
    """Turns one (member, score) index entry into a position."""
    if isinstance(entry, bytes | str) or len(entry) != 2:
        raise TypeError(f"index entries must be (member, score) pairs, got {entry!r}")
    member, score = entry
    if not isinstance(score, int | float):
        raise TypeError(f"index scores must be numbers, got {score!r}")
    return int(score), as_text(member)


def index_positions(entries: ZSetRangeResponse) -> list[_Position]:
    """Turns a ZREVRANGEBYSCORE ... WITHSCORES reply into positions."""
    return [_position(entry) for entry in entries]


def _matches(record: JobRecord, status: JobStatus | None, job_type: JobType | None) -> bool:
    """Applies the listing filters; None means any."""
    return (status is None or record["status"] == status) and (
        job_type is None or record["type"] == job_type
    )


class JobStore:
    """Reads and writes job records; the API and workers share it."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    def create(self, record: JobRecord) -> None:
        """Stores a new record (replacing any stale one) and indexes it for its user and, until
        it ends, among the active jobs."""
        score = created_score(record["created_at"])
        key = record_key(DOMAIN, record["job_id"])
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=encode_record(record))
        pipe.zadd(user_index_key(DOMAIN, record["user_id"]), {record["job_id"]: score})
        if record["status"] not in TERMINAL_STATUSES:
            pipe.zadd(active_jobs_key(DOMAIN), {record["job_id"]: score})
        pipe.execute()

    def active(self, *, created_before: str) -> list[str]:
        """Ids of jobs not yet ended that were created before `created_before`, oldest first."""
        cutoff = created_score(created_before)
        ids = self._redis.zrangebyscore(active_jobs_key(DOMAIN), "-inf", f"({cutoff}")
        return [as_text(job_id) for job_id in ids]

    def forget_active(self, job_id: str) -> None:
        """Drops a job from the active index (its record ended or is gone)."""
        self._redis.zrem(active_jobs_key(DOMAIN), job_id)

    def get(self, job_id: str) -> JobRecord | None:
        """Returns the decoded record, or None when no such job exists."""
        raw = self._redis.hgetall(record_key(DOMAIN, job_id))
        return _decode(raw) if raw else None

    async def get_async(self, batch: PipelineBatch, job_id: str) -> JobRecord | None:
        """get on an event loop, in the loop turn's batch."""
        key = record_key(DOMAIN, job_id)
        raw = await batch.run(lambda pipe: pipe.hgetall(key))
        if not isinstance(raw, dict):
            raise TypeError(f"HGETALL {key} replied {raw!r}")
        return _decode(raw) if raw else None

    def status(self, job_id: str) -> JobStatus | None:
        """The record's status alone (one HGET), None when there is no record or it is not a
        status: for a caller that must not fail on a damaged record."""
        raw = self._redis.hget(record_key(DOMAIN, job_id), "status")
        text = None if raw is None else as_text(raw)
        return next((status for status in JOB_STATUSES if status == text), None)

    def get_many(self, job_ids: list[str]) -> list[JobRecord | None]:
        """`get` for many jobs in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hgetall(record_key(DOMAIN, job_id))
        return [_decode(raw) if raw else None for raw in pipe.execute()]

    def mark_running(self, job_id: str, *, now: str) -> int:
        """Marks an attempt as started and returns its number (1 for the first attempt).

        started_at keeps the first attempt's time; fields of an earlier attempt's end are cleared.
        """
        key = self._existing_key(job_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, "status", "running")
        pipe.hsetnx(key, "started_at", now)
        pipe.hdel(key, "finished_at", "result", "error")
        pipe.hincrby(key, "attempts", 1)
        attempts = pipe.execute()[-1]
        return int(attempts)

    def requeue(self, job_id: str, message: str) -> None:
        """Puts a started job back to `queued` (its worker stopped it to be resumed elsewhere);
        attempts and started_at keep counting from its first start."""
        key = self._existing_key(job_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"status": "queued", "message": message})
        pipe.hdel(key, "finished_at", "result", "error")
        pipe.execute()

    def set_progress(self, job_id: str, progress: float, message: str) -> None:
        """Records how far the job got, as a fraction in [0, 1]."""
        _check_progress(progress)
        key = self._existing_key(job_id)
        fields: _HashFields = {"progress": repr(float(progress)), "message": message}
        self._redis.hset(key, mapping=fields)

    def complete(self, job_id: str, *, result: JSONObject, now: str) -> None:
        """Records the job's result and marks it completed."""
        key, owner_active, ending = self._ending(job_id)
        fields: _HashFields = {
            "status": "completed",
            "progress": repr(1.0),
            "message": COMPLETED_MESSAGE,
            "finished_at": now,
            "result": dump_json_object(result),
        }
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)
        pipe.hdel(key, "error")
        pipe.zrem(active_jobs_key(DOMAIN), job_id)
        pipe.zrem(owner_active, job_id)
        self._count_once(pipe.execute()[2], ending, "completed", "", now)

    def fail(
        self,
        job_id: str,
        *,
        error: JobError,
        status: Literal["failed", "cancelled"],
        now: str,
    ) -> None:
        """Records why the job ended without a result."""
        key, owner_active, ending = self._ending(job_id)
        fields: _HashFields = {
            "status": status,
            "message": error["message"],
            "finished_at": now,
            "error": dump_json_object(error),
        }
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)
        pipe.hdel(key, "result")
        pipe.zrem(active_jobs_key(DOMAIN), job_id)
        pipe.zrem(owner_active, job_id)
        self._count_once(pipe.execute()[2], ending, status, error["code"], now)

    def request_cancel(self, job_id: str) -> None:
        """Raises the flag a running job's JobContext.cancelled() polls."""
        self._redis.set(cancel_key(DOMAIN, job_id), b"1", ex=CANCEL_TTL_S)

    def list_for_user(
        self,
        user_id: int,
        *,
        status: JobStatus | None = None,
        job_type: JobType | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        """Returns up to `limit` matching records, newest first, and the next page's cursor.

        The cursor is None when no matching record is left; filters apply while scanning, so a
        page is short only at the end.
        """
        if limit < 1:
            raise ModelTrainerError("INVALID_CONFIG", f"limit must be >= 1, got {limit}")
        index = user_index_key(DOMAIN, user_id)
        position = None if cursor is None else _decode_cursor(cursor)
        batch = max(limit + 1, _MIN_SCAN_BATCH)
        found: list[tuple[JobRecord, _Position]] = []
        while len(found) <= limit:
            positions, exhausted = self._scan(index, position, batch)
            found += [hit for hit in self._load(positions) if _matches(hit[0], status, job_type)]
            if exhausted:
                break
            position = positions[-1]
        page = found[:limit]
        next_cursor = _encode_cursor(page[-1][1]) if len(found) > limit else None
        return [record for record, _ in page], next_cursor

    def _ending(self, job_id: str) -> tuple[str, str, _Ending]:
        """The record's key, its user's active set (admission control), which the ending job
        leaves, and its type and first start (its metrics); a record that was never created is
        refused, as in `_existing_key`."""
        key = record_key(DOMAIN, job_id)
        user_id, queue, job_type, started_at = self._redis.hmget(
            key, ["user_id", "queue", "type", "started_at"]
        )
        if user_id is None or queue is None or job_type is None:
            raise ModelTrainerError("JOB_NOT_FOUND", f"job {quoted(job_id)} does not exist")
        fields: JSONObject = {"type": as_text(job_type)}
        ending: _Ending = (
            require_literal(fields, "type", JOB_TYPES),
            None if started_at is None else as_text(started_at),
        )
        return key, user_active_key(DOMAIN, int(as_text(user_id)), as_text(queue)), ending

    def _count_once(
        self, left_active: int, ending: _Ending, status: JobStatus, code: str, now: str
    ) -> None:
        """Counts the job's end for /metrics (`storage.job_metrics`), only if this call took it
        out of the active jobs: a job ended twice (a worker finishing what the reconciler
        already declared lost) is counted once, as it first ended."""
        if not left_active:
            return
        job_type, started_at = ending
        duration_s = None if started_at is None else _seconds_between(started_at, now)
        count_job_end(
            self._redis, job_type=job_type, status=status, code=code, duration_s=duration_s
        )

    def _existing_key(self, job_id: str) -> str:
        """Refuses to write into a record that was never created (a partial hash is corrupt)."""
        key = record_key(DOMAIN, job_id)
        if not self._redis.exists(key):
            raise ModelTrainerError("JOB_NOT_FOUND", f"job {quoted(job_id)} does not exist")
        return key

    def _scan(
        self, index: str, after: _Position | None, batch: int
    ) -> tuple[list[_Position], bool]:
        """Reads index positions strictly after `after`; says whether the index is exhausted.

        Jobs sharing `after`'s score are read in full and those not yet passed are kept: Redis
        orders equal scores by member, descending, as positions compare here.
        """
        if after is None:
            top = self._redis.zrevrangebyscore(
                index, "+inf", "-inf", start=0, num=batch, withscores=True
            )
            return index_positions(top), len(top) < batch
        score, job_id = after
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrevrangebyscore(index, score, score, withscores=True)
        pipe.zrevrangebyscore(index, f"({score}", "-inf", start=0, num=batch, withscores=True)
        ties, older = pipe.execute()
        rest = [tie for tie in index_positions(ties) if tie[1] < job_id]
        return rest + index_positions(older), len(older) < batch

    def _load(self, positions: list[_Position]) -> list[tuple[JobRecord, _Position]]:
        """Fetches the records at these positions in one round trip, skipping vanished ones."""
        records = self.get_many([job_id for _, job_id in positions])
        pairs = zip(records, positions, strict=True)
        return [(record, position) for record, position in pairs if record is not None]
