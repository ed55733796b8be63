"""Run directories and their manifest: what was trained, on what, with which code."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TypedDict

import orjson

from model_trainer.contracts.model import ModelFamily, ModelTrainConfig, TrainOutcome
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings

MANIFEST_FILE = "manifest.json"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_LIBRARIES = ("torch", "numpy", "safetensors", "orjson", "transformers", "tokenizers")


class RunManifest(TypedDict):
    run_id: str
    model_family: ModelFamily
    model_size: str
    config: ModelTrainConfig
    metrics: TrainOutcome
    corpus_sha256: str
    corpus_bytes: int
    tokenizer_id: str
    num_params: int
    device: str
    library_versions: dict[str, str]
    git_commit: str | None
    created_at: str
    completed_at: str


def run_dir(settings: Settings, run_id: str) -> Path:
    """`$ARTIFACTS_ROOT/runs/{run_id}`; the id's alphabet keeps it from naming any other path."""
    if not _RUN_ID.fullmatch(run_id):
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"run_id must match {_RUN_ID.pattern}, got {run_id!r}",
            details={"field": "run_id"},
        )
    return settings["artifacts_root"] / "runs" / run_id


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def library_versions(names: tuple[str, ...] = _LIBRARIES) -> dict[str, str]:
    """Versions of the libraries that shape a model's numbers (absent ones are left out)."""
    found = {"python": sys.version.split()[0]}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_commit(cwd: Path) -> str | None:
    """The commit of the code that trained the run, when it runs from a git checkout."""
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None


def write_manifest(directory: Path, manifest: RunManifest) -> Path:
    path = directory / MANIFEST_FILE
    path.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return path
