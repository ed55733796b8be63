"""The artifact store: where runs, checkpoints, tokenizers, corpora and exports are kept.

Every artifact has a key, its path under ARTIFACTS_ROOT (`runs/{run_id}/manifest.json`). With
the local backend ARTIFACTS_ROOT is the store; with S3 (`ARTIFACTS_URL=s3://bucket/prefix`) it is
this process's working copy and cache: writers make files there and `put` them, readers `get`
what they lack. Writers put a directory's marker (a manifest, a meta file) last, so a reader
that finds the marker finds every file before it.
"""

from __future__ import annotations

import filecmp
import functools
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import boto3
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from model_trainer.errors import ModelTrainerError
from model_trainer.settings import S3Location, Settings
from model_trainer.storage.digests import ArtifactDigest, ArtifactDigests, file_sha256, verify_files

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A few quick retries: a store that is down fails the job with a code in seconds, not minutes.
_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5)
_StoreFailure = Literal["ARTIFACT_UPLOAD_FAILED", "ARTIFACT_DOWNLOAD_FAILED"]


class ArtifactStore(Protocol):
    """Keys are POSIX paths relative to the local root; `local_path` is where each is read."""

    def local_path(self, key: str) -> Path: ...

    def put(self, key: str) -> None:
        """Publish the local copy of `key`."""

    def get(self, key: str) -> bool:
        """Bring `key` into its local path; False when the store has no such object."""

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> dict[str, int]:
        """Every key under `prefix` (a folder, ending in "/") with its size in bytes."""

    def delete(self, prefix: str) -> None:
        """Remove `prefix` and everything under it."""


class LocalStore:
    """ARTIFACTS_ROOT itself: what is written there is published, what is there is fetched."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def local_path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str) -> None:
        return None

    def get(self, key: str) -> bool:
        return self.exists(key)

    def exists(self, key: str) -> bool:
        return self.local_path(key).is_file()

    def list(self, prefix: str) -> dict[str, int]:
        folder = self.local_path(prefix)
        if not folder.is_dir():
            return {}
        return {
            path.relative_to(self.root).as_posix(): path.stat().st_size
            for path in sorted(folder.rglob("*"))
            if path.is_file()
        }

    def delete(self, prefix: str) -> None:
        path = self.local_path(prefix)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


class S3Store:
    """An S3-compatible bucket (AWS, MinIO, moto) under a key prefix, cached in `root`."""

    def __init__(self, root: Path, location: S3Location) -> None:
        self.root = root
        self.bucket = location["bucket"]
        self.prefix = f"{location['prefix']}/" if location["prefix"] else ""
        # Credentials and region come from boto3's own environment variables and files.
        self.client: S3Client = boto3.client(
            "s3", endpoint_url=location["endpoint_url"], config=_CLIENT_CONFIG
        )

    def local_path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str) -> None:
        with _reachable(self.bucket, "ARTIFACT_UPLOAD_FAILED"):
            self.client.upload_file(str(self.local_path(key)), self.bucket, self.prefix + key)

    def get(self, key: str) -> bool:
        """Downloaded beside its final name and renamed into place: a reader of the cache
        never sees half a file."""
        target = self.local_path(key)
        made = [folder for folder in target.parents if not folder.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        # Named for this download alone: processes sharing a cache may fetch the same file.
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.download")
        try:
            with _reachable(self.bucket, absent_ok=True):
                self.client.download_file(self.bucket, self.prefix + key, str(partial))
            if not _same_file(partial, target):
                os.replace(partial, target)
        except ClientError:  # only a 404 gets through _reachable
            for folder in made:  # innermost first: no empty folder says an artifact is here
                folder.rmdir()
            return False
        finally:
            partial.unlink(missing_ok=True)
        return True

    def exists(self, key: str) -> bool:
        try:
            with _reachable(self.bucket, absent_ok=True):
                self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError:  # only a 404 gets through _reachable
            return False
        return True

    def list(self, prefix: str) -> dict[str, int]:
        found: dict[str, int] = {}
        pages = self.client.get_paginator("list_objects_v2")
        with _reachable(self.bucket):
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for entry in page.get("Contents", []):
                    found[entry["Key"].removeprefix(self.prefix)] = entry["Size"]
        return found

    def delete(self, prefix: str) -> None:
        keys = [self.prefix + key for key in self.list(prefix)]
        with _reachable(self.bucket, "ARTIFACT_UPLOAD_FAILED"):
            for start in range(0, len(keys), 1000):  # S3's most per request
                batch = keys[start : start + 1000]
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch]}
                )


def _same_file(new: Path, cached: Path) -> bool:
    """An unchanged object leaves its cached copy as it was (its inode and ctime too, which
    the worker's model cache keys on)."""
    return (
        cached.is_file()
        and cached.stat().st_size == new.stat().st_size
        and filecmp.cmp(new, cached, shallow=False)
    )


def _status(error: ClientError) -> int:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)


@contextmanager
def _reachable(
    bucket: str, code: _StoreFailure = "ARTIFACT_DOWNLOAD_FAILED", *, absent_ok: bool = False
) -> Iterator[None]:
    """A store that cannot be reached, refuses our credentials or lacks the bucket fails with
    a code; with `absent_ok` a 404 stays a ClientError for a reader to take as "no object"."""
    try:
        yield
    except (BotoCoreError, S3UploadFailedError) as error:
        raise _failed(bucket, code, error) from error
    except ClientError as error:
        if absent_ok and _status(error) == 404:
            raise
        raise _failed(bucket, code, error) from error


def _failed(bucket: str, code: _StoreFailure, error: Exception) -> ModelTrainerError:
    return ModelTrainerError(
        code,
        f"artifact store s3://{bucket} failed: {error} (check ARTIFACTS_URL, the endpoint and "
        "the AWS_* credentials)",
        details={"bucket": bucket},
    )


def artifact_store(settings: Settings) -> ArtifactStore:
    location = settings["artifacts_s3"]
    if location is None:
        return LocalStore(settings["artifacts_root"])
    return _s3_store(
        settings["artifacts_root"],
        location["bucket"],
        location["prefix"],
        location["endpoint_url"],
    )


@functools.cache
def _s3_store(root: Path, bucket: str, prefix: str, endpoint_url: str | None) -> S3Store:
    """One client per store and process: building one reads files and costs milliseconds."""
    return S3Store(root, {"bucket": bucket, "prefix": prefix, "endpoint_url": endpoint_url})


def is_remote(settings: Settings) -> bool:
    return settings["artifacts_s3"] is not None


def key_of(settings: Settings, path: Path) -> str:
    return path.relative_to(settings["artifacts_root"]).as_posix()


def publish(settings: Settings, paths: Iterable[Path]) -> None:
    """Put each file in the order given (a marker last); nothing to do with the local store."""
    if not is_remote(settings):
        return
    store = artifact_store(settings)
    for path in paths:
        store.put(key_of(settings, path))


def publish_dir(settings: Settings, directory: Path, marker: str) -> None:
    """Every file under `directory`, `marker` (directly in it) last."""
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != marker)
    publish(settings, [*files, directory / marker])


def fetch(settings: Settings, path: Path) -> bool:
    """Bring the stored file at `path` into the cache (always asked afresh); False when the
    store has none. With the local store: whether the file is there."""
    return artifact_store(settings).get(key_of(settings, path))


def fetch_missing(settings: Settings, path: Path) -> bool:
    """Like fetch, for a file that never changes once stored: a cached copy is used as is."""
    return path.is_file() or fetch(settings, path)


def fetch_recorded(settings: Settings, directory: Path, digests: ArtifactDigests) -> None:
    """Download each recorded file that is missing here or differs from its digest, then
    check what came (ARTIFACT_CORRUPT: the store holds other bytes than were recorded)."""
    if not is_remote(settings):
        return
    stale = {name: d for name, d in digests.items() if not _matches(directory / name, d)}
    for name in stale:
        fetch(settings, directory / name)
    verify_files(directory, stale)


def _matches(path: Path, digest: ArtifactDigest) -> bool:
    return (
        path.is_file()
        and path.stat().st_size == digest["bytes"]
        and file_sha256(path) == digest["sha256"]
    )


def fetch_listed(settings: Settings, prefix: str, suffix: str) -> None:
    """Bring every stored file under `prefix` whose key ends in `suffix` into the cache when
    the cached copy is absent or of another size (listings: each run's manifest)."""
    if not is_remote(settings):
        return
    store = artifact_store(settings)
    for key, size in store.list(prefix).items():
        path = store.local_path(key)
        if key.endswith(suffix) and not (path.is_file() and path.stat().st_size == size):
            store.get(key)


def stored(settings: Settings, path: Path) -> bool:
    return artifact_store(settings).exists(key_of(settings, path))


def stored_files(settings: Settings, directory: Path) -> dict[str, int]:
    """Every stored file under `directory`, by its path relative to it, with its size."""
    folder = key_of(settings, directory) + "/"
    return {
        key.removeprefix(folder): size
        for key, size in artifact_store(settings).list(folder).items()
    }


def unpublish(settings: Settings, directory: Path) -> None:
    """Remove a folder's stored copy (a checkpoint retention retired); the local root's own
    copy is the caller's to remove."""
    if is_remote(settings):
        artifact_store(settings).delete(key_of(settings, directory) + "/")
