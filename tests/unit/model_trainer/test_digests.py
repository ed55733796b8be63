"""Artifact digests (recorded, parsed, verified before reading) and ordinary file modes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.support.artifacts import usual_umask

from model_trainer.errors import ModelTrainerError
from model_trainer.storage.digests import (
    ArtifactDigests,
    digest_files,
    file_sha256,
    ordinary_permissions,
    parse_digests,
    plain_files,
    process_umask,
    read_umask,
    verify_files,
)
from platform_core.json_types import JSONObject


@pytest.fixture
def umask_022() -> Iterator[None]:
    with usual_umask():
        yield


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _two_files(directory: Path) -> ArtifactDigests:
    (directory / "a.bin").write_bytes(b"a" * 100)
    (directory / "b.json").write_bytes(b'{"b": 1}')
    return digest_files(directory, ["b.json", "a.bin"])


def test_a_file_larger_than_a_chunk_hashes_as_a_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    content = os.urandom(3 * 1024 * 1024 + 7)
    big.write_bytes(content)
    assert file_sha256(big) == hashlib.sha256(content).hexdigest()


def test_digests_record_each_file_s_sha256_and_size(tmp_path: Path) -> None:
    assert _two_files(tmp_path) == {
        "a.bin": {"sha256": hashlib.sha256(b"a" * 100).hexdigest(), "bytes": 100},
        "b.json": {"sha256": hashlib.sha256(b'{"b": 1}').hexdigest(), "bytes": 8},
    }


def test_plain_files_leave_out_folders_symlinks_and_exclusions(tmp_path: Path) -> None:
    _two_files(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "link.bin").symlink_to(tmp_path / "a.bin")
    assert plain_files(tmp_path) == ["a.bin", "b.json"]
    assert plain_files(tmp_path, exclude=["b.json"]) == ["a.bin"]


def test_intact_files_verify(tmp_path: Path) -> None:
    verify_files(tmp_path, _two_files(tmp_path))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.unlink(), "is missing"),
        (lambda path: path.write_bytes(b"a" * 60), "has 60 bytes, 100 were recorded"),
        (lambda path: path.write_bytes(b"a" * 99 + b"b"), "does not match the sha256"),
    ],
)
def test_a_missing_truncated_or_altered_file_is_corrupt(
    tmp_path: Path, damage: Callable[[Path], object], reason: str
) -> None:
    digests = _two_files(tmp_path)
    damage(tmp_path / "a.bin")
    with pytest.raises(ModelTrainerError) as caught:
        verify_files(tmp_path, digests)
    assert caught.value.code == "ARTIFACT_CORRUPT"
    assert (caught.value.http_status, caught.value.kind) == (500, "system")
    assert caught.value.message.startswith(f"a.bin in {tmp_path} {reason}")
    assert caught.value.details == {"path": str(tmp_path / "a.bin")}


def test_sizes_are_checked_before_any_file_is_hashed(tmp_path: Path) -> None:
    """An altered first file and a truncated second: the stat finds the second first."""
    digests = _two_files(tmp_path)
    (tmp_path / "a.bin").write_bytes(b"b" * 100)
    (tmp_path / "b.json").write_bytes(b"{}")
    with pytest.raises(ModelTrainerError) as caught:
        verify_files(tmp_path, digests)
    assert caught.value.details == {"path": str(tmp_path / "b.json")}


def test_a_well_formed_record_parses(tmp_path: Path) -> None:
    digests = _two_files(tmp_path)
    raw: JSONObject = {
        name: {"sha256": entry["sha256"], "bytes": entry["bytes"]}
        for name, entry in digests.items()
    }
    assert parse_digests(raw, tmp_path / "digests.json") == digests


@pytest.mark.parametrize(
    "raw",
    [
        {"a.bin": "abc"},
        {"a.bin": {"sha256": "00"}},
        {"a.bin": {"sha256": "00", "bytes": "1"}},
        {"../a.bin": {"sha256": "00", "bytes": 1}},
        {"sub/a.bin": {"sha256": "00", "bytes": 1}},
        {"/etc/passwd": {"sha256": "00", "bytes": 1}},
        {"..": {"sha256": "00", "bytes": 1}},
        {".": {"sha256": "00", "bytes": 1}},
        {"": {"sha256": "00", "bytes": 1}},
    ],
)
def test_a_malformed_record_is_itself_corrupt(tmp_path: Path, raw: JSONObject) -> None:
    with pytest.raises(ModelTrainerError) as caught:
        parse_digests(raw, tmp_path / "digests.json")
    assert caught.value.code == "ARTIFACT_CORRUPT"
    assert caught.value.message.startswith(f"digests.json in {tmp_path} holds an unreadable")


def test_the_umask_is_read_from_proc_without_changing_it() -> None:
    previous = os.umask(0o027)
    try:
        assert read_umask() == 0o027
        assert os.umask(0o027) == 0o027
    finally:
        os.umask(previous)


@pytest.mark.parametrize("status", ["missing", "no-umask-line"])
def test_without_proc_the_umask_is_read_by_setting_it_back(tmp_path: Path, status: str) -> None:
    """Kernels before 4.7 (and non-Linux systems) report no Umask line."""
    path = tmp_path / status
    if status == "no-umask-line":
        path.write_text("Name:\tpython\nState:\tR (running)\n")
    previous = os.umask(0o077)
    try:
        assert read_umask(path) == 0o077
        assert os.umask(0o077) == 0o077
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("umask_022")
def test_owner_only_files_and_folders_get_ordinary_modes(tmp_path: Path) -> None:
    """What mkdtemp and safetensors leave (0700, 0600) becomes 0755 and 0644."""
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o600)
    staging = Path(tempfile.mkdtemp(dir=tmp_path))
    handle, name = tempfile.mkstemp(dir=staging)
    os.close(handle)
    (staging / "link").symlink_to(outside)
    (staging / "sub").mkdir(mode=0o700)
    assert (_mode(staging), _mode(Path(name))) == (0o700, 0o600)
    ordinary_permissions(staging)
    assert (_mode(staging), _mode(Path(name))) == (0o755, 0o644)
    assert _mode(outside) == 0o600  # a symlink is not followed out of the directory
    assert _mode(staging / "sub") == 0o700  # nor is a folder in it (artifacts are flat)
    assert process_umask() == 0o022
