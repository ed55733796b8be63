"""The artifact store's one interface, against the local directory and a real S3 server."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.artifacts import (
    artifact_store,
    fetch,
    fetch_listed,
    fetch_missing,
    fetch_recorded,
    is_remote,
    publish,
    publish_dir,
    stored,
    stored_files,
    unpublish,
)
from model_trainer.storage.digests import digest_files


@pytest.fixture(params=["local", "s3"])
def store_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Each test runs once per backend."""
    if request.param == "local":
        return settings
    chosen: Settings = request.getfixturevalue("s3_settings")
    return chosen


def other_machine(settings: Settings, tmp_path: Path) -> Settings:
    """The same store seen from a process with an empty local root of its own."""
    root = tmp_path / "elsewhere"
    root.mkdir()
    return {**settings, "artifacts_root": root}


def write(root: Path, key: str, body: bytes) -> Path:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def test_put_get_exists_list_delete(store_settings: Settings) -> None:
    store = artifact_store(store_settings)
    root = store_settings["artifacts_root"]
    assert store.local_path("runs/r/a.txt") == root / "runs" / "r" / "a.txt"
    for key, body in [("runs/r/a.txt", b"alpha"), ("runs/r/sub/b.bin", b"\x00" * 7)]:
        write(root, key, body)
        store.put(key)
    assert store.exists("runs/r/a.txt")
    assert not store.exists("runs/r/none.txt")
    assert store.list("runs/r/") == {"runs/r/a.txt": 5, "runs/r/sub/b.bin": 7}
    assert store.list("runs/none/") == {}
    (root / "runs" / "r" / "a.txt").unlink()
    assert store.get("runs/r/a.txt") is is_remote(store_settings)
    assert not store.get("runs/r/none.txt")
    store.delete("runs/r/sub/b.bin")
    assert store.list("runs/r/sub/") == {}
    store.delete("runs/")
    assert store.list("runs/") == {}
    assert not store.exists("runs/r/a.txt")


def test_a_published_directory_is_fetched_by_another_root(
    store_settings: Settings, tmp_path: Path
) -> None:
    """What one process publishes, another with an empty root lists and fetches; with the
    local store both roots are the writer's own and nothing moves."""
    root = store_settings["artifacts_root"]
    tokenizer = root / "tokenizers" / "tok"
    write(root, "tokenizers/tok/vocab.json", b"{}")
    write(root, "tokenizers/tok/nested/merges.txt", b"a b")
    write(root, "tokenizers/tok/meta.json", b'{"kind": "char"}')
    publish_dir(store_settings, tokenizer, "meta.json")
    assert stored_files(store_settings, tokenizer) == {
        "meta.json": 16,
        "nested/merges.txt": 3,
        "vocab.json": 2,
    }
    remote = is_remote(store_settings)
    reader = other_machine(store_settings, tmp_path) if remote else store_settings
    copy = reader["artifacts_root"] / "tokenizers" / "tok"
    assert stored(reader, copy / "meta.json")
    assert fetch(reader, copy / "meta.json")
    assert (copy / "meta.json").read_bytes() == b'{"kind": "char"}'
    assert fetch_missing(reader, copy / "vocab.json")
    assert not fetch(reader, copy / "absent.json")
    unpublish(store_settings, tokenizer / "nested")  # the local root's copy is the caller's
    assert ("nested/merges.txt" in stored_files(reader, copy)) is not remote


def test_fetch_recorded_downloads_what_differs_and_refuses_tampered_objects(
    s3_settings: Settings, s3_endpoint: str, tmp_path: Path
) -> None:
    root = s3_settings["artifacts_root"]
    run = root / "runs" / "r"
    write(root, "runs/r/model.bin", b"weights" * 100)
    write(root, "runs/r/config.json", b"{}")
    digests = digest_files(run, ["model.bin", "config.json"])
    publish(s3_settings, [run / "model.bin", run / "config.json"])
    reader = other_machine(s3_settings, tmp_path)
    copy = reader["artifacts_root"] / "runs" / "r"
    write(reader["artifacts_root"], "runs/r/config.json", b"{}")  # already cached, kept
    fetch_recorded(reader, copy, digests)
    assert (copy / "model.bin").read_bytes() == b"weights" * 100
    (copy / "model.bin").write_bytes(b"stale")  # a damaged cache copy is fetched again
    fetch_recorded(reader, copy, digests)
    assert (copy / "model.bin").read_bytes() == b"weights" * 100
    location = s3_settings["artifacts_s3"]
    assert location is not None
    boto3.client("s3", endpoint_url=s3_endpoint).put_object(
        Bucket=location["bucket"], Key="store/runs/r/model.bin", Body=b"Weights" * 100
    )
    (copy / "model.bin").unlink()
    with pytest.raises(ModelTrainerError) as refused:
        fetch_recorded(reader, copy, digests)
    assert refused.value.code == "ARTIFACT_CORRUPT"
    assert "model.bin" in refused.value.message


def test_with_the_local_store_publishing_and_fetching_move_nothing(settings: Settings) -> None:
    path = write(settings["artifacts_root"], "runs/r/model.bin", b"x")
    publish(settings, [path])
    fetch_recorded(settings, path.parent, {"model.bin": {"sha256": "0" * 64, "bytes": 9}})
    fetch_listed(settings, "runs/", "/model.bin")
    unpublish(settings, path.parent)
    assert path.read_bytes() == b"x"


def test_fetch_listed_brings_only_matching_keys_absent_or_resized(
    s3_settings: Settings, tmp_path: Path
) -> None:
    root = s3_settings["artifacts_root"]
    paths = [
        write(root, "runs/a/manifest.json", b"{1}"),
        write(root, "runs/b/manifest.json", b"{22}"),
        write(root, "runs/b/model.bin", b"big"),
    ]
    publish(s3_settings, paths)
    reader = other_machine(s3_settings, tmp_path)
    write(reader["artifacts_root"], "runs/a/manifest.json", b"{0}")  # same size: kept
    write(reader["artifacts_root"], "runs/b/manifest.json", b"{}")  # resized: fetched
    fetch_listed(reader, "runs/", "/manifest.json")
    copy = reader["artifacts_root"] / "runs"
    assert (copy / "a" / "manifest.json").read_bytes() == b"{0}"
    assert (copy / "b" / "manifest.json").read_bytes() == b"{22}"
    assert not (copy / "b" / "model.bin").exists()


def test_an_unreachable_store_fails_with_a_code(settings: Settings, tmp_path: Path) -> None:
    down: Settings = {
        **settings,
        "artifacts_s3": {"bucket": "b-1", "prefix": "", "endpoint_url": "http://127.0.0.1:9"},
    }
    path = write(settings["artifacts_root"], "corpora/c.txt", b"text")
    with pytest.raises(ModelTrainerError) as upload:
        publish(down, [path])
    assert upload.value.code == "ARTIFACT_UPLOAD_FAILED"
    assert "s3://b-1" in upload.value.message
    with pytest.raises(ModelTrainerError) as download:
        fetch(down, path)
    assert download.value.code == "ARTIFACT_DOWNLOAD_FAILED"


def test_a_missing_bucket_fails_writes_and_listings_with_a_code(
    s3_settings: Settings, s3_endpoint: str
) -> None:
    missing: Settings = {
        **s3_settings,
        "artifacts_s3": {"bucket": "no-such-bucket", "prefix": "", "endpoint_url": s3_endpoint},
    }
    path = write(missing["artifacts_root"], "corpora/c.txt", b"text")
    with pytest.raises(ModelTrainerError) as upload:
        publish(missing, [path])
    assert upload.value.code == "ARTIFACT_UPLOAD_FAILED"
    with pytest.raises(ModelTrainerError) as listing:
        stored_files(missing, path.parent)
    assert listing.value.code == "ARTIFACT_DOWNLOAD_FAILED"
    assert not stored(missing, path)  # a reader takes a missing bucket as a missing object


def test_fetching_an_unchanged_object_leaves_the_cached_copy_as_it_was(
    s3_settings: Settings, tmp_path: Path
) -> None:
    """Its inode and ctime stay, so the worker's model cache still hits."""
    publish(s3_settings, [write(s3_settings["artifacts_root"], "runs/r/meta.json", b"{1}")])
    reader = other_machine(s3_settings, tmp_path)
    path = reader["artifacts_root"] / "runs" / "r" / "meta.json"
    assert fetch(reader, path)
    cached = path.stat()
    assert fetch(reader, path)
    assert (path.stat().st_ino, path.stat().st_ctime_ns) == (cached.st_ino, cached.st_ctime_ns)
    path.write_bytes(b"{2}")  # same size, other bytes: replaced
    assert fetch(reader, path)
    assert path.read_bytes() == b"{1}"
    assert list(path.parent.iterdir()) == [path]  # no download left beside it
