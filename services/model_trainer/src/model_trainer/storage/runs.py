"""Run directories and their manifest: what was trained, on what, with which code."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson
from typing_extensions import TypedDict

from model_trainer.contracts.model import ModelFamily, TrainOutcome
from model_trainer.contracts.train_config import ModelTrainConfig
from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.settings import Settings
from platform_core.json_types import (
    JSONObject,
    PayloadError,
    load_json_object,
    optional_float,
    require_float,
    require_int,
    require_object,
    require_str,
)

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


class RunSummary(TypedDict):
    """What a listing shows of one finished run, read from its manifest."""

    run_id: str
    model_family: str
    model_size: str
    num_params: int
    device: str
    corpus_sha256: str
    loss: float
    val_loss: float | None
    created_at: str
    completed_at: str


def run_dir(settings: Settings, run_id: str) -> Path:
    """`$ARTIFACTS_ROOT/runs/{run_id}`; the id's alphabet keeps it from naming any other path."""
    if not _RUN_ID.fullmatch(run_id):
        raise ModelTrainerError(
            "INVALID_CONFIG",
            f"run_id must match {_RUN_ID.pattern}, got {quoted(run_id)}",
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


def read_manifest(settings: Settings, run_id: str) -> JSONObject:
    """A finished run's manifest; a run without one (unknown or still training) is not found."""
    path = run_dir(settings, run_id) / MANIFEST_FILE
    if not path.is_file():
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"run {run_id} does not exist or has not finished training",
            details={"field": "run_id", "run_id": run_id},
        )
    try:
        return load_json_object(path.read_bytes())
    except PayloadError as exc:
        raise ModelTrainerError(
            "MODEL_LOAD_FAILED",
            f"manifest of run {run_id} is unreadable: {exc}",
            details={"run_id": run_id},
        ) from exc


def run_summary(manifest: JSONObject) -> RunSummary:
    metrics = require_object(manifest, "metrics")
    return {
        "run_id": require_str(manifest, "run_id"),
        "model_family": require_str(manifest, "model_family"),
        "model_size": require_str(manifest, "model_size"),
        "num_params": require_int(manifest, "num_params"),
        "device": require_str(manifest, "device"),
        "corpus_sha256": require_str(manifest, "corpus_sha256"),
        "loss": require_float(metrics, "loss"),
        "val_loss": optional_float(metrics, "val_loss"),
        "created_at": require_str(manifest, "created_at"),
        "completed_at": require_str(manifest, "completed_at"),
    }


def list_runs(settings: Settings) -> list[RunSummary]:
    """Every finished run, newest first; a manifest being written or damaged is left out."""
    summaries: list[RunSummary] = []
    for path in (settings["artifacts_root"] / "runs").glob(f"*/{MANIFEST_FILE}"):
        try:
            summaries.append(run_summary(load_json_object(path.read_bytes())))
        except PayloadError:
            continue
    return sorted(summaries, key=lambda run: (run["created_at"], run["run_id"]), reverse=True)
