"""Admit, claim, record and enqueue a job in one atomic Redis script: one round trip per job.

A submission used to be six round trips (admission counters, the id claim, the record, RQ's
queue set, RQ's job hash and push); as one Lua script it is one, and no other client ever sees
half of it: a job is either refused with nothing written, or counted, claimed, recorded and on
its RQ queue at once. The script refuses, in this order:

- UNAUTHENTICATED: the API key the caller's principal was cached for no longer holds (revoked);
- CORPUS_NOT_FOUND: the corpus the job reads is not (or no longer) one of the user's uploads;
- QUEUE_FULL: the queue class (every priority and device) holds MAX_QUEUE_DEPTH jobs;
- QUOTA_EXCEEDED: the user already has their limit of unended jobs on the queue (the caller may
  prune ended members and try once more, see api/admission.py);
- ID_TAKEN: the run or tokenizer id belongs to another user, or exists unclaimed on disk and the
  caller is not an admin.

RQ's job hash is what `Queue.enqueue_call` writes for the same call (`rq_job`): the fields
every job of one shape (function, queue, time limit, retries, TTLs) shares come from a job RQ
itself builds (`Queue.create_job`, `Job.to_dict`), once per shape; each job adds its times, its
description and its call. The call is stored as JSON, uncompressed: RQ reads an uncompressed
call as such (`Job.restore`), and building and compressing a job per submission was a sixth of
the API's time on a submit. The script stores that mapping, adds the queue to RQ's set of
queues and pushes the id, as RQ's own enqueue does in its pipeline.
tests/integration/test_submissions.py compares the hash with RQ's own, field by field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Literal, TypeAlias

import orjson
from redis import Redis
from redis.typing import EncodableT
from rq import Queue, Retry
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer
from rq.utils import utcformat
from typing_extensions import TypedDict

from model_trainer.contracts.jobs import DOMAIN, JobRecord
from model_trainer.storage.api_keys import KeyProof
from model_trainer.storage.job_store import created_score, encode_record
from platform_workers.keys import active_jobs_key, record_key, user_index_key
from platform_workers.redis_batch import PipelineBatch
from platform_workers.redis_conn import RedisClient, as_text

Refusal = Literal["UNAUTHENTICATED", "CORPUS_NOT_FOUND", "QUEUE_FULL", "QUOTA_EXCEEDED", "ID_TAKEN"]
_REFUSALS: tuple[Refusal, ...] = (
    "UNAUTHENTICATED",
    "CORPUS_NOT_FOUND",
    "QUEUE_FULL",
    "QUOTA_EXCEEDED",
    "ID_TAKEN",
)
_Args: TypeAlias = list[EncodableT]

# KEYS: 1 the user's active set, 2 the owners hash of the claimed id, 3 the user's corpora,
#       4 the record, 5 the user's job index, 6 the active-jobs index, 7 RQ's job hash,
#       8 RQ's queue, 9 RQ's set of queues, 10 the caller's API key record, 11.. the queues
#       counted for depth.
# ARGV: 1 job id, 2 now (seconds), 3 index score (microseconds), 4 depth limit, 5 active limit,
#       6 user id, 7 claimed id ('' none), 8 '1' when an unclaimed id is refused, 9 corpus id
#       ('' none), 10 the record's fields as a JSON object of strings, 11 RQ's text fields
#       likewise, 12 the key's sha256 ('' when the key was checked already), 13.. RQ's binary
#       fields as name, value pairs (its call).
# Fields travel as two JSON objects rather than as one argument each: a submission then costs
# a dozen arguments to encode, not a hundred.
SCRIPT = """
local job_id, user_id = ARGV[1], ARGV[6]
if ARGV[12] ~= '' and redis.call('HGET', KEYS[10], 'sha256') ~= ARGV[12] then
  return {'UNAUTHENTICATED', 0}
end
if ARGV[9] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[9]) == 0 then
  return {'CORPUS_NOT_FOUND', 0}
end
local depth = 0
for i = 11, #KEYS do depth = depth + redis.call('LLEN', KEYS[i]) end
if depth >= tonumber(ARGV[4]) then return {'QUEUE_FULL', depth} end
redis.call('ZADD', KEYS[1], ARGV[2], job_id)
local active = redis.call('ZCARD', KEYS[1])
if active > tonumber(ARGV[5]) then
  redis.call('ZREM', KEYS[1], job_id)
  return {'QUOTA_EXCEEDED', active - 1}
end
if ARGV[7] ~= '' then
  local owner = redis.call('HGET', KEYS[2], ARGV[7])
  if (owner == false and ARGV[8] == '1') or (owner ~= false and owner ~= user_id) then
    redis.call('ZREM', KEYS[1], job_id)
    return {'ID_TAKEN', 0}
  end
  redis.call('HSET', KEYS[2], ARGV[7], user_id)
end
local function hset(key, text_fields, first_binary)
  local fields = {}
  for name, value in pairs(cjson.decode(text_fields)) do
    fields[#fields + 1] = name
    fields[#fields + 1] = value
  end
  for i = first_binary, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('HSET', key, unpack(fields))
end
redis.call('DEL', KEYS[4])
hset(KEYS[4], ARGV[10], #ARGV + 1)
redis.call('ZADD', KEYS[5], ARGV[3], job_id)
redis.call('ZADD', KEYS[6], ARGV[3], job_id)
hset(KEYS[7], ARGV[11], 13)
redis.call('SADD', KEYS[9], KEYS[8])
redis.call('RPUSH', KEYS[8], job_id)
return {'OK', active}
"""


class Claim(TypedDict):
    """An id the job creates: taken for the user unless another user holds it, or it exists
    unclaimed (made before keys, or by the CLI) and `refuse_unclaimed` (not an admin)."""

    owners_key: str
    name: str
    refuse_unclaimed: bool


class RQJob(TypedDict):
    """RQ's hash of one job (`rq_job`): its key, its queue and its fields."""

    key: str
    origin: str
    text: dict[str, str]
    binary: list[bytes | str]


class RQCall(TypedDict):
    """What RQ's job hash says beside the call itself: the same for every job of one shape."""

    queue: str
    func: str
    timeout: int
    retries: int
    result_ttl: int
    failure_ttl: int


class Submission(TypedDict):
    """Everything the script needs for one job."""

    record: JobRecord
    active_key: str
    depth_keys: list[str]
    max_depth: int
    max_active: int
    claim: Claim | None
    # The user's corpora hash and the corpus id the job reads, when it must be theirs.
    corpus: tuple[str, str] | None
    rq_job: RQJob
    # The caller's key, when its principal came from the API's cache rather than from Redis.
    key_proof: KeyProof | None


class Outcome(TypedDict):
    """Refused (with the figure the refusal names: depth or active jobs), or enqueued."""

    refusal: Refusal | None
    count: int


def submit(redis: RedisClient, submission: Submission, now: float) -> Outcome:
    """EVAL, not EVALSHA: Redis caches the script by its digest either way, and the text in
    every call spares the NOSCRIPT round trip after a restart or a failover."""
    keys, args = script_call(submission, now)
    return outcome(redis.eval(SCRIPT, len(keys), *keys, *args))


async def submit_async(batch: PipelineBatch, submission: Submission, now: float) -> Outcome:
    """The same script from an event loop (the API's submit routes), in the turn's batch."""
    keys, args = script_call(submission, now)
    return outcome(await batch.run(lambda pipe: pipe.eval(SCRIPT, len(keys), *keys, *args)))


def script_call(submission: Submission, now: float) -> tuple[list[str], _Args]:
    record, claim, corpus = submission["record"], submission["claim"], submission["corpus"]
    rq, proof = submission["rq_job"], submission["key_proof"]
    job_id = record["job_id"]
    keys = [
        submission["active_key"],
        "" if claim is None else claim["owners_key"],
        "" if corpus is None else corpus[0],
        record_key(DOMAIN, job_id),
        user_index_key(DOMAIN, record["user_id"]),
        active_jobs_key(DOMAIN),
        rq["key"],
        Queue.redis_queue_namespace_prefix + rq["origin"],
        Queue.redis_queues_keys,
        "" if proof is None else proof["record"],
        *submission["depth_keys"],
    ]
    args: _Args = [
        job_id,
        repr(now),
        created_score(record["created_at"]),
        submission["max_depth"],
        submission["max_active"],
        record["user_id"],
        "" if claim is None else claim["name"],
        "1" if claim is not None and claim["refuse_unclaimed"] else "0",
        "" if corpus is None else corpus[1],
        orjson.dumps({str(name): str(value) for name, value in encode_record(record).items()}),
        orjson.dumps(rq["text"]),
        "" if proof is None else proof["sha256"],
        *rq["binary"],
    ]
    return keys, args


def rq_job(call: RQCall, payload: Mapping[str, object], *, job_id: str, description: str) -> RQJob:
    """The hash RQ's enqueue would write for `call` with `payload` as its one argument."""
    stamp = utcformat(datetime.now(UTC))
    text = {
        **_shape(**call),
        "created_at": stamp,
        "enqueued_at": stamp,
        "description": description,
    }
    data = orjson.dumps([call["func"], None, [payload], {}])
    return {
        "key": Job.key_for(job_id),
        "origin": call["queue"],
        "text": text,
        "binary": ["data", data],
    }


@lru_cache(maxsize=256)
def _shape(
    *, queue: str, func: str, timeout: int, retries: int, result_ttl: int, failure_ttl: int
) -> Mapping[str, str]:
    """The text fields of a job RQ builds for this shape, less those each job sets. Building
    a job does no I/O: the queue's client never connects."""
    job = Queue(queue, connection=Redis(), serializer=JSONSerializer).create_job(
        func,
        job_id="shape",
        timeout=timeout,
        retry=Retry(max=retries) if retries else None,
        result_ttl=result_ttl,
        failure_ttl=failure_ttl,
        status=JobStatus.QUEUED,
    )
    text, _ = rq_fields(job)
    for name in ("created_at", "enqueued_at", "description"):
        text.pop(name, None)
    return text


def rq_fields(job: Job) -> tuple[dict[str, str], list[bytes | str]]:
    """RQ's job hash as `Job.save` writes it: text fields (its integers as the digits redis-py
    would send), and binary ones as name, value pairs."""
    text: dict[str, str] = {}
    binary: list[bytes | str] = []
    for name, value in job.to_dict().items():
        if isinstance(value, bytes):
            binary += (str(name), value)
        elif isinstance(value, str):
            text[str(name)] = value.encode().decode()  # a str enum's text, as redis-py sends it
        elif isinstance(value, int):
            text[str(name)] = str(value)
        else:
            raise TypeError(f"RQ job field {name!r} has a {type(value).__name__} value")
    return text, binary


def outcome(raw: object) -> Outcome:
    """The script's reply: [code, figure]."""
    if not isinstance(raw, list) or len(raw) != 2 or not isinstance(raw[1], int):
        raise TypeError(f"the submission script replied {raw!r}")
    code = as_text(raw[0])
    if code == "OK":
        return {"refusal": None, "count": raw[1]}
    for refusal in _REFUSALS:
        if code == refusal:
            return {"refusal": refusal, "count": raw[1]}
    raise TypeError(f"the submission script replied {raw!r}")
