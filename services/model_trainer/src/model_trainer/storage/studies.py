"""Studies and their trials as typed records in Redis (key names from ``platform_workers.keys``).

A study is one JSON string, rewritten whole when its status changes (only the process holding
the study's lock, or the API cancelling it, writes it); its trials are a hash of JSON strings by
trial number. A user's studies are listed from a sorted set; the running ones from a set that
workers' maintenance walks. Everything read back is decoded field by field.
"""

from __future__ import annotations

import time

from model_trainer.contracts.jobs import DOMAIN
from model_trainer.contracts.studies import (
    MAX_STUDIES_PER_USER,
    PARAM_KINDS,
    PRUNERS,
    SAMPLERS,
    STUDY_ENDS,
    STUDY_STATUSES,
    TRIAL_STATES,
    Choice,
    ParamSpec,
    StudyEnd,
    StudyError,
    StudyRecord,
    StudySpec,
    StudyStatus,
    TrialRecord,
)
from model_trainer.errors import ModelTrainerError, quoted
from platform_core.json_types import (
    JSONObject,
    JSONValue,
    PayloadError,
    dump_json_object,
    load_json_object,
    optional_float,
    optional_int,
    optional_object,
    optional_str,
    require_bool,
    require_int,
    require_literal,
    require_object,
    require_str,
)
from platform_workers.keys import (
    running_studies_key,
    study_key,
    study_trials_key,
    user_studies_key,
)
from platform_workers.redis_conn import RedisClient, as_text


class StudyStore:
    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    def create(self, record: StudyRecord) -> None:
        """Store a new study and list it as its user's and as running; a user holds at most
        MAX_STUDIES_PER_USER studies."""
        index = user_studies_key(DOMAIN, record["user_id"])
        if self._redis.zcard(index) >= MAX_STUDIES_PER_USER:
            raise ModelTrainerError(
                "QUOTA_EXCEEDED",
                f"you have {MAX_STUDIES_PER_USER} studies, the limit; delete old ones first",
                details={"limit": MAX_STUDIES_PER_USER},
            )
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(study_key(DOMAIN, record["study_id"]), dump_json_object(record))
        pipe.zadd(index, {record["study_id"]: time.time()})
        pipe.sadd(running_studies_key(DOMAIN), record["study_id"])
        pipe.execute()

    def get(self, study_id: str) -> StudyRecord | None:
        raw = self._redis.get(study_key(DOMAIN, study_id))
        return None if raw is None else decode_study(load_json_object(raw))

    def require(self, study_id: str, user_id: int, *, admin: bool = False) -> StudyRecord:
        """The user's study (any study for an admin); another user's is as unknown as none."""
        record = self.get(study_id)
        if record is None or not (admin or record["user_id"] == user_id):
            raise ModelTrainerError(
                "STUDY_NOT_FOUND",
                f"study {quoted(study_id)} does not exist",
                details={"study_id": study_id[:64]},
            )
        return record

    def list_for_user(self, user_id: int, limit: int) -> list[StudyRecord]:
        """The user's studies, newest first."""
        ids = self._redis.zrevrange(user_studies_key(DOMAIN, user_id), 0, limit - 1)
        found = [self.get(as_text(study_id)) for study_id in ids]
        return [record for record in found if record is not None]

    def running(self) -> list[str]:
        return sorted(as_text(study_id) for study_id in self._redis.smembers(_RUNNING))

    def end(
        self,
        record: StudyRecord,
        status: StudyStatus,
        ended_by: StudyEnd,
        *,
        now: str,
        error: StudyError | None = None,
    ) -> StudyRecord:
        """Mark the study ended and stop listing it as running."""
        ended: StudyRecord = {
            **record,
            "status": status,
            "ended_by": ended_by,
            "error": error,
            "finished_at": now,
        }
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(study_key(DOMAIN, record["study_id"]), dump_json_object(ended))
        pipe.srem(_RUNNING, record["study_id"])
        pipe.execute()
        return ended

    def put_trial(self, study_id: str, trial: TrialRecord) -> None:
        self._redis.hset(
            study_trials_key(DOMAIN, study_id), str(trial["number"]), dump_json_object(trial)
        )

    def trials(self, study_id: str) -> list[TrialRecord]:
        """Every trial of the study, by number."""
        raw = self._redis.hgetall(study_trials_key(DOMAIN, study_id))
        decoded = [decode_trial(load_json_object(value)) for value in raw.values()]
        return sorted(decoded, key=lambda trial: trial["number"])


_RUNNING = running_studies_key(DOMAIN)


def _error(obj: JSONObject, field: str) -> StudyError | None:
    error = optional_object(obj, field)
    if error is None:
        return None
    return {"code": require_str(error, "code"), "message": require_str(error, "message")}


def _choice(value: JSONValue) -> Choice:
    if isinstance(value, str | int | float | bool):
        return value
    raise PayloadError("choices", f"a choice must be a string, number or boolean, got {value!r}")


def decode_param(obj: JSONObject) -> ParamSpec:
    choices = obj.get("choices")
    if choices is not None and not isinstance(choices, list):
        raise PayloadError("choices", "field 'choices' must be a list")
    return {
        "name": require_str(obj, "name"),
        "type": require_literal(obj, "type", PARAM_KINDS),
        "low": optional_float(obj, "low"),
        "high": optional_float(obj, "high"),
        "step": optional_float(obj, "step"),
        "log": require_bool(obj, "log"),
        "choices": None if choices is None else [_choice(value) for value in choices],
    }


def _params(obj: JSONObject) -> list[ParamSpec]:
    space = obj.get("search_space")
    if not isinstance(space, list):
        raise PayloadError("search_space", "field 'search_space' must be a list")
    params = []
    for item in space:
        if not isinstance(item, dict):
            raise PayloadError("search_space", "each parameter must be an object")
        params.append(decode_param(item))
    return params


def decode_spec(obj: JSONObject) -> StudySpec:
    return {
        "name": require_str(obj, "name"),
        "base": require_object(obj, "base"),
        "search_space": _params(obj),
        "sampler": require_literal(obj, "sampler", SAMPLERS),
        "pruner": require_literal(obj, "pruner", PRUNERS),
        "pruner_startup_trials": require_int(obj, "pruner_startup_trials"),
        "pruner_warmup_steps": require_int(obj, "pruner_warmup_steps"),
        "n_trials": require_int(obj, "n_trials"),
        "parallelism": require_int(obj, "parallelism"),
        "timeout_s": optional_int(obj, "timeout_s"),
        "metric": require_literal(obj, "metric", ("val_loss",)),
        "seed": require_int(obj, "seed"),
    }


def decode_study(obj: JSONObject) -> StudyRecord:
    ended_by = obj.get("ended_by")
    return {
        "study_id": require_str(obj, "study_id"),
        "user_id": require_int(obj, "user_id"),
        "user": require_str(obj, "user"),
        "key_id": require_str(obj, "key_id"),
        "admin": require_bool(obj, "admin"),
        "spec": decode_spec(require_object(obj, "spec")),
        "status": require_literal(obj, "status", STUDY_STATUSES),
        "ended_by": None if ended_by is None else require_literal(obj, "ended_by", STUDY_ENDS),
        "error": _error(obj, "error"),
        "created_at": require_str(obj, "created_at"),
        "finished_at": optional_str(obj, "finished_at"),
        "deadline": optional_float(obj, "deadline"),
    }


def decode_trial(obj: JSONObject) -> TrialRecord:
    return {
        "number": require_int(obj, "number"),
        "job_id": require_str(obj, "job_id"),
        "run_id": require_str(obj, "run_id"),
        "params": require_object(obj, "params"),
        "state": require_literal(obj, "state", TRIAL_STATES),
        "value": optional_float(obj, "value"),
        "error": _error(obj, "error"),
        "created_at": require_str(obj, "created_at"),
        "finished_at": optional_str(obj, "finished_at"),
    }
