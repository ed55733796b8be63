"""Schedules as typed Redis records (key names from ``platform_workers.keys``).

- a schedule is a hash: who owns it (user id, and the key that created it, which its firings
  act with), the job type and request body (JSON) it submits, when (`cron` or `interval_s`),
  `paused`, `created_at`, and `last_fired_at`, which the missed-firing rule counts from
- its newest firings are a list beside it (JSON, newest first, FIRINGS_KEPT of them)
- it is listed in its user's sorted set (the per-user cap) and in the set of every schedule
  (what schedulers read); every change a scheduler must see bumps one version counter, so an
  idle scheduler reads one key a pass instead of every record

A slot fires at most once, even with two schedulers running: `claim` moves `last_fired_at` from
the value the scheduler computed the slot from to the firing time, in one WATCH/MULTI
transaction, and only one claim of a slot can find that value still there.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from redis.client import Pipeline
from redis.typing import EncodableT, FieldT
from typing_extensions import TypedDict

from model_trainer.contracts import limits as L
from model_trainer.contracts.jobs import DOMAIN, JOB_TYPES, JobType
from model_trainer.errors import ModelTrainerError
from platform_core.json_types import (
    JSONObject,
    PayloadError,
    dump_json_object,
    load_json_object,
    optional_object,
    optional_str,
    require_literal,
    require_str,
)
from platform_workers.keys import (
    schedule_firings_key,
    schedule_key,
    schedules_key,
    schedules_version_key,
    user_schedules_key,
)
from platform_workers.redis_conn import RedisClient, as_text

T = TypeVar("T")
logger = logging.getLogger(__name__)
_INTEGER = re.compile(r"-?[0-9]+")


class FiringError(TypedDict):
    """Why a firing submitted nothing: the code and message the submission was refused with."""

    code: str
    message: str


class Firing(TypedDict):
    """One slot of a schedule: when it was due, when it fired, and the job or the refusal."""

    scheduled_for: str
    fired_at: str
    job_id: str | None
    error: FiringError | None


class ScheduleRecord(TypedDict):
    schedule_id: str
    user_id: int
    # The API key the schedule was made with: firings act as it, and stop once it is revoked.
    key_id: str
    name: str | None
    job_type: JobType
    # The body of `POST /v1/jobs/{job_type}`, as it was sent.
    request: JSONObject
    cron: str | None
    interval_s: int | None
    paused: bool
    created_at: str
    last_fired_at: str | None
    # Firings that submitted a job, and firings that were refused.
    fired: int
    refused: int


def _text_fields(raw: dict[bytes | str, bytes | str]) -> JSONObject:
    return {as_text(name): as_text(value) for name, value in raw.items()}


def _int_field(fields: JSONObject, name: str) -> int:
    text = require_str(fields, name)
    if _INTEGER.fullmatch(text) is None:
        raise PayloadError(name, f"field '{name}' must be an integer, got {text!r}")
    return int(text)


def _time_text(name: str, text: str) -> str:
    """An ISO-8601 time with its offset, which timing computes with."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise PayloadError(
            name, f"field '{name}' must be an ISO-8601 time with offset, got {text!r}"
        )
    return text


def _decode(raw: dict[bytes | str, bytes | str]) -> ScheduleRecord:
    """Every field checked, so a half-typed record never reaches a scheduler or a response."""
    fields = _text_fields(raw)
    interval = optional_str(fields, "interval_s")
    last_fired_at = optional_str(fields, "last_fired_at")
    if (fields.get("cron") is None) == (interval is None):
        raise PayloadError("cron", "a schedule has exactly one of cron and interval_s")
    return {
        "schedule_id": require_str(fields, "schedule_id"),
        "user_id": _int_field(fields, "user_id"),
        "key_id": require_str(fields, "key_id"),
        "name": optional_str(fields, "name"),
        "job_type": require_literal(fields, "job_type", JOB_TYPES),
        "request": load_json_object(require_str(fields, "request")),
        "cron": optional_str(fields, "cron"),
        "interval_s": None if interval is None else _int_field(fields, "interval_s"),
        "paused": require_literal(fields, "paused", ("0", "1")) == "1",
        "created_at": _time_text("created_at", require_str(fields, "created_at")),
        "last_fired_at": None
        if last_fired_at is None
        else _time_text("last_fired_at", last_fired_at),
        "fired": _int_field(fields, "fired"),
        "refused": _int_field(fields, "refused"),
    }


def _encode(record: ScheduleRecord) -> dict[FieldT, EncodableT]:
    """Hash fields; a None value is left out."""
    fields: dict[FieldT, EncodableT] = {
        "schedule_id": record["schedule_id"],
        "user_id": str(record["user_id"]),
        "key_id": record["key_id"],
        "job_type": record["job_type"],
        "request": dump_json_object(record["request"]),
        "paused": "1" if record["paused"] else "0",
        "created_at": record["created_at"],
        "fired": str(record["fired"]),
        "refused": str(record["refused"]),
    }
    optional = {
        "name": record["name"],
        "cron": record["cron"],
        "interval_s": None if record["interval_s"] is None else str(record["interval_s"]),
        "last_fired_at": record["last_fired_at"],
    }
    fields.update({name: value for name, value in optional.items() if value is not None})
    return fields


def decode_firing(text: str) -> Firing:
    obj = load_json_object(text)
    error = optional_object(obj, "error")
    return {
        "scheduled_for": require_str(obj, "scheduled_for"),
        "fired_at": require_str(obj, "fired_at"),
        "job_id": optional_str(obj, "job_id"),
        "error": None
        if error is None
        else {"code": require_str(error, "code"), "message": require_str(error, "message")},
    }


class ScheduleStore:
    """Reads and writes one Redis's schedules; routes check who may see which."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    def _transact(self, key: str, body: Callable[[Pipeline], T]) -> T:
        """Runs `body` (reads, then `pipe.multi()` and queued writes) under WATCH of `key`
        until the key did not change before the writes ran."""
        results: list[T] = []

        def attempt(pipe: Pipeline) -> None:
            results[:] = [body(pipe)]

        self._redis.transaction(attempt, key)
        return results[0]

    def version(self) -> int:
        """Bumped by every change a scheduler must see (create, pause, resume, delete, claim)."""
        raw = self._redis.get(schedules_version_key(DOMAIN))
        return 0 if raw is None else int(as_text(raw))

    def create(self, record: ScheduleRecord, *, limit: int) -> ScheduleRecord:
        """Stores a new schedule, refused (QUOTA_EXCEEDED) once its user has `limit`."""
        schedule_id = record["schedule_id"]
        index = user_schedules_key(DOMAIN, record["user_id"])
        score = datetime.fromisoformat(record["created_at"]).timestamp()

        def body(pipe: Pipeline) -> ScheduleRecord:
            if int(pipe.zcard(index)) >= limit:
                raise ModelTrainerError(
                    "QUOTA_EXCEEDED",
                    f"a user may keep at most {limit} schedules (MAX_SCHEDULES_PER_USER); "
                    "delete one first",
                    details={"limit": limit},
                )
            pipe.multi()
            pipe.hset(schedule_key(DOMAIN, schedule_id), mapping=_encode(record))
            pipe.zadd(index, {schedule_id: score})
            pipe.zadd(schedules_key(DOMAIN), {schedule_id: score})
            pipe.incr(schedules_version_key(DOMAIN))
            return record

        return self._transact(index, body)

    def get(self, schedule_id: str) -> ScheduleRecord | None:
        raw = self._redis.hgetall(schedule_key(DOMAIN, schedule_id))
        return _decode(raw) if raw else None

    def _rows(self, index: str) -> list[dict[bytes | str, bytes | str]]:
        """The hashes an index lists, in its order; one deleted meanwhile is left out."""
        pipe = self._redis.pipeline(transaction=False)
        for schedule_id in self._redis.zrange(index, 0, -1):
            pipe.hgetall(schedule_key(DOMAIN, as_text(schedule_id)))
        rows: list[dict[bytes | str, bytes | str]] = pipe.execute()
        return [raw for raw in rows if raw]

    def list_for_user(self, user_id: int) -> list[ScheduleRecord]:
        """The user's schedules, oldest first (at most MAX_SCHEDULES_PER_USER)."""
        return [_decode(raw) for raw in self._rows(user_schedules_key(DOMAIN, user_id))]

    def every(self) -> list[ScheduleRecord]:
        """Every user's schedules, oldest first: what a scheduler syncs from. A record that
        does not decode is logged and left out, so it cannot stop the others firing."""
        records: list[ScheduleRecord] = []
        for raw in self._rows(schedules_key(DOMAIN)):
            try:
                records.append(_decode(raw))
            except ValueError as exc:  # PayloadError, or bytes that are not UTF-8
                logger.warning("schedule record left out: %s", exc)
        return records

    def set_paused(self, schedule_id: str, paused: bool) -> ScheduleRecord | None:
        """Pauses or resumes; None when the schedule no longer exists."""
        key = schedule_key(DOMAIN, schedule_id)

        def body(pipe: Pipeline) -> ScheduleRecord | None:
            raw = pipe.hgetall(key)
            if not raw:
                return None
            pipe.multi()
            pipe.hset(key, "paused", "1" if paused else "0")
            pipe.incr(schedules_version_key(DOMAIN))
            return {**_decode(raw), "paused": paused}

        return self._transact(key, body)

    def delete(self, schedule_id: str, user_id: int) -> None:
        """Removes the schedule and its firings; the jobs it submitted stay."""
        pipe = self._redis.pipeline()
        pipe.delete(schedule_key(DOMAIN, schedule_id), schedule_firings_key(DOMAIN, schedule_id))
        pipe.zrem(user_schedules_key(DOMAIN, user_id), schedule_id)
        pipe.zrem(schedules_key(DOMAIN), schedule_id)
        pipe.incr(schedules_version_key(DOMAIN))
        pipe.execute()

    def claim(self, schedule_id: str, *, since: str | None, fired_at: str) -> bool:
        """Takes the slot that follows `since` (the `last_fired_at` the scheduler read) by
        setting `last_fired_at` to `fired_at`. False when another scheduler took it first, or the
        schedule was paused or deleted meanwhile."""
        key = schedule_key(DOMAIN, schedule_id)

        def body(pipe: Pipeline) -> bool:
            raw = pipe.hgetall(key)
            if not raw:
                return False
            current = _decode(raw)
            if current["paused"] or current["last_fired_at"] != since:
                return False
            pipe.multi()
            pipe.hset(key, "last_fired_at", fired_at)
            pipe.incr(schedules_version_key(DOMAIN))
            return True

        return self._transact(key, body)

    def record_firing(self, schedule_id: str, firing: Firing) -> None:
        """Appends a firing to the schedule's history and counts it; dropped when the schedule
        was deleted while it fired (its job, if any, still exists)."""
        key = schedule_key(DOMAIN, schedule_id)
        history = schedule_firings_key(DOMAIN, schedule_id)

        def body(pipe: Pipeline) -> None:
            if not pipe.exists(key):
                return
            pipe.multi()
            pipe.lpush(history, dump_json_object(firing))
            pipe.ltrim(history, 0, L.FIRINGS_KEPT - 1)
            pipe.hincrby(key, "refused" if firing["error"] else "fired", 1)

        self._transact(key, body)

    def firings(self, schedule_id: str) -> list[Firing]:
        """The newest firings, newest first."""
        rows = self._redis.lrange(schedule_firings_key(DOMAIN, schedule_id), 0, -1)
        return [decode_firing(as_text(row)) for row in rows]
