"""The model registry: each user's named models, their immutable numbered versions, and movable
aliases, as typed records in Redis (key names from ``platform_workers.keys``).

- a model is a hash (name, user_id, description, created_at, created_by, latest_version) listed
  in the user's sorted set of names; a name is taken once per user
- version n is a JSON string written once (SET NX) and never changed; its number comes from the
  model's `latest_version`, raised in the same WATCH/MULTI transaction that writes it, so two
  registrations at once get two numbers and none is skipped
- aliases are a hash alias -> version; each alias keeps the versions it held before (newest
  first, bounded) for rollback. Promotion and rollback watch both, so two at once never lose
  an update: one of them retries on the state the other left

Everything read back is decoded field by field; refusals are coded ModelTrainerErrors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from redis.client import Pipeline
from typing_extensions import TypedDict

from model_trainer.contracts import limits as L
from model_trainer.contracts.jobs import DOMAIN
from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.storage.api_keys import Principal
from model_trainer.storage.provenance import VersionSource, decode_source
from platform_core.json_types import (
    JSONObject,
    dump_json_object,
    load_json_object,
    optional_int,
    require_int,
    require_str,
)
from platform_workers.keys import (
    alias_history_key,
    model_aliases_key,
    model_key,
    model_version_key,
    user_models_key,
)
from platform_workers.redis_conn import RedisClient, as_text

NAME_PATTERN = L.MODEL_NAME_PATTERN
_NAME = re.compile(NAME_PATTERN)
_VERSION_REF = re.compile(r"^(.+)/([1-9][0-9]{0,8})$")
_ALIAS_REF = re.compile(r"^(.+)@(.+)$")

T = TypeVar("T")


class ModelRecord(TypedDict):
    """A model of the registry, with its aliases and latest version."""

    name: str
    user_id: int
    description: str
    created_at: str
    created_by: str
    latest_version: int | None
    aliases: dict[str, int]


class ModelVersion(VersionSource):
    """One immutable version: its provenance, and who registered it when."""

    name: str
    version: int
    user_id: int
    registered_by: str
    created_at: str


class AliasState(TypedDict):
    """Which version an alias points at, and which it pointed at before."""

    alias: str
    version: int
    # The versions it held before, newest first: what rollback returns to.
    history: list[int]


def check_name(value: str, field: str) -> str:
    if not _NAME.fullmatch(value):
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"{field} must match {NAME_PATTERN}, got {quoted(value)}",
            details={"field": field},
        )
    return value


def not_found(message: str, field: str) -> ModelTrainerError:
    return ModelTrainerError("MODEL_NOT_FOUND", message, details={"field": field})


def _decode_version(text: str) -> ModelVersion:
    obj = load_json_object(text)
    source = decode_source(obj, run_id=require_str(obj, "run_id"), step=optional_int(obj, "step"))
    return {
        **source,
        "name": require_str(obj, "name"),
        "version": require_int(obj, "version"),
        "user_id": require_int(obj, "user_id"),
        "registered_by": require_str(obj, "registered_by"),
        "created_at": require_str(obj, "created_at"),
    }


def _decode_model(fields: JSONObject, aliases: dict[str, int]) -> ModelRecord:
    latest = int(require_str(fields, "latest_version"))
    return {
        "name": require_str(fields, "name"),
        "user_id": int(require_str(fields, "user_id")),
        "description": require_str(fields, "description"),
        "created_at": require_str(fields, "created_at"),
        "created_by": require_str(fields, "created_by"),
        "latest_version": latest or None,
        "aliases": aliases,
    }


def _text(raw: dict[bytes | str, bytes | str]) -> JSONObject:
    return {as_text(name): as_text(value) for name, value in raw.items()}


def _aliases(raw: dict[bytes | str, bytes | str]) -> dict[str, int]:
    return {as_text(alias): int(as_text(version)) for alias, version in sorted(raw.items())}


class ModelStore:
    """Reads and writes one Redis's registry; every method acts within one user's names."""

    def __init__(self, redis: RedisClient) -> None:
        self._redis = redis

    def _transact(self, watched: list[str], body: Callable[[Pipeline], T]) -> T:
        """Runs `body` (reads, then `pipe.multi()` and queued writes) under WATCH until no
        watched key changed before its writes ran; a refusal it raises writes nothing."""
        results: list[T] = []

        def attempt(pipe: Pipeline) -> None:
            results[:] = [body(pipe)]

        self._redis.transaction(attempt, *watched)
        return results[0]

    def create(self, owner: Principal, name: str, description: str, now: str) -> ModelRecord:
        check_name(name, "name")
        user_id = owner["user_id"]
        index = user_models_key(DOMAIN, user_id)
        record: ModelRecord = {
            "name": name,
            "user_id": user_id,
            "description": description,
            "created_at": now,
            "created_by": owner["user"],
            "latest_version": None,
            "aliases": {},
        }

        def body(pipe: Pipeline) -> ModelRecord:
            if self._redis.zscore(index, name) is not None:
                raise ModelTrainerError(
                    "MODEL_EXISTS",
                    f"you already have a model named {name}",
                    details={"field": "name", "name": name},
                )
            if int(self._redis.zcard(index)) >= L.MAX_MODELS_PER_USER:
                raise _quota(f"a user may have at most {L.MAX_MODELS_PER_USER} models")
            pipe.multi()
            pipe.zadd(index, {name: 0})
            pipe.hset(
                model_key(DOMAIN, user_id, name),
                mapping={
                    "name": name,
                    "user_id": user_id,
                    "description": description,
                    "created_at": now,
                    "created_by": owner["user"],
                    "latest_version": 0,
                },
            )
            return record

        return self._transact([index], body)

    def get(self, user_id: int, name: str) -> ModelRecord:
        fields = self._redis.hgetall(model_key(DOMAIN, user_id, name))
        if not fields:
            raise not_found(f"model {quoted(name)} does not exist", "name")
        aliases = self._redis.hgetall(model_aliases_key(DOMAIN, user_id, name))
        return _decode_model(_text(fields), _aliases(aliases))

    def list_for_user(self, user_id: int) -> list[ModelRecord]:
        """Every model of the user, by name (at most MAX_MODELS_PER_USER)."""
        names = [
            as_text(name) for name in self._redis.zrange(user_models_key(DOMAIN, user_id), 0, -1)
        ]
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(model_key(DOMAIN, user_id, name))
            pipe.hgetall(model_aliases_key(DOMAIN, user_id, name))
        replies = pipe.execute()
        return [
            _decode_model(_text(fields), _aliases(aliases))
            for fields, aliases in zip(replies[::2], replies[1::2], strict=True)
        ]

    def add_version(
        self, owner: Principal, name: str, source: VersionSource, now: str
    ) -> ModelVersion:
        """Version latest + 1 of the owner's model, numbered and written in one transaction."""
        user_id = owner["user_id"]
        key = model_key(DOMAIN, user_id, name)

        def body(pipe: Pipeline) -> ModelVersion:
            latest = self._latest(user_id, name)
            if latest >= L.MAX_VERSIONS_PER_MODEL:
                raise _quota(f"a model may have at most {L.MAX_VERSIONS_PER_MODEL} versions")
            version: ModelVersion = {
                **source,
                "name": name,
                "version": latest + 1,
                "user_id": user_id,
                "registered_by": owner["user"],
                "created_at": now,
            }
            pipe.multi()
            pipe.hset(key, "latest_version", latest + 1)
            pipe.set(
                model_version_key(DOMAIN, user_id, name, latest + 1),
                dump_json_object(version),
                nx=True,
            )
            return version

        return self._transact([key], body)

    def _latest(self, user_id: int, name: str, field: str = "name") -> int:
        latest = self._redis.hget(model_key(DOMAIN, user_id, name), "latest_version")
        if latest is None:
            raise not_found(f"model {quoted(name)} does not exist", field)
        return int(as_text(latest))

    def version(
        self, user_id: int, name: str, version: int, field: str = "version"
    ) -> ModelVersion:
        self._latest(user_id, name)
        text = self._redis.get(model_version_key(DOMAIN, user_id, name, version))
        if text is None:
            raise not_found(f"model {quoted(name)} has no version {version}", field)
        return _decode_version(as_text(text))

    def versions(
        self, user_id: int, name: str, *, after: int, limit: int
    ) -> tuple[list[ModelVersion], int | None]:
        """Versions after `after`, oldest first, and where the next page starts (None: none)."""
        latest = self._latest(user_id, name)
        numbers = range(after + 1, min(latest, after + limit) + 1)
        keys = [model_version_key(DOMAIN, user_id, name, n) for n in numbers]
        texts = self._redis.mget(keys) if keys else []
        found = [_decode_version(as_text(text)) for text in texts if text is not None]
        last = after + limit
        return found, last if last < latest else None

    def alias(self, user_id: int, name: str, alias: str) -> AliasState:
        self._latest(user_id, name)
        held = self._redis.hget(model_aliases_key(DOMAIN, user_id, name), alias)
        if held is None:
            raise not_found(f"model {quoted(name)} has no alias {quoted(alias)}", "alias")
        return {
            "alias": alias,
            "version": int(as_text(held)),
            "history": self._history(user_id, name, alias),
        }

    def _history(self, user_id: int, name: str, alias: str) -> list[int]:
        raw = self._redis.lrange(alias_history_key(DOMAIN, user_id, name, alias), 0, -1)
        return [int(as_text(version)) for version in raw]

    def promote(
        self, user_id: int, name: str, alias: str, version: int, *, force: bool
    ) -> AliasState:
        """Points the alias at `version`, remembering its previous holder. Unless forced, a
        candidate whose val loss is worse than the holder's (or unknown, against a known one)
        is refused with PROMOTION_REFUSED."""
        check_name(alias, "alias")
        aliases = model_aliases_key(DOMAIN, user_id, name)
        history = alias_history_key(DOMAIN, user_id, name, alias)
        candidate = self.version(user_id, name, version)

        def body(pipe: Pipeline) -> AliasState:
            held = self._redis.hget(aliases, alias)
            previous = self._history(user_id, name, alias)
            if held is None:
                if int(self._redis.hlen(aliases)) >= L.MAX_ALIASES_PER_MODEL:
                    raise _quota(f"a model may have at most {L.MAX_ALIASES_PER_MODEL} aliases")
            elif int(as_text(held)) == version:
                pipe.multi()
                return {"alias": alias, "version": version, "history": previous}
            elif not force:
                _gate(alias, candidate, self.version(user_id, name, int(as_text(held))))
            pipe.multi()
            pipe.hset(aliases, alias, version)
            if held is not None:
                pipe.lpush(history, int(as_text(held)))
                pipe.ltrim(history, 0, L.MAX_ALIAS_HISTORY - 1)
                previous = [int(as_text(held)), *previous][: L.MAX_ALIAS_HISTORY]
            return {"alias": alias, "version": version, "history": previous}

        return self._transact([aliases, history], body)

    def rollback(self, user_id: int, name: str, alias: str) -> AliasState:
        """Moves the alias back to the version it held before the last promotion."""
        self.alias(user_id, name, alias)
        aliases = model_aliases_key(DOMAIN, user_id, name)
        history = alias_history_key(DOMAIN, user_id, name, alias)

        def body(pipe: Pipeline) -> AliasState:
            previous = self._history(user_id, name, alias)
            if not previous:
                raise ModelTrainerError(
                    "ALIAS_NO_HISTORY",
                    f"alias {alias} of model {name} has held no other version to roll back to",
                    details={"field": "alias", "alias": alias},
                )
            pipe.multi()
            pipe.hset(aliases, alias, previous[0])
            pipe.lpop(history)
            return {"alias": alias, "version": previous[0], "history": previous[1:]}

        return self._transact([aliases, history], body)

    def delete_alias(self, user_id: int, name: str, alias: str) -> AliasState:
        """Removes the alias and its history; returns what it was."""
        state = self.alias(user_id, name, alias)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(model_aliases_key(DOMAIN, user_id, name), alias)
        pipe.delete(alias_history_key(DOMAIN, user_id, name, alias))
        pipe.execute()
        return state

    def resolve(self, user_id: int, ref: str, field: str = "model") -> ModelVersion:
        """`name@alias` or `name/3` in the user's registry."""
        by_version = _VERSION_REF.fullmatch(ref)
        by_alias = _ALIAS_REF.fullmatch(ref)
        if by_version is not None:
            name = check_name(by_version[1], field)
            self._latest(user_id, name, field)
            return self.version(user_id, name, int(by_version[2]), field)
        if by_alias is not None:
            name, alias = check_name(by_alias[1], field), check_name(by_alias[2], field)
            held = self._redis.hget(model_aliases_key(DOMAIN, user_id, name), alias)
            if held is None:
                raise not_found(f"model {quoted(ref)} does not exist", field)
            return self.version(user_id, name, int(as_text(held)), field)
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"{field} must read name@alias or name/version, got {quoted(ref)}",
            details={"field": field},
        )


def _gate(alias: str, candidate: ModelVersion, holder: ModelVersion) -> None:
    """Refuses a candidate whose val loss is worse than the holder's (or missing)."""
    theirs = holder["metrics"]["val_loss"]
    ours = candidate["metrics"]["val_loss"]
    if theirs is None or (ours is not None and ours <= theirs):
        return
    raise ModelTrainerError(
        "PROMOTION_REFUSED",
        f"version {candidate['version']} has val_loss {ours}, worse than {theirs} of version "
        f"{holder['version']} which holds {alias}; pass force to promote it anyway",
        details={
            "alias": alias,
            "version": candidate["version"],
            "val_loss": ours,
            "holder_version": holder["version"],
            "holder_val_loss": theirs,
        },
    )


def _quota(message: str) -> ModelTrainerError:
    return ModelTrainerError("QUOTA_EXCEEDED", message)
