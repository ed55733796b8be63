"""Fixtures for the API's unit tests: the app on a private fakeredis, and helpers to inspect it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import fakeredis
import pytest
from fastapi.testclient import TestClient
from rq import Queue
from rq.serializers import JSONSerializer

from model_trainer.api.app import create_app
from model_trainer.api.event_hub import EventHub, FollowTiming
from model_trainer.contracts.jobs import DOMAIN
from model_trainer.contracts.train_config import make_train_config
from model_trainer.settings import Settings
from model_trainer.storage.api_keys import CreatedKey, create_key
from model_trainer.storage.owners import Owned, claim
from model_trainer.storage.runs import RunManifest, run_dir, write_manifest
from platform_workers.keys import events_channel

# Short enough that a test never waits long for an ended job; keepalives stay out of the way.
FAST_TIMING: FollowTiming = {"poll_s": 0.5, "keepalive_s": 30.0, "ended_grace_s": 0.05}


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
def redis(fake_server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fake_server)


@pytest.fixture
def make_hub(fake_server: fakeredis.FakeServer) -> Callable[[FollowTiming], EventHub]:
    """Hubs whose async client talks to the same fake server as the `redis` fixture."""

    def make(timing: FollowTiming) -> EventHub:
        client = fakeredis.FakeAsyncRedis(server=fake_server)
        return EventHub(client, events_channel(DOMAIN), timing=timing)

    return make


@pytest.fixture
def hub(make_hub: Callable[[FollowTiming], EventHub]) -> EventHub:
    return make_hub(FAST_TIMING)


def bearer(key: CreatedKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


@pytest.fixture
def api_key(redis: fakeredis.FakeRedis) -> CreatedKey:
    """The key every `client` request carries: user `alice`, the first user (id 1)."""
    return create_key(redis, "alice")


@pytest.fixture
def client(
    settings: Settings, redis: fakeredis.FakeRedis, hub: EventHub, api_key: CreatedKey
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, redis, hub), headers=bearer(api_key)) as test_client:
        yield test_client


def _queue_lengths(redis: fakeredis.FakeRedis) -> dict[str, int]:
    return {
        name: Queue(name, connection=redis, serializer=JSONSerializer).count
        for name in ("train", "infer")
    }


@pytest.fixture
def queue_lengths(redis: fakeredis.FakeRedis) -> Callable[[], dict[str, int]]:
    """How many jobs wait on each RQ queue."""
    return lambda: _queue_lengths(redis)


@pytest.fixture
def record_count(redis: fakeredis.FakeRedis) -> Callable[[], int]:
    """How many job records exist."""
    return lambda: len(list(redis.scan_iter("trainer:job:*")))


@pytest.fixture
def assert_no_trace(
    queue_lengths: Callable[[], dict[str, int]], record_count: Callable[[], int]
) -> Callable[[], None]:
    """Asserts that nothing was enqueued and no job record was written."""

    def check() -> None:
        assert queue_lengths() == {"train": 0, "infer": 0}
        assert record_count() == 0

    return check


def make_manifest(run_id: str, corpus_path: str, created_at: str) -> RunManifest:
    return {
        "run_id": run_id,
        "model_family": "char_lstm",
        "model_size": "tiny",
        "config": make_train_config(
            model_family="char_lstm", model_size="tiny", corpus_path=corpus_path
        ),
        "metrics": {
            "loss": 1.5,
            "perplexity": 4.48,
            "val_loss": 1.75,
            "val_perplexity": 5.75,
            "steps": 10,
            "epochs_completed": 1,
            "tokens_seen": 1280,
            "tokens_per_second": 1000.0,
            "elapsed_s": 1.28,
            "resumed_from_step": None,
            "out_dir": "runs/" + run_id,
            "stop_reason": "completed",
            "best_val_loss": None,
            "best_step": None,
        },
        "corpus_sha256": "ab" * 32,
        "corpus_bytes": 9000,
        "tokenizer_id": "char-" + run_id,
        "num_params": 1234,
        "device": "cpu",
        "library_versions": {"python": "3.11"},
        "git_commit": None,
        "created_at": created_at,
        "completed_at": created_at,
    }


@pytest.fixture
def own(redis: fakeredis.FakeRedis, api_key: CreatedKey) -> Callable[[Owned, str], None]:
    """Makes a run or tokenizer written straight to disk the `client` user's, as submitting
    the job that made it would have."""

    def own(kind: Owned, name: str) -> None:
        assert claim(redis, kind, name, api_key["user_id"])

    return own


@pytest.fixture
def save_run(
    settings: Settings, corpus_path: Path, redis: fakeredis.FakeRedis, api_key: CreatedKey
) -> Callable[[str, str], RunManifest]:
    """Writes a finished run directory (run_id, created_at) as a worker leaves it, owned by
    the `client` fixture's user."""

    def save(run_id: str, created_at: str) -> RunManifest:
        manifest = make_manifest(run_id, str(corpus_path.resolve()), created_at)
        directory = run_dir(settings, run_id)
        directory.mkdir(parents=True)
        write_manifest(directory, manifest)
        claim(redis, "run", run_id, api_key["user_id"])
        return manifest

    return save


@pytest.fixture
def trained_run(save_run: Callable[[str, str], RunManifest]) -> RunManifest:
    return save_run("r1", "2026-01-01T00:00:00+00:00")
