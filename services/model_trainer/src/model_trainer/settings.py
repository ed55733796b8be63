"""Process settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

from model_trainer.contracts.jobs import JobType
from model_trainer.errors import ModelTrainerError


class Settings(TypedDict):
    redis_url: str
    artifacts_root: Path
    data_root: Path
    max_corpus_bytes: int
    default_user_id: int
    # The longest a job of each type may run (seconds); a request may ask for less.
    job_timeout_s: dict[JobType, int]


# Inference answers a person waiting on it: a minute. Training and tokenizers run long.
DEFAULT_JOB_TIMEOUT_S: dict[JobType, int] = {
    "train": 24 * 3600,
    "tokenizer": 3600,
    "eval": 600,
    "score": 60,
    "generate": 60,
}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment; roots are made absolute so paths compare safely."""
    source = os.environ if env is None else env
    return {
        "redis_url": source.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "artifacts_root": Path(source.get("ARTIFACTS_ROOT", "./var/artifacts")).resolve(),
        "data_root": Path(source.get("DATA_ROOT", "./var/data")).resolve(),
        "max_corpus_bytes": int(source.get("MAX_CORPUS_BYTES", str(64 * 1024 * 1024))),
        "default_user_id": int(source.get("DEFAULT_USER_ID", "1")),
        "job_timeout_s": {
            job_type: _positive_int(source, f"JOB_TIMEOUT_S_{job_type.upper()}", default)
            for job_type, default in DEFAULT_JOB_TIMEOUT_S.items()
        },
    }


def _positive_int(source: Mapping[str, str], name: str, default: int) -> int:
    raw = source.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ModelTrainerError(
            "INVALID_CONFIG", f"{name} must be a whole number of seconds >= 1, got {raw!r}"
        )
    return int(raw)
