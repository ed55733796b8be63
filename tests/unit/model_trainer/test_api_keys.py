"""API keys: stored as hashes, one id per user name, revocable; the `keys` CLI around them."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from model_trainer import cli
from model_trainer.errors import ModelTrainerError
from model_trainer.storage.api_keys import authenticate, create_key, list_keys, revoke_key
from platform_workers.redis_conn import RedisClient


def test_a_key_authenticates_as_its_user_and_only_its_hash_is_stored(redis: RedisClient) -> None:
    created = create_key(redis, "ann", admin=True)
    assert created["key"].startswith(f"mtk_{created['key_id']}_")
    assert authenticate(redis, created["key"]) == {
        "user_id": 1,
        "user": "ann",
        "admin": True,
        "key_id": created["key_id"],
    }
    stored = redis.hgetall(f"trainer:apikey:{created['key_id']}")
    digest = hashlib.sha256(created["key"].encode()).hexdigest().encode()
    assert stored[b"sha256"] == digest
    assert all(created["key"].encode() not in value for value in stored.values())


def test_users_keep_one_id_across_keys(redis: RedisClient) -> None:
    first = create_key(redis, "ann")
    second = create_key(redis, "bo")
    again = create_key(redis, "ann")
    assert (first["user_id"], second["user_id"], again["user_id"]) == (1, 2, 1)
    assert first["key_id"] != again["key_id"]
    assert [info["user"] for info in list_keys(redis)] == ["ann", "ann", "bo"]
    assert "key" not in list_keys(redis)[0]


@pytest.mark.parametrize("key", ["", "mtk_", "mtk_zz_" + "a" * 43, "bearer", "mtk_" + "0" * 12])
def test_malformed_and_unknown_keys_authenticate_as_nobody(redis: RedisClient, key: str) -> None:
    create_key(redis, "ann")
    assert authenticate(redis, key) is None
    assert authenticate(redis, f"mtk_{'0' * 12}_{'a' * 43}") is None


def test_a_revoked_key_is_gone(redis: RedisClient) -> None:
    created = create_key(redis, "ann")
    assert revoke_key(redis, created["key_id"])
    assert authenticate(redis, created["key"]) is None
    assert list_keys(redis) == []
    assert not revoke_key(redis, created["key_id"])


@pytest.mark.parametrize("user", ["", "-x", "a b", "u" * 65, "nul\x00"])
def test_a_user_name_outside_the_alphabet_is_refused(redis: RedisClient, user: str) -> None:
    with pytest.raises(ModelTrainerError) as caught:
        create_key(redis, user)
    assert caught.value.details == {"field": "user"}


def test_the_keys_cli_creates_lists_and_revokes(
    redis: RedisClient,
    redis_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert cli.main(["keys", "create", "--user", "ops", "--admin"]) == 0
    created = orjson.loads(capsys.readouterr().out)
    assert authenticate(redis, created["key"]) is not None
    assert cli.main(["keys", "list"]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [(k["key_id"], k["user"], k["admin"]) for k in listed] == [
        (created["key_id"], "ops", True)
    ]
    assert created["key"] not in str(listed)
    assert cli.main(["keys", "revoke", created["key_id"]]) == 0
    assert capsys.readouterr().out == f"revoked {created['key_id']}\n"
    assert cli.main(["keys", "revoke", created["key_id"]]) == 2
    assert "no key" in capsys.readouterr().err
    assert authenticate(redis, created["key"]) is None
