"""Runs in the artifact store: trained here with S3, listed and loaded from an empty root."""

from __future__ import annotations

import logging
from pathlib import Path

import boto3
import pytest
from tests.support.backends import train_cfg, train_run

from model_trainer.backends.char_lstm import CharLSTMBackend
from model_trainer.errors import ModelTrainerError
from model_trainer.settings import Settings
from model_trainer.storage.artifacts import stored_files
from model_trainer.storage.checkpoints import CHECKPOINTS_DIR, checkpoint_dirs, checkpoint_name
from model_trainer.storage.digests import file_sha256
from model_trainer.storage.run_store import (
    fetch_checkpoint,
    fetch_checkpoints,
    fetch_history,
    fetch_run,
    run_stored,
    stored_checkpoints,
)
from model_trainer.storage.runs import MANIFEST_FILE, recorded_artifacts, run_dir, verify_run
from model_trainer.training.checkpoint import resume_latest, verify_checkpoint
from model_trainer.worker import model_cache


def _reader(settings: Settings, tmp_path: Path, name: str = "reader") -> Settings:
    """Another machine: the same store, an empty local root."""
    root = tmp_path / name
    root.mkdir()
    return {**settings, "artifacts_root": root}


def _put(settings: Settings, endpoint: str, key: str, body: bytes) -> None:
    location = settings["artifacts_s3"]
    assert location is not None
    boto3.client("s3", endpoint_url=endpoint).put_object(
        Bucket=location["bucket"], Key=f"{location['prefix']}/{key}", Body=body
    )


@pytest.fixture
def trained(s3_settings: Settings, corpus_path: Path) -> Settings:
    """A 40-step char_lstm run `r` trained with the S3 store: checkpoints at steps 10, 20 and
    30, of which retention keeps the newest two."""
    cfg = train_cfg("char_lstm", corpus_path, max_steps=40)
    cfg["keep_checkpoints"], cfg["keep_best_checkpoints"] = 2, 0
    train_run(CharLSTMBackend(), s3_settings, cfg, "r")
    return s3_settings


def test_a_published_run_is_fetched_whole_and_loads_on_another_root(
    trained: Settings, tmp_path: Path
) -> None:
    reader = _reader(trained, tmp_path)
    assert run_stored(reader, "r")
    assert not run_stored(reader, "unknown")
    directory = fetch_run(reader, "r")
    assert directory == run_dir(reader, "r")
    recorded = recorded_artifacts(directory)
    assert recorded
    assert {name: file_sha256(directory / name) for name in recorded} == {
        name: digest["sha256"] for name, digest in recorded.items()
    }
    assert not (directory / CHECKPOINTS_DIR).exists()  # a load needs no checkpoint
    prepared = CharLSTMBackend().load(str(directory), reader)
    assert prepared["model_family"] == "char_lstm"
    assert fetch_history(reader, "r").read_text().count("\n") >= 8
    assert not (fetch_run(reader, "unknown") / MANIFEST_FILE).exists()


def test_a_cached_run_is_fetched_again_only_when_it_differs(
    trained: Settings, tmp_path: Path
) -> None:
    reader = _reader(trained, tmp_path)
    directory = fetch_run(reader, "r")
    weights = directory / "model.safetensors"
    damaged = bytearray(weights.read_bytes())
    damaged[-1] ^= 1
    weights.write_bytes(bytes(damaged))  # same size: kept, and the load's check refuses it
    fetch_run(reader, "r")
    with pytest.raises(ModelTrainerError) as refused:
        verify_run(directory)
    assert refused.value.code == "ARTIFACT_CORRUPT"
    weights.write_bytes(b"short")  # another size: fetched again
    fetch_run(reader, "r")
    verify_run(directory)


def test_a_tampered_stored_object_is_refused_by_an_empty_root(
    trained: Settings, tmp_path: Path, s3_endpoint: str
) -> None:
    _put(trained, s3_endpoint, "runs/r/model.safetensors", b"not the weights")
    with pytest.raises(ModelTrainerError) as refused:
        fetch_run(_reader(trained, tmp_path), "r")
    assert refused.value.code == "ARTIFACT_CORRUPT"
    assert "model.safetensors" in refused.value.message


def test_checkpoints_are_published_as_retention_keeps_them(
    trained: Settings, tmp_path: Path
) -> None:
    """Retention retires checkpoints in the store too; a listing moves no tensors."""
    local = [path.name for path in checkpoint_dirs(run_dir(trained, "r") / CHECKPOINTS_DIR)]
    assert local == [checkpoint_name(20), checkpoint_name(30)]
    reader = _reader(trained, tmp_path)
    listed = stored_checkpoints(reader, "r")
    assert [checkpoint_name(info["step"]) for info in listed] == local
    assert all(info["bytes"] > 10_000 for info in listed)
    assert stored_checkpoints(trained, "r") == listed  # the writer's view: the same
    assert not list((run_dir(reader, "r") / CHECKPOINTS_DIR).rglob("*.safetensors"))
    path = fetch_checkpoint(reader, "r", listed[-1]["step"])
    verify_checkpoint(path)
    missing = fetch_checkpoint(reader, "r", 5)
    assert not missing.exists()


def test_a_resume_elsewhere_fetches_checkpoints_and_passes_over_a_damaged_one(
    trained: Settings, tmp_path: Path, s3_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    newest, older = [info["step"] for info in reversed(stored_checkpoints(trained, "r"))][:2]
    _put(trained, s3_endpoint, f"runs/r/checkpoints/{checkpoint_name(newest)}/state.json", b"{}")
    reader = _reader(trained, tmp_path)
    checkpoints = run_dir(reader, "r") / CHECKPOINTS_DIR
    with caplog.at_level(logging.WARNING):
        fetch_checkpoints(reader, checkpoints)
    assert f"checkpoint {checkpoint_name(newest)} not fetched" in caplog.text
    resumed = resume_latest(checkpoints, verify_checkpoint)
    assert resumed == checkpoints / checkpoint_name(older)


def test_unreadable_checkpoint_records_in_the_store(
    trained: Settings, tmp_path: Path, s3_endpoint: str
) -> None:
    newest = stored_checkpoints(trained, "r")[-1]["step"]
    name = checkpoint_name(newest)
    _put(trained, s3_endpoint, f"runs/r/checkpoints/{name}/digests.json", b"[")
    with pytest.raises(ModelTrainerError) as refused:
        fetch_checkpoint(_reader(trained, tmp_path), "r", newest)
    assert refused.value.code == "ARTIFACT_CORRUPT"
    _put(trained, s3_endpoint, f"runs/r/checkpoints/{name}/metrics.json", b"[")
    listed = stored_checkpoints(_reader(trained, tmp_path, "lister"), "r")
    assert newest not in [info["step"] for info in listed]


def test_with_the_local_store_the_run_directory_is_read_as_it_is(
    settings: Settings, corpus_path: Path
) -> None:
    train_run(CharLSTMBackend(), settings, train_cfg("char_lstm", corpus_path, max_steps=20), "l")
    directory = run_dir(settings, "l")
    assert fetch_run(settings, "l") == directory
    assert run_stored(settings, "l")
    assert fetch_history(settings, "l").is_file()
    assert [info["step"] for info in stored_checkpoints(settings, "l")] == [10]
    assert fetch_checkpoint(settings, "l", 10) == directory / CHECKPOINTS_DIR / checkpoint_name(10)
    fetch_checkpoints(settings, directory / CHECKPOINTS_DIR)
    assert stored_files(settings, directory)["manifest.json"] > 0


def test_a_warm_model_stays_warm_when_its_run_is_fetched_again(
    trained: Settings, tmp_path: Path
) -> None:
    reader = _reader(trained, tmp_path)
    model_cache.clear()
    first = model_cache.load_run("r", reader)
    assert model_cache.load_run("r", reader) is first
    model_cache.clear()
