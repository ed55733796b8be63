"""A run's checkpoints as readers see them: where they live, what each measured, which to keep.

Torch-free, so the API lists checkpoints and checks `run@step` references without loading a
tensor; training/checkpoint.py writes them. Each checkpoint directory
(`runs/{run_id}/checkpoints/step_{step:09d}/`) holds `metrics.json` beside its tensors.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from typing_extensions import TypedDict

from model_trainer.errors import ModelTrainerError
from model_trainer.storage.digests import ArtifactDigests, parse_digests
from platform_core.json_types import (
    JSONObject,
    PayloadError,
    load_json_object,
    optional_float,
    require_int,
    require_str,
)

CHECKPOINTS_DIR = "checkpoints"
PREFIX = "step_"
METRICS_FILE = "metrics.json"
# The sha256 of the checkpoint's other files (training/checkpoint.py writes and checks it).
DIGESTS_FILE = "digests.json"


class CheckpointMetrics(TypedDict):
    """What the run measured when the checkpoint was taken (val_loss at that very step)."""

    step: int
    epoch: int
    train_loss: float | None
    val_loss: float | None
    created_at: str


class CheckpointInfo(CheckpointMetrics):
    """A kept checkpoint: its step, losses, size on disk and time."""

    bytes: int


def checkpoint_name(step: int) -> str:
    return f"{PREFIX}{step:09d}"


def checkpoint_dirs(checkpoint_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temp directories are never listed)."""
    if not checkpoint_dir.is_dir():
        return []
    return sorted(p for p in checkpoint_dir.iterdir() if p.name.startswith(PREFIX))


def write_metrics(directory: Path, metrics: CheckpointMetrics) -> None:
    (directory / METRICS_FILE).write_bytes(orjson.dumps(metrics))


def decode_metrics(raw: JSONObject) -> CheckpointMetrics:
    return {
        "step": require_int(raw, "step"),
        "epoch": require_int(raw, "epoch"),
        "train_loss": optional_float(raw, "train_loss"),
        "val_loss": optional_float(raw, "val_loss"),
        "created_at": require_str(raw, "created_at"),
    }


def read_metrics(directory: Path) -> CheckpointMetrics:
    """A checkpoint's metrics; one without them (older, or damaged) is ARTIFACT_CORRUPT."""
    source = directory / METRICS_FILE
    try:
        return decode_metrics(load_json_object(source.read_bytes()))
    except (OSError, PayloadError) as exc:
        raise ModelTrainerError(
            "ARTIFACT_CORRUPT",
            f"checkpoint {directory.name} has no readable {METRICS_FILE}: {exc}",
            details={"path": str(source)},
        ) from exc


def describe(directory: Path) -> CheckpointInfo:
    metrics = read_metrics(directory)
    size = sum(f.stat().st_size for f in directory.iterdir() if f.is_file())
    return {**metrics, "bytes": size}


def list_checkpoints(checkpoint_dir: Path) -> list[CheckpointInfo]:
    """Every checkpoint that describes itself, oldest first."""
    found: list[CheckpointInfo] = []
    for directory in checkpoint_dirs(checkpoint_dir):
        try:
            found.append(describe(directory))
        except ModelTrainerError:
            continue  # deleted by retention while listed, or damaged: not a usable checkpoint
    return found


def find_checkpoint(checkpoint_dir: Path, step: int, run_id: str) -> Path:
    """The checkpoint a `run@step` reference names (CHECKPOINT_NOT_FOUND otherwise)."""
    directory = checkpoint_dir / checkpoint_name(step)
    if not (directory / METRICS_FILE).is_file():
        raise ModelTrainerError(
            "CHECKPOINT_NOT_FOUND",
            f"run {run_id} has no checkpoint at step {step}",
            details={"field": "step", "run_id": run_id, "step": step},
        )
    return directory


def retained(directories: list[Path], *, keep_last: int, keep_best: int) -> set[Path]:
    """Seed 000's invariants: the newest `keep_last`, and the `keep_best` with the lowest
    validation loss (training loss when there is none; a checkpoint that measured neither
    ranks last), so the latest and a best always survive and disk stays bounded."""
    newest = directories[-keep_last:]
    ranked = sorted(enumerate(directories), key=lambda item: (*_rank(item[1]), -item[0]))
    return set(newest) | {directory for _, directory in ranked[:keep_best]}


def _rank(directory: Path) -> tuple[int, float]:
    try:
        metrics = read_metrics(directory)
    except ModelTrainerError:
        return (2, 0.0)
    if metrics["val_loss"] is not None:
        return (0, metrics["val_loss"])
    if metrics["train_loss"] is not None:
        return (1, metrics["train_loss"])
    return (2, 0.0)


def read_digests(path: Path) -> ArtifactDigests:
    """The digests saved with a checkpoint's files (ARTIFACT_CORRUPT when missing or
    unreadable: a checkpoint without them cannot be trusted)."""
    record = path / DIGESTS_FILE
    try:
        raw = load_json_object(record.read_bytes())
    except (OSError, PayloadError) as exc:
        raise ModelTrainerError(
            "ARTIFACT_CORRUPT",
            f"checkpoint {path} has no readable {DIGESTS_FILE}: {exc}",
            details={"path": str(record)},
        ) from exc
    return parse_digests(raw, record)
