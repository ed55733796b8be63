"""Run directories and their manifest: what was trained, on what, with which code."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NotRequired

import orjson
from typing_extensions import TypedDict

from model_trainer.contracts.model import ModelFamily, TrainOutcome
from model_trainer.contracts.train_config import ModelTrainConfig
from model_trainer.errors import ModelTrainerError, quoted
from model_trainer.settings import Settings
from model_trainer.storage.artifacts import fetch, fetch_listed
from model_trainer.storage.digests import (
    ArtifactDigests,
    corrupt_artifact,
    digest_files,
    parse_digests,
    plain_files,
    verify_files,
)
from platform_core.json_types import (
    JSONObject,
    PayloadError,
    load_json_object,
    optional_float,
    optional_object,
    optional_str,
    require_float,
    require_int,
    require_object,
    require_str,
)

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
# The manifest's record of every other file in the run directory: {name: {sha256, bytes}}.
ARTIFACTS_KEY = "artifacts"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_LIBRARIES = ("torch", "numpy", "safetensors", "orjson", "transformers", "tokenizers")


class RunManifest(TypedDict):
    """A finished run's manifest.json: what it trained, on what, with what result."""

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
    # Every file of the run but the manifest (checkpoints/ is a folder, not an artifact).
    # Training always writes it; a manifest from before it existed still lists and loads
    # (unverified, see verify_run), hence NotRequired: the type describes what readers find.
    artifacts: NotRequired[ArtifactDigests]


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
    best_val_loss: float | None
    steps: int
    elapsed_s: float
    stop_reason: str
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


def run_artifacts(directory: Path) -> ArtifactDigests:
    """The digest of every file a finished run directory holds besides its manifest."""
    return digest_files(directory, plain_files(directory, exclude=[MANIFEST_FILE]))


def write_manifest(directory: Path, manifest: RunManifest) -> Path:
    """Written beside and renamed into place: a run's manifest is whole or absent, since it is
    both the mark of a finished run and the record its files are checked against."""
    path = directory / MANIFEST_FILE
    partial = directory / f".{MANIFEST_FILE}.partial"
    partial.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    os.replace(partial, path)
    return path


def verify_run(directory: Path) -> None:
    """Check the files a run's manifest records against their sha256 before any is loaded
    (ARTIFACT_CORRUPT if one differs). A directory without a manifest is not one of our runs
    (a Hugging Face checkpoint brought to fine-tune) and has no record to check against; a
    manifest written before digests were recorded is loaded as before, with a warning."""
    if not (directory / MANIFEST_FILE).is_file():
        return
    recorded = recorded_artifacts(directory)
    if recorded is None:
        logger.warning("run %s predates artifact digests: loaded unverified", directory.name)
        return
    verify_files(directory, recorded)


def recorded_artifacts(directory: Path) -> ArtifactDigests | None:
    """The digests the run's manifest records (None: a manifest from before digests)."""
    path = directory / MANIFEST_FILE
    try:
        recorded = optional_object(load_json_object(path.read_bytes()), ARTIFACTS_KEY)
    except PayloadError as exc:
        raise corrupt_artifact(directory, MANIFEST_FILE, f"is unreadable: {exc}") from exc
    return None if recorded is None else parse_digests(recorded, path)


def read_manifest(settings: Settings, run_id: str) -> JSONObject:
    """A finished run's manifest; a run without one (unknown or still training) is not found."""
    path = run_dir(settings, run_id) / MANIFEST_FILE
    if not fetch(settings, path):
        raise ModelTrainerError(
            "MODEL_NOT_FOUND",
            f"run {run_id} does not exist or has not finished training",
            details={"field": "run_id", "run_id": run_id},
        )
    with unreadable_manifest(run_id):
        return load_json_object(path.read_bytes())


@contextmanager
def unreadable_manifest(run_id: str) -> Iterator[None]:
    """A manifest that does not parse, or a field of it that is missing or mistyped, is the
    run's fault (MODEL_LOAD_FAILED), not the request's."""
    try:
        yield
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
        "best_val_loss": optional_float(metrics, "best_val_loss"),
        "steps": require_int(metrics, "steps"),
        "elapsed_s": require_float(metrics, "elapsed_s"),
        # Runs trained before stop reasons were recorded ran their planned length.
        "stop_reason": optional_str(metrics, "stop_reason") or "completed",
        "created_at": require_str(manifest, "created_at"),
        "completed_at": require_str(manifest, "completed_at"),
    }


def list_runs(settings: Settings) -> list[RunSummary]:
    """Every finished run, newest first; a manifest being written or damaged is left out."""
    summaries: list[RunSummary] = []
    fetch_listed(settings, "runs/", f"/{MANIFEST_FILE}")
    for path in (settings["artifacts_root"] / "runs").glob(f"*/{MANIFEST_FILE}"):
        try:
            summaries.append(run_summary(load_json_object(path.read_bytes())))
        except PayloadError:
            continue
    return sorted(summaries, key=lambda run: (run["created_at"], run["run_id"]), reverse=True)
