"""Artifact files: the sha256 each is recorded with, checked before anything reads it, and the
ordinary permissions every one is left with.

Run directories, checkpoints and stored tokenizers are flat directories of files; a record maps
each file's name to its digest and size, so a truncated file is refused by a stat alone and a
tampered one by its hash, before safetensors or transformers ever see its bytes.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from typing_extensions import TypedDict

from model_trainer.errors import ModelTrainerError
from platform_core.json_types import (
    JSONObject,
    PayloadError,
    require_int,
    require_object,
    require_str,
)

_PROC_STATUS = Path("/proc/self/status")


class ArtifactDigest(TypedDict):
    """A stored file's sha256 and size, as its manifest records them."""

    sha256: str
    bytes: int


# File name (no directories) -> its digest.
ArtifactDigests = dict[str, ArtifactDigest]


def file_sha256(path: Path) -> str:
    """Hashed in chunks (hashlib's file_digest), so a multi-gigabyte file costs no memory."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def digest_files(directory: Path, names: Iterable[str]) -> ArtifactDigests:
    return {
        name: {"sha256": file_sha256(directory / name), "bytes": (directory / name).stat().st_size}
        for name in sorted(names)
    }


def plain_files(directory: Path, *, exclude: Iterable[str] = ()) -> list[str]:
    """The names of the regular files directly in `directory` (symlinks and folders left out)."""
    skip = set(exclude)
    return sorted(
        path.name
        for path in directory.iterdir()
        if path.name not in skip and path.is_file() and not path.is_symlink()
    )


def corrupt_artifact(directory: Path, name: str, reason: str) -> ModelTrainerError:
    return ModelTrainerError(
        "ARTIFACT_CORRUPT",
        f"{name} in {directory} {reason}; it is not loaded (retrain, or restore the file)",
        details={"path": str(directory / name)},
    )


def verify_files(directory: Path, digests: ArtifactDigests) -> None:
    """Refuse (ARTIFACT_CORRUPT) a recorded file that is missing, of another size, or of
    other bytes; sizes are all checked before any file is hashed."""
    for name, expected in digests.items():
        path = directory / name
        if not path.is_file():
            raise corrupt_artifact(directory, name, "is missing")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise corrupt_artifact(
                directory, name, f"has {size} bytes, {expected['bytes']} were recorded"
            )
    for name, expected in digests.items():
        if file_sha256(directory / name) != expected["sha256"]:
            raise corrupt_artifact(directory, name, "does not match the sha256 recorded for it")


def parse_digests(raw: JSONObject, source: Path) -> ArtifactDigests:
    """A digest record read from `source`; anything malformed in it makes the record corrupt."""
    try:
        return {name: _digest(raw, name) for name in raw}
    except PayloadError as exc:
        raise corrupt_artifact(
            source.parent, source.name, f"holds an unreadable digest: {exc}"
        ) from exc


def _digest(raw: JSONObject, name: str) -> ArtifactDigest:
    """A name with a folder in it could point outside the directory: only plain names pass."""
    if Path(name).name != name or name in ("", ".."):
        raise PayloadError(name, f"{name!r} is not a plain file name")
    entry = require_object(raw, name)
    return {"sha256": require_str(entry, "sha256"), "bytes": require_int(entry, "bytes")}


def read_umask(status: Path = _PROC_STATUS) -> int:
    """The process's umask, read where Linux reports it: setting the umask to learn it (the
    only portable way, used where /proc has no answer) races with threads creating files."""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@functools.cache
def process_umask() -> int:
    """Read once: a service sets its umask at start, never while it writes artifacts."""
    return read_umask()


def ordinary_permissions(directory: Path) -> None:
    """Give `directory` and its files the modes an ordinary `open`/`mkdir` would (0755/0644
    under umask 022): safetensors writes owner-only files (0600) and `mkdtemp` owner-only
    folders (0700), which other local users and Hugging Face loaders could not read."""
    mask = process_umask()
    directory.chmod(0o777 & ~mask)
    for name in plain_files(directory):
        (directory / name).chmod(0o666 & ~mask)
