"""Fixtures shared by every test: isolated settings roots and a small real corpus."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import torch
from tests.support.processes import start_redis
from tests.support.s3 import S3_CREDENTIALS, start_moto

from model_trainer.client import API_KEY_ENV
from model_trainer.settings import DEFAULT_JOB_TIMEOUT_S, DEFAULT_MAX_ACTIVE_JOBS, Settings
from model_trainer.storage.api_keys import create_key
from platform_workers.redis_conn import RedisClient, redis_from_url

SAMPLE_TEXT = (
    "To be, or not to be, that is the question:\n"
    "Whether 'tis nobler in the mind to suffer\n"
    "The slings and arrows of outrageous fortune,\n"
    "Or to take arms against a sea of troubles\n"
    "And by opposing end them. To die—to sleep,\n"
) * 40


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    """Two threads everywhere (the CI machine's cores) and a fixed global seed per test."""
    torch.set_num_threads(2)
    torch.manual_seed(0)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    data_root = tmp_path / "data"
    artifacts_root = tmp_path / "artifacts"
    data_root.mkdir()
    artifacts_root.mkdir()
    return {
        "redis_url": "redis://127.0.0.1:6379/0",
        "artifacts_root": artifacts_root,
        "artifacts_s3": None,
        "data_root": data_root,
        "max_corpus_bytes": 1_000_000,
        "job_timeout_s": dict(DEFAULT_JOB_TIMEOUT_S),
        "max_tokens_per_step": 1 << 20,
        "max_text_bytes": 1 << 20,
        "max_request_bytes": 4 << 20,
        "max_active_jobs": dict(DEFAULT_MAX_ACTIVE_JOBS),
        "max_user_corpus_bytes": 10_000_000,
        "max_queue_depth": 10_000,
        "min_schedule_interval_s": 60,
        "max_schedules_per_user": 100,
        "log_level": "INFO",
        "metrics_token": None,
        "worker_device": "auto",
        "distributed": {"max_processes": 8, "timeout_s": 60, "nnodes": 1, "rdzv_endpoint": None},
    }


@pytest.fixture
def corpus_path(settings: Settings) -> Path:
    """A ~9 kB corpus under DATA_ROOT (non-ASCII included)."""
    path = settings["data_root"] / "corpus.txt"
    path.write_text(SAMPLE_TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL when set, else a private redis-server on a free port for this test session."""
    if "REDIS_URL" in os.environ:
        yield os.environ["REDIS_URL"]
        return
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    process.terminate()
    process.wait()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server for this test session; boto3 here and in child processes gets test
    credentials from the environment, as it would get real ones."""
    process, endpoint = start_moto(tmp_path_factory.mktemp("moto"))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in S3_CREDENTIALS.items():
            patch.setenv(name, value)
        yield endpoint
    process.terminate()
    process.wait()


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str) -> Settings:
    """`settings` with the S3 artifact store: a bucket of this test's own, under a prefix."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return {
        **settings,
        "artifacts_s3": {"bucket": bucket, "prefix": "store", "endpoint_url": s3_endpoint},
    }


@pytest.fixture
def redis(redis_url: str) -> Iterator[RedisClient]:
    """A real Redis connection to an emptied database."""
    client = redis_from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def service_env(
    redis: RedisClient, redis_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Environment for API and worker processes: this test's Redis and roots, one thread each,
    and an API key that the CLI and TrainerClient (here and in child processes) send."""
    # An admin key: e2e tests also use runs they trained in-process, which no user owns.
    key = create_key(redis, "tester", admin=True)["key"]
    monkeypatch.setenv(API_KEY_ENV, key)
    env = dict(os.environ)
    env.update(
        {
            "REDIS_URL": redis_url,
            "ARTIFACTS_ROOT": str(settings["artifacts_root"]),
            "DATA_ROOT": str(settings["data_root"]),
            "OMP_NUM_THREADS": "1",
            API_KEY_ENV: key,
        }
    )
    return env
