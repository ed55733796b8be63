"""Process settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict


class Settings(TypedDict):
    redis_url: str
    artifacts_root: Path
    data_root: Path
    max_corpus_bytes: int
    default_user_id: int


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment; roots are made absolute so paths compare safely."""
    source = os.environ if env is None else env
    return {
        "redis_url": source.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "artifacts_root": Path(source.get("ARTIFACTS_ROOT", "./var/artifacts")).resolve(),
        "data_root": Path(source.get("DATA_ROOT", "./var/data")).resolve(),
        "max_corpus_bytes": int(source.get("MAX_CORPUS_BYTES", str(64 * 1024 * 1024))),
        "default_user_id": int(source.get("DEFAULT_USER_ID", "1")),
    }
