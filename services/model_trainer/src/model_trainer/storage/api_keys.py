"""API keys: random bearer tokens, stored only as sha256 hashes, each naming one user.

A key reads `mtk_<key_id>_<secret>`. The key id is public (listings, revocation) and finds the
record in one Redis read; the secret's 256 random bits make a plain sha256 as good as a slow
password hash, so checking a key costs one HGETALL and one hash. Users get small integer ids on
their first key, so job records and events keep their numeric `user_id`.

- ``trainer:apikey:{key_id}``  hash: sha256, user, user_id, admin, created_at
- ``trainer:apikeys``          set of key ids (for `keys list`)
- ``trainer:users``            hash: user name -> user id
- ``trainer:users:next``       counter handing out user ids
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from typing_extensions import TypedDict

from model_trainer.contracts.jobs import DOMAIN
from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.storage.runs import utc_now
from platform_workers.redis_batch import PipelineBatch
from platform_workers.redis_conn import RedisClient, as_text

KEY_PREFIX = "mtk"
_KEY = re.compile(r"^mtk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_KEYS = f"{DOMAIN}:apikeys"
_USERS = f"{DOMAIN}:users"
_NEXT_USER = f"{DOMAIN}:users:next"


class Principal(TypedDict):
    """Who a request acts as."""

    user_id: int
    user: str
    admin: bool
    key_id: str


class KeyInfo(Principal):
    created_at: str


class KeyProof(TypedDict):
    """What the submission script checks again as it writes: the key's record still holds the
    key's sha256 (so a key revoked since its principal was cached writes nothing)."""

    record: str
    sha256: str


class CreatedKey(KeyInfo):
    """The only time the key itself is seen: it is not stored."""

    key: str


def _record_key(key_id: str) -> str:
    return f"{DOMAIN}:apikey:{key_id}"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def user_id_for(redis: RedisClient, user: str) -> int:
    """The user's id, handed out on first use; names are unique."""
    if not _USER.fullmatch(user):
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"user must match {_USER.pattern}, got {quoted(user)}",
            details={"field": "user"},
        )
    existing = redis.hget(_USERS, user)
    if existing is not None:
        return int(as_text(existing))
    candidate = int(redis.incr(_NEXT_USER))
    redis.hsetnx(_USERS, user, candidate)
    # Two first keys for one name at once: the name keeps the id that was stored first.
    return int(as_text(redis.hget(_USERS, user) or b"0"))


def create_key(redis: RedisClient, user: str, *, admin: bool = False) -> CreatedKey:
    user_id = user_id_for(redis, user)
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    created_at = utc_now()
    pipe = redis.pipeline()
    pipe.hset(
        _record_key(key_id),
        mapping={
            "sha256": _digest(key),
            "user": user,
            "user_id": user_id,
            "admin": int(admin),
            "created_at": created_at,
        },
    )
    pipe.sadd(_KEYS, key_id)
    pipe.execute()
    info: KeyInfo = {
        "key_id": key_id,
        "user": user,
        "user_id": user_id,
        "admin": admin,
        "created_at": created_at,
    }
    return {**info, "key": key}


def _text(raw: dict[bytes | str, bytes | str]) -> dict[str, str]:
    return {as_text(name): as_text(value) for name, value in raw.items()}


def _info(key_id: str, fields: dict[str, str]) -> KeyInfo:
    return {
        "key_id": key_id,
        "user": fields["user"],
        "user_id": int(fields["user_id"]),
        "admin": fields["admin"] == "1",
        "created_at": fields["created_at"],
    }


def list_keys(redis: RedisClient) -> list[KeyInfo]:
    key_ids = sorted(as_text(member) for member in redis.smembers(_KEYS))
    pipe = redis.pipeline()
    for key_id in key_ids:
        pipe.hgetall(_record_key(key_id))
    records: list[dict[bytes | str, bytes | str]] = pipe.execute()
    infos = [_info(key_id, _text(raw)) for key_id, raw in zip(key_ids, records, strict=True) if raw]
    return sorted(infos, key=lambda info: (info["user"], info["created_at"]))


def revoke_key(redis: RedisClient, key_id: str) -> bool:
    """True when the key existed; a revoked key fails its very next request."""
    pipe = redis.pipeline()
    pipe.delete(_record_key(key_id))
    pipe.srem(_KEYS, key_id)
    deleted, _ = pipe.execute()
    return bool(deleted)


def key_active(redis: RedisClient, key_id: str) -> bool:
    """Whether the key still exists (work submitted later on its behalf checks this)."""
    return bool(redis.exists(_record_key(key_id)))


def authenticate(redis: RedisClient, key: str) -> Principal | None:
    """The key's principal, or None for a malformed, unknown, revoked or forged key."""
    key_id = key_id_of(key)
    return None if key_id is None else checked(key, key_id, redis.hgetall(_record_key(key_id)))


async def authenticate_async(batch: PipelineBatch, key: str) -> Principal | None:
    """authenticate on an event loop (the API's dependency): the same one read, awaited in the
    loop turn's batch."""
    key_id = key_id_of(key)
    if key_id is None:
        return None
    record = _record_key(key_id)
    raw = await batch.run(lambda pipe: pipe.hgetall(record))
    if not isinstance(raw, dict):
        raise TypeError(f"HGETALL {record} replied {raw!r}")
    return checked(key, key_id, raw)


def key_proof(principal: Principal, key: str) -> KeyProof:
    return {"record": _record_key(principal["key_id"]), "sha256": _digest(key)}


def key_id_of(key: str) -> str | None:
    """The public id of a well-formed key."""
    match = _KEY.fullmatch(key)
    return None if match is None else match.group(1)


def checked(key: str, key_id: str, raw: dict[bytes | str, bytes | str]) -> Principal | None:
    """The principal of a key whose stored record (`raw`, empty once revoked) has its hash."""
    fields = _text(raw)
    if not hmac.compare_digest(fields.get("sha256", ""), _digest(key)):
        return None
    info = _info(key_id, fields)
    return {
        "user_id": info["user_id"],
        "user": info["user"],
        "admin": info["admin"],
        "key_id": key_id,
    }


def key_principal(redis: RedisClient, key_id: str) -> Principal | None:
    """Who a key acts as, by its public id, without the key itself: how a schedule's firing acts
    as the key that created it. None once the key is revoked."""
    fields = _text(redis.hgetall(_record_key(key_id)))
    if not fields:
        return None
    info = _info(key_id, fields)
    return {
        "user_id": info["user_id"],
        "user": info["user"],
        "admin": info["admin"],
        "key_id": key_id,
    }
