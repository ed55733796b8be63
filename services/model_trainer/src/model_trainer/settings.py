"""Process settings, read once from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

from model_trainer.contracts.jobs import (
    WORKER_DEVICE_CHOICES,
    JobType,
    QueueName,
    WorkerDeviceChoice,
)
from model_trainer.errors import ModelTrainerError, quoted
from platform_core.structured_logs import LOG_LEVELS
from platform_workers.redis_url import InvalidRedisUrl, check_redis_url


class DistributedSettings(TypedDict):
    """Multi-process training (training/distributed.py), named like torchrun's options."""

    # The most processes one train job may ask for (num_processes).
    max_processes: int
    # How long a process waits in a collective (or to meet the others) before the training
    # fails, so a stuck or dead process ends the job instead of hanging it.
    timeout_s: int
    # torchrun's --nnodes and --rdzv-endpoint: the machines of one training, and where they
    # meet (None: this machine alone, on a free port of 127.0.0.1).
    nnodes: int
    rdzv_endpoint: str | None


class S3Location(TypedDict):
    """Where an S3-compatible store keeps artifacts (`ARTIFACTS_URL=s3://bucket/prefix`)."""

    bucket: str
    # Key prefix, without a trailing slash ("" for the bucket's top).
    prefix: str
    # AWS_ENDPOINT_URL / S3_ENDPOINT_URL (MinIO, moto); None: AWS's own endpoint.
    endpoint_url: str | None


class Settings(TypedDict):
    redis_url: str
    # The artifact store; with S3 set, ARTIFACTS_ROOT is this process's local cache of it.
    artifacts_root: Path
    artifacts_s3: S3Location | None
    data_root: Path
    max_corpus_bytes: int
    # The longest a job of each type may run (seconds); a request may ask for less.
    job_timeout_s: dict[JobType, int]
    # batch_size x max_seq_len x grad_accum_steps of one optimizer step (eval: one batch).
    max_tokens_per_step: int
    # UTF-8 size of a text a score or generate job reads (inline or from a file).
    max_text_bytes: int
    # A JSON request body; corpus uploads have max_corpus_bytes instead.
    max_request_bytes: int
    # Per user: jobs queued or running on each queue, and bytes of uploaded corpora.
    max_active_jobs: dict[QueueName, int]
    max_user_corpus_bytes: int
    # Every user's waiting jobs on one queue together.
    max_queue_depth: int
    # Schedules: the shortest interval between a schedule's firings (cron included), and how
    # many schedules one user may keep.
    min_schedule_interval_s: int
    max_schedules_per_user: int
    # Observability: the level of every process's JSON log lines; a bearer token /metrics
    # asks for (None: open, as Prometheus scrapers usually have no key; it shows no user data).
    log_level: str
    metrics_token: str | None
    # The device class a worker advertises: auto finds CUDA with torch, cpu or cuda says so.
    worker_device: WorkerDeviceChoice
    distributed: DistributedSettings


# Inference answers a person waiting on it: a minute. Training, tokenizers and exports run long.
# Trainings hold a GPU each, so a user gets a few; inference jobs are short.
DEFAULT_MAX_ACTIVE_JOBS: dict[QueueName, int] = {"train": 8, "infer": 64}
_MIB = 1024 * 1024
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

DEFAULT_JOB_TIMEOUT_S: dict[JobType, int] = {
    "train": 24 * 3600,
    "tokenizer": 3600,
    "export": 3600,
    "eval": 600,
    "score": 60,
    "generate": 60,
}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment; roots are made absolute so paths compare safely."""
    source = os.environ if env is None else env
    return {
        "redis_url": _redis_url(source),
        "artifacts_root": Path(source.get("ARTIFACTS_ROOT", "./var/artifacts")).resolve(),
        "artifacts_s3": _artifacts_s3(source),
        "data_root": Path(source.get("DATA_ROOT", "./var/data")).resolve(),
        "max_corpus_bytes": _positive_int(source, "MAX_CORPUS_BYTES", 64 * _MIB),
        "job_timeout_s": {
            job_type: _positive_int(source, f"JOB_TIMEOUT_S_{job_type.upper()}", default)
            for job_type, default in DEFAULT_JOB_TIMEOUT_S.items()
        },
        "max_tokens_per_step": _positive_int(source, "MAX_TOKENS_PER_STEP", _MIB),
        "max_text_bytes": _positive_int(source, "MAX_TEXT_BYTES", _MIB),
        "max_request_bytes": _positive_int(source, "MAX_REQUEST_BYTES", 4 * _MIB),
        "max_active_jobs": {
            queue: _positive_int(source, f"MAX_ACTIVE_JOBS_{queue.upper()}", default)
            for queue, default in DEFAULT_MAX_ACTIVE_JOBS.items()
        },
        "max_user_corpus_bytes": _positive_int(source, "MAX_USER_CORPUS_BYTES", 1024 * _MIB),
        "max_queue_depth": _positive_int(source, "MAX_QUEUE_DEPTH", 10_000),
        "min_schedule_interval_s": _positive_int(source, "MIN_SCHEDULE_INTERVAL_S", 60),
        "max_schedules_per_user": _positive_int(source, "MAX_SCHEDULES_PER_USER", 100),
        "log_level": _log_level(source),
        "metrics_token": source.get("METRICS_TOKEN") or None,
        "worker_device": parse_worker_device(source.get("WORKER_DEVICE", "auto"), "WORKER_DEVICE"),
        "distributed": {
            "max_processes": _positive_int(source, "MAX_TRAIN_PROCESSES", 8),
            "timeout_s": _positive_int(source, "DDP_TIMEOUT_S", 600),
            "nnodes": _positive_int(source, "DDP_NNODES", 1),
            "rdzv_endpoint": source.get("DDP_RDZV_ENDPOINT") or None,
        },
    }


def _redis_url(source: Mapping[str, str]) -> str:
    """Plain, TLS or Sentinel (platform_workers.redis_url); a malformed one stops the process
    at start, saying what is wrong."""
    url = source.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        check_redis_url(url)
    except InvalidRedisUrl as error:
        raise ModelTrainerError("INVALID_CONFIG", str(error)) from None
    return url


def parse_worker_device(value: str, name: str) -> WorkerDeviceChoice:
    """Narrow WORKER_DEVICE (or `worker --device`) to a choice the worker knows."""
    for choice in WORKER_DEVICE_CHOICES:
        if choice == value:
            return choice
    raise ModelTrainerError(
        "INVALID_CONFIG",
        f"{name} must be one of {', '.join(WORKER_DEVICE_CHOICES)}, got {quoted(value)}",
        details={"field": name},
    )


def _artifacts_s3(source: Mapping[str, str]) -> S3Location | None:
    """`s3://bucket[/prefix]`, or None (unset or empty) for ARTIFACTS_ROOT alone."""
    url = source.get("ARTIFACTS_URL") or None
    if url is None:
        return None
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not _BUCKET.fullmatch(bucket):
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"ARTIFACTS_URL must be s3://bucket/prefix (a bucket of 3-63 lowercase letters, "
            f"digits, dots or dashes), got {quoted(url)}",
        )
    endpoint = source.get("AWS_ENDPOINT_URL") or source.get("S3_ENDPOINT_URL") or None
    return {"bucket": bucket, "prefix": prefix.strip("/"), "endpoint_url": endpoint}


def _log_level(source: Mapping[str, str]) -> str:
    level = source.get("LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {quoted(level)}",
        )
    return level


def _positive_int(source: Mapping[str, str], name: str, default: int) -> int:
    raw = source.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ModelTrainerError(
            "INVALID_CONFIG", f"{name} must be a whole number >= 1, got {raw!r}"
        )
    return int(raw)
