"""Who owns each run, tokenizer and uploaded corpus, so every user sees only their own.

Runs and tokenizers share one namespace of ids on disk; the first submission that names an id
claims it (HSETNX), so no user can train into, resume or read another's run. Uploaded corpora
are stored once per content (sha256); each uploader's copy is an entry in their own hash, which
also sums their stored bytes for the quota. Artifacts that nobody claimed (made by the local
CLI, or before keys existed) belong to admins only.

- ``trainer:owners:run``        hash run id -> user id
- ``trainer:owners:tokenizer``  hash tokenizer id -> user id
- ``trainer:user:{id}:corpora`` hash corpus id -> bytes
"""

from __future__ import annotations

from typing import Literal

from model_trainer.contracts.jobs import DOMAIN
from model_trainer.storage.api_keys import Principal
from platform_workers.redis_batch import PipelineBatch
from platform_workers.redis_conn import RedisClient, as_text

Owned = Literal["run", "tokenizer"]


def owners_key(kind: Owned) -> str:
    return f"{DOMAIN}:owners:{kind}"


def corpora_key(user_id: int) -> str:
    return f"{DOMAIN}:user:{user_id}:corpora"


def claim(redis: RedisClient, kind: Owned, name: str, user_id: int) -> bool:
    """Take the id for the user; True when it is now (or already was) theirs."""
    return bool(redis.hsetnx(owners_key(kind), name, user_id)) or (
        owner_of(redis, kind, name) == user_id
    )


def owner_of(redis: RedisClient, kind: Owned, name: str) -> int | None:
    owner = redis.hget(owners_key(kind), name)
    return None if owner is None else int(as_text(owner))


async def owner_of_async(batch: PipelineBatch, kind: Owned, name: str) -> int | None:
    """owner_of on an event loop, in the loop turn's batch."""
    key = owners_key(kind)
    owner = await batch.run(lambda pipe: pipe.hget(key, name))
    if owner is None:
        return None
    if not isinstance(owner, bytes):
        raise TypeError(f"HGET {key} {name} replied {owner!r}")
    return int(owner)


def may_use(redis: RedisClient, kind: Owned, names: list[str], caller: Principal) -> list[bool]:
    """Which of the ids the caller may see: their own, or any for an admin."""
    if caller["admin"] or not names:
        return [True] * len(names)
    owners = redis.hmget(owners_key(kind), names)
    return [owner is not None and int(as_text(owner)) == caller["user_id"] for owner in owners]


def owns(redis: RedisClient, kind: Owned, name: str, caller: Principal) -> bool:
    return may_use(redis, kind, [name], caller)[0]


def add_corpus(redis: RedisClient, user_id: int, corpus_id: str, size: int) -> None:
    redis.hset(corpora_key(user_id), corpus_id, size)


def has_corpus(redis: RedisClient, corpus_id: str, caller: Principal) -> bool:
    return caller["admin"] or bool(redis.hexists(corpora_key(caller["user_id"]), corpus_id))


def corpus_bytes(redis: RedisClient, user_id: int, *, except_id: str | None = None) -> int:
    """Bytes of the user's stored corpora (one upload may be left out: a re-upload is free)."""
    sizes = redis.hgetall(corpora_key(user_id))
    return sum(int(as_text(size)) for cid, size in sizes.items() if as_text(cid) != except_id)
