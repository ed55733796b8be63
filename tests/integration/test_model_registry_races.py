"""The registry under concurrent writers on a real redis-server: registrations get distinct,
gapless version numbers, and promotions racing on one alias never lose an update (every
promoted version ends up either holding the alias or in its history, exactly once)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from model_trainer.storage.api_keys import Principal
from model_trainer.storage.models import ModelStore
from model_trainer.storage.provenance import VersionSource
from platform_workers.redis_conn import RedisClient

WRITERS = 12
ROUNDS = 5
NOW = "2026-01-01T00:00:00.000+00:00"
OWNER: Principal = {"user_id": 1, "user": "alice", "admin": False, "key_id": "a" * 12}


def source(index: int) -> VersionSource:
    return {
        "run_id": f"r{index}",
        "step": 10 * index,
        "corpus_sha256": "ab" * 32,
        "tokenizer_id": "char",
        "model_family": "char_lstm",
        "model_size": "tiny",
        "config": {"seed": index},
        "metrics": {
            "step": 10 * index,
            "epoch": 0,
            "train_loss": 1.0,
            "val_loss": 1.0 + index,
            "created_at": NOW,
        },
        "git_commit": None,
        "library_versions": {},
    }


def all_at_once(count: int, action: Callable[[int], int]) -> list[int]:
    """Runs action(0..count-1) on `count` threads released together."""
    gate = threading.Barrier(count)

    def run(index: int) -> int:
        gate.wait()
        return action(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_registrations_get_distinct_gapless_numbers(redis: RedisClient) -> None:
    store = ModelStore(redis)
    store.create(OWNER, "m", "", NOW)
    numbers = all_at_once(
        WRITERS, lambda i: store.add_version(OWNER, "m", source(i), NOW)["version"]
    )
    assert sorted(numbers) == list(range(1, WRITERS + 1))
    assert store.get(1, "m")["latest_version"] == WRITERS
    for number, index in zip(numbers, range(WRITERS), strict=True):
        assert store.version(1, "m", number)["run_id"] == f"r{index}"


def test_concurrent_promotions_never_lose_an_update(redis: RedisClient) -> None:
    store = ModelStore(redis)
    store.create(OWNER, "m", "", NOW)
    for index in range(WRITERS * ROUNDS):
        store.add_version(OWNER, "m", source(index), NOW)
    for round_ in range(ROUNDS):
        first = round_ * WRITERS + 1

        def promote(index: int, first: int = first) -> int:
            return store.promote(1, "m", "production", first + index, force=True)["version"]

        assert all_at_once(WRITERS, promote) == list(range(first, first + WRITERS))
    state = store.alias(1, "m", "production")
    promoted = list(range(1, WRITERS * ROUNDS + 1))
    assert sorted([state["version"], *state["history"]]) == promoted
    # Each round's promotions come after the previous round's in the history.
    assert set(state["history"][-WRITERS:]) == set(range(1, WRITERS + 1))
