"""A run in the artifact store: published as it trains and when it ends, fetched where it is
read (another worker, the API), its files checked against the digests recorded with them.

With the local store every function here reads or returns the run directory as it is.
"""

from __future__ import annotations

import logging
from pathlib import Path

from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.artifacts import (
    fetch,
    fetch_recorded,
    is_remote,
    publish,
    stored_files,
    unpublish,
)
from model_trainer.storage.checkpoints import (
    CHECKPOINTS_DIR,
    DIGESTS_FILE,
    METRICS_FILE,
    CheckpointInfo,
    checkpoint_name,
    list_checkpoints,
    read_digests,
    read_metrics,
)
from model_trainer.storage.digests import ArtifactDigests, plain_files
from model_trainer.storage.run_metrics import METRICS_FILE as HISTORY_FILE
from model_trainer.storage.runs import MANIFEST_FILE, recorded_artifacts, run_dir

logger = logging.getLogger(__name__)


def publish_run(settings: Settings, directory: Path) -> None:
    """Every file of a finished run, its manifest (the mark of a finished run) last."""
    files = [directory / name for name in plain_files(directory, exclude=[MANIFEST_FILE])]
    publish(settings, [*files, directory / MANIFEST_FILE])


def fetch_run(settings: Settings, run_id: str) -> Path:
    """The run directory with every file its manifest records, as stored. The manifest is
    asked for afresh (a run may be trained again under its id); when it is unchanged and each
    file has its recorded size, nothing is hashed here: the load verifies what it reads."""
    directory = run_dir(settings, run_id)
    manifest = directory / MANIFEST_FILE
    if not is_remote(settings):
        return directory
    before = manifest.read_bytes() if manifest.is_file() else None
    if not fetch(settings, manifest):
        return directory  # unknown or still training: the caller says so
    # Every run published to a store records digests (older manifests predate stores).
    recorded = recorded_artifacts(directory) or {}
    if manifest.read_bytes() != before or not _sizes_match(directory, recorded):
        fetch_recorded(settings, directory, recorded)
    return directory


def _sizes_match(directory: Path, recorded: ArtifactDigests) -> bool:
    return all(
        (directory / name).is_file() and (directory / name).stat().st_size == digest["bytes"]
        for name, digest in recorded.items()
    )


def run_stored(settings: Settings, run_id: str) -> bool:
    """Whether the store holds anything of the run: finished, or training (checkpointed)."""
    directory = run_dir(settings, run_id)
    if not is_remote(settings):
        return directory.is_dir()
    return bool(stored_files(settings, directory))


def fetch_history(settings: Settings, run_id: str) -> Path:
    """The run's metrics history file, as last published (absent: no points yet)."""
    path = run_dir(settings, run_id) / HISTORY_FILE
    if is_remote(settings):
        fetch(settings, path)
    return path


def publish_checkpoint(settings: Settings, path: Path) -> None:
    """A checkpoint's files, its metrics.json (what marks it complete) last; then the run's
    metrics history so far; then the stored checkpoints retention has retired here."""
    if not is_remote(settings):
        return
    files = [path / name for name in plain_files(path, exclude=[METRICS_FILE])]
    history = path.parent.parent / HISTORY_FILE
    publish(settings, [*files, path / METRICS_FILE, *([history] if history.is_file() else [])])
    for name in _stored_checkpoints(settings, path.parent):
        if not (path.parent / name).is_dir():
            unpublish(settings, path.parent / name)


def _stored_checkpoints(settings: Settings, checkpoint_dir: Path) -> dict[str, int]:
    """Complete stored checkpoints (their metrics.json is there) with their sizes in bytes."""
    sizes: dict[str, int] = {}
    complete: set[str] = set()
    for key, size in stored_files(settings, checkpoint_dir).items():
        name, _, file = key.partition("/")  # only whole checkpoints are ever published
        sizes[name] = sizes.get(name, 0) + size
        if file == METRICS_FILE:
            complete.add(name)
    return {name: sizes[name] for name in sorted(complete)}


def fetch_checkpoints(settings: Settings, checkpoint_dir: Path) -> None:
    """Bring every stored checkpoint here before a resume (another worker may have taken
    them); one the store holds damaged is left for the resume to pass over."""
    if not is_remote(settings):
        return
    for name in _stored_checkpoints(settings, checkpoint_dir):
        try:
            _fetch_checkpoint(settings, checkpoint_dir / name)
        except ModelTrainerError as error:
            logger.warning("checkpoint %s not fetched: %s", name, error.message)


def fetch_checkpoint(settings: Settings, run_id: str, step: int) -> Path:
    """The run's checkpoint at `step`, brought here when the store holds it."""
    path = run_dir(settings, run_id) / CHECKPOINTS_DIR / checkpoint_name(step)
    if is_remote(settings) and fetch(settings, path / METRICS_FILE):
        _fetch_checkpoint(settings, path)
    return path


def _fetch_checkpoint(settings: Settings, path: Path) -> None:
    for name in (METRICS_FILE, DIGESTS_FILE):
        fetch(settings, path / name)
    fetch_recorded(settings, path, read_digests(path))


def stored_checkpoints(settings: Settings, run_id: str) -> list[CheckpointInfo]:
    """The run's checkpoints as the store keeps them, oldest first; with S3 only their
    metrics.json are fetched (a listing moves no tensors)."""
    checkpoint_dir = run_dir(settings, run_id) / CHECKPOINTS_DIR
    if not is_remote(settings):
        return list_checkpoints(checkpoint_dir)
    found: list[CheckpointInfo] = []
    for name, size in _stored_checkpoints(settings, checkpoint_dir).items():
        path = checkpoint_dir / name
        try:
            fetch(settings, path / METRICS_FILE)
            found.append({**read_metrics(path), "bytes": size})
        except ModelTrainerError:
            continue  # retired by retention while listed, or damaged: not usable
    return found
